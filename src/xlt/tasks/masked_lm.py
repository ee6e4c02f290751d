"""Masked language modelling on plain text, the task that trains language SFTs.

Text lines are tokenised without special tokens, concatenated and cut into blocks of
`max_seq_length` tokens including the special tokens that wrap each block, so no token is
wasted on padding except in the last block. Training blocks are masked afresh in every batch.
Validation and test blocks are masked once with a seeded `torch.Generator`, so every evaluation,
of any checkpoint, computes loss and accuracy on the same masks.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from transformers import EvalPrediction, PreTrainedModel

from . import sources
from .base import IGNORE_INDEX, LoadedModel, Task, pad_encoder_inputs, pad_sequences, run_inference
from .loading import load_with_new_parameters
from .masked_lm_model import masked_positions_class_for

logger = logging.getLogger(__name__)

# Of the tokens selected for prediction, this fraction becomes the mask token, the same fraction
# again a random token, and the rest stays unchanged (BERT's 80/10/10 rule).
MASK_TOKEN_FRACTION = 0.8
RANDOM_TOKEN_FRACTION = 0.1

_TOKENIZE_BATCH_LINES = 1000


def mask_tokens(
    input_ids: torch.Tensor,
    special_token_ids: torch.Tensor,
    mask_token_id: int,
    vocabulary_size: int,
    probability: float,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Select tokens for prediction and corrupt them by BERT's 80/10/10 rule.

    `input_ids` has shape (batch, length) and may contain padding, which must be one of
    `special_token_ids` (special tokens are never selected). Every row that has at least one
    ordinary token gets at least one selected token. Returns the corrupted ids and the labels:
    the original id at selected positions and -100 elsewhere. `generator=None` uses the global
    torch random state.
    """
    eligible = ~torch.isin(input_ids, special_token_ids)
    draws = torch.rand(input_ids.shape, generator=generator)
    selected = (draws < probability) & eligible

    # Rows with eligible tokens but no selected one: select the eligible token with the lowest draw.
    empty_rows = eligible.any(dim=1) & ~selected.any(dim=1)
    if empty_rows.any():
        lowest = torch.where(eligible, draws, torch.full_like(draws, 2.0)).argmin(dim=1)
        rows = empty_rows.nonzero(as_tuple=True)[0]
        selected[rows, lowest[rows]] = True

    labels = torch.where(selected, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    corruption = torch.rand(input_ids.shape, generator=generator)
    random_ids = torch.randint(vocabulary_size, input_ids.shape, generator=generator)
    use_mask = selected & (corruption < MASK_TOKEN_FRACTION)
    use_random = selected & (corruption >= MASK_TOKEN_FRACTION) & (
        corruption < MASK_TOKEN_FRACTION + RANDOM_TOKEN_FRACTION
    )
    corrupted = input_ids.clone()
    corrupted[use_mask] = mask_token_id
    corrupted[use_random] = random_ids[use_random]
    return corrupted, labels


def special_token_frame(tokenizer) -> tuple[list[int], list[int]]:
    """Return the special token ids the tokenizer puts before and after a single text.

    Found by encoding a probe text with and without special tokens, because fast tokenizers
    built directly from a `tokenizers` post-processor do not implement
    `build_inputs_with_special_tokens`.
    """
    probe = "a"
    plain = tokenizer(probe, add_special_tokens=False)["input_ids"]
    framed = tokenizer(probe, add_special_tokens=True)["input_ids"]
    for start in range(len(framed) - len(plain) + 1):
        if plain and framed[start : start + len(plain)] == plain:
            return framed[:start], framed[start + len(plain) :]
    raise ValueError(
        f"cannot find the special tokens of {tokenizer.name_or_path!r}: encoding {probe!r} gave "
        f"{framed} with special tokens and {plain} without"
    )


class MaskedLmTask(Task):
    """Masked-LM over blocks of concatenated text lines, scored by masked-token accuracy and loss."""

    name = "mlm"
    sft_kind = "language"
    selection_metric = "loss"
    selection_greater_is_better = False
    vocabulary_line_kind = "text"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.tokenizer.mask_token_id is None:
            raise ValueError(
                f"the tokenizer of {self.tokenizer.name_or_path!r} has no mask token, which "
                "masked-LM training needs"
            )
        special_ids = set(self.tokenizer.all_special_ids)
        if self.tokenizer.pad_token_id is not None:
            special_ids.add(self.tokenizer.pad_token_id)
        self.special_token_ids = torch.tensor(sorted(special_ids), dtype=torch.long)
        self.block_prefix, self.block_suffix = special_token_frame(self.tokenizer)
        self.block_content_length = self.max_seq_length - len(self.block_prefix) - len(self.block_suffix)

    @classmethod
    def read(cls, path: str, **reader_options) -> list[str]:
        return sources.read_text_lines(path)

    def build_model(self, model_name_or_path: str, **from_pretrained_kwargs) -> LoadedModel:
        model_class = masked_positions_class_for(model_name_or_path)
        loaded = load_with_new_parameters(model_class, model_name_or_path, **from_pretrained_kwargs)
        loaded.model.prediction_head()  # raises for an architecture without a supported head
        return loaded

    def prepare_model_for_training(self, model: PreTrainedModel) -> None:
        if not self.options.freeze_mlm_head:
            return
        # The output embedding may be tied to the input embedding; it follows the SftArguments
        # options (freeze_decoder, untie_embeddings) instead of this one.
        input_embedding = model.get_input_embeddings().weight
        frozen = []
        for name, parameter in model.prediction_head().named_parameters():
            if parameter is not input_embedding:
                parameter.requires_grad_(False)
                frozen.append(name)
        logger.info("Froze the masked-LM head: %s", ", ".join(frozen))

    def make_blocks(self, lines: Sequence[str]) -> list[list[int]]:
        """Tokenise `lines`, concatenate them and cut blocks of `max_seq_length` tokens."""
        stream: list[int] = []
        for start in range(0, len(lines), _TOKENIZE_BATCH_LINES):
            encoded = self.tokenizer(
                list(lines[start : start + _TOKENIZE_BATCH_LINES]),
                add_special_tokens=False,
                return_attention_mask=False,
                return_token_type_ids=False,
            )
            for ids in encoded["input_ids"]:
                stream.extend(ids)
        blocks = []
        for start in range(0, len(stream), self.block_content_length):
            content = stream[start : start + self.block_content_length]
            blocks.append(self.block_prefix + content + self.block_suffix)
        return blocks

    def encode(self, records: Sequence[str], training: bool) -> list[dict[str, Any]]:
        blocks = self.make_blocks(records)
        if training:
            return [{"input_ids": block} for block in blocks]

        generator = torch.Generator().manual_seed(self.options.mlm_eval_masking_seed)
        features = []
        for block in blocks:
            corrupted, labels = mask_tokens(
                torch.tensor([block]),
                self.special_token_ids,
                self.tokenizer.mask_token_id,
                len(self.tokenizer),
                self.options.mlm_probability,
                generator,
            )
            features.append({"input_ids": corrupted[0].tolist(), "labels": labels[0].tolist()})
        return features

    def collate(self, features: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = pad_encoder_inputs(features, self.tokenizer)
        if "labels" in features[0]:
            batch["labels"] = pad_sequences([f["labels"] for f in features], IGNORE_INDEX)
        else:
            batch["input_ids"], batch["labels"] = mask_tokens(
                batch["input_ids"],
                self.special_token_ids,
                self.tokenizer.mask_token_id,
                len(self.tokenizer),
                self.options.mlm_probability,
            )
        return batch

    def evaluate(self, model, records, batch_size):
        features = self.encode(records, training=False)

        def decode_batch(outputs, batch_features):
            # The logits cover the labelled positions of the batch in row-major order.
            labels = torch.cat(
                [torch.tensor([x for x in f["labels"] if x != IGNORE_INDEX]) for f in batch_features]
            ).to(outputs.logits.device)
            token_losses = F.cross_entropy(outputs.logits.float(), labels, reduction="none")
            correct = outputs.logits.argmax(dim=-1) == labels
            rows, start = [], 0
            for feature in batch_features:
                count = sum(x != IGNORE_INDEX for x in feature["labels"])
                rows.append(
                    {
                        "num_masked": count,
                        "num_correct": int(correct[start : start + count].sum()),
                        "loss_sum": float(token_losses[start : start + count].sum()),
                    }
                )
                start += count
            return rows

        rows = run_inference(model, features, self.collate, decode_batch, batch_size)
        num_masked = sum(row["num_masked"] for row in rows)
        if num_masked == 0:
            raise ValueError("masked-LM evaluation: the text has no token that can be masked")
        loss = sum(row["loss_sum"] for row in rows) / num_masked
        metrics = {
            "accuracy": sum(row["num_correct"] for row in rows) / num_masked,
            "loss": loss,
            "perplexity": math.exp(loss) if loss < 700 else math.inf,
            "num_masked_tokens": num_masked,
            "num_blocks": len(rows),
            "num_lines": len(records),
            "masking_seed": self.options.mlm_eval_masking_seed,
            "mlm_probability": self.options.mlm_probability,
        }
        return metrics, rows

    def preprocess_logits_for_metrics(self, logits: Any, labels: torch.Tensor) -> torch.Tensor:
        """Scatter the predictions at labelled positions into a (batch, length) tensor.

        The Trainer keeps one prediction row per example, so the flat masked-position logits
        are put back in place, with -100 at unlabelled positions.
        """
        if isinstance(logits, tuple):
            logits = logits[0]
        predictions = torch.full_like(labels, IGNORE_INDEX)
        predictions[labels != IGNORE_INDEX] = logits.argmax(dim=-1)
        return predictions

    def compute_metrics(self, prediction: EvalPrediction) -> dict[str, float]:
        predicted = np.asarray(prediction.predictions)
        label_ids = np.asarray(prediction.label_ids)
        labelled = label_ids != IGNORE_INDEX
        if not labelled.any():
            raise ValueError("masked-LM validation data has no masked token")
        return {"accuracy": float((predicted[labelled] == label_ids[labelled]).mean())}

    @classmethod
    def vocabulary_lines(cls, records: Sequence[str]) -> Iterable[str]:
        yield from records
