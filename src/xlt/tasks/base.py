"""The interface every task implements, and the pieces tasks share: padding and batched inference.

A task turns records (`UdSentence`, `NerSentence`, `NliExample` or text lines) into model features,
builds its model from a base checkpoint, collates features into batches, and turns model outputs
into predictions and metrics. The entry points only talk to tasks through `Task`.
"""

from __future__ import annotations

import logging
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm
from transformers import EvalPrediction, PreTrainedModel, PreTrainedTokenizerBase

from .arguments import TaskArguments

logger = logging.getLogger(__name__)

# Label value that the loss functions and metrics ignore (the PyTorch cross-entropy default).
IGNORE_INDEX = -100


@dataclass
class LoadedModel:
    """A task model and the names of its parameters that the checkpoint did not provide.

    The new parameters (classifier, parser or pooler weights, for example) belong to the task
    head: they are never maskable and an SFT stores them as dense values (`abs`).
    """

    model: PreTrainedModel
    new_parameter_names: list[str] = field(default_factory=list)


class FeatureDataset(Dataset):
    """A list of feature dicts (one per example) served to the Trainer's data loader."""

    def __init__(self, features: Sequence[dict[str, Any]]):
        self.features = list(features)

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.features[index]


def pad_sequences(sequences: Sequence[Sequence[int]], pad_value: int) -> torch.Tensor:
    """Stack integer sequences of different lengths into a right-padded (batch, max length) tensor."""
    max_length = max((len(sequence) for sequence in sequences), default=0)
    batch = torch.full((len(sequences), max_length), pad_value, dtype=torch.long)
    for row, sequence in enumerate(sequences):
        if len(sequence):
            batch[row, : len(sequence)] = torch.as_tensor(sequence, dtype=torch.long)
    return batch


def pad_encoder_inputs(
    features: Sequence[dict[str, Any]], tokenizer: PreTrainedTokenizerBase
) -> dict[str, torch.Tensor]:
    """Pad `input_ids` (with the tokenizer's pad id), `attention_mask` and `token_type_ids`."""
    if tokenizer.pad_token_id is None:
        raise ValueError(
            f"the tokenizer of {tokenizer.name_or_path!r} has no pad token; set one before training"
        )
    batch = {
        "input_ids": pad_sequences([f["input_ids"] for f in features], tokenizer.pad_token_id),
        "attention_mask": pad_sequences([[1] * len(f["input_ids"]) for f in features], 0),
    }
    if "token_type_ids" in features[0]:
        batch["token_type_ids"] = pad_sequences([f["token_type_ids"] for f in features], 0)
    return batch


def progress_bar(iterable: Iterable, **kwargs) -> tqdm:
    """Wrap `iterable` in a tqdm bar that stays quiet when stderr is not a terminal."""
    return tqdm(iterable, disable=not sys.stderr.isatty(), **kwargs)


def run_inference(
    model: PreTrainedModel,
    features: Sequence[dict[str, Any]],
    collate: Callable[[Sequence[dict[str, Any]]], dict[str, torch.Tensor]],
    decode_batch: Callable[[Any, Sequence[dict[str, Any]]], list[Any]],
    batch_size: int,
    description: str = "predicting",
) -> list[Any]:
    """Run `model` over `features` and return one decoded prediction per feature, in input order.

    Features are sorted by length so that each batch pads little, the model runs in eval mode
    under `torch.inference_mode()`, and `decode_batch(outputs, batch_features)` turns the outputs
    of one batch into one prediction per feature.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    order = sorted(range(len(features)), key=lambda i: len(features[i]["input_ids"]), reverse=True)
    predictions: list[Any] = [None] * len(features)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    starts = range(0, len(order), batch_size)
    try:
        with torch.inference_mode():
            for start in progress_bar(starts, desc=description, unit="batch"):
                indices = order[start : start + batch_size]
                batch_features = [features[i] for i in indices]
                batch = {name: value.to(device) for name, value in collate(batch_features).items()}
                outputs = model(**batch)
                for index, prediction in zip(indices, decode_batch(outputs, batch_features)):
                    predictions[index] = prediction
    finally:
        model.train(was_training)
    return predictions


class Task(ABC):
    """One task: how its records become features, batches, model outputs and metrics.

    Subclasses set the class attributes and implement the abstract methods. An instance keeps the
    tokenizer and the task options, so that the same instance serves training and evaluation.
    """

    # Name used on the command line and recorded in SFT configs and metrics files.
    name: ClassVar[str]
    # SFT kind that training this task produces: "language" for masked-LM, "task" otherwise.
    sft_kind: ClassVar[str] = "task"
    # Metric (without the Trainer's "eval_" prefix) used for model selection on validation data.
    selection_metric: ClassVar[str]
    selection_greater_is_better: ClassVar[bool] = True
    # Kind of text that `vocabulary_lines` returns: "words" (TAB-separated words of a sentence,
    # tokenised with is_split_into_words=True) or "text" (running text).
    vocabulary_line_kind: ClassVar[str] = "words"

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        max_seq_length: int,
        options: TaskArguments | None = None,
    ):
        if max_seq_length < 8:
            raise ValueError(f"max_seq_length must be at least 8 tokens, got {max_seq_length}")
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length
        self.options = options if options is not None else TaskArguments()

    @classmethod
    @abstractmethod
    def read(cls, path: str, **reader_options) -> list[Any]:
        """Read the records of one data file.

        `reader_options` may hold `ner_type_map` and `nli_format`; each task takes the options of
        its own reader and ignores the others.
        """

    @abstractmethod
    def build_model(self, model_name_or_path: str, **from_pretrained_kwargs) -> LoadedModel:
        """Load the base checkpoint into this task's model class, with a new head where needed."""

    @abstractmethod
    def encode(self, records: Sequence[Any], training: bool) -> list[dict[str, Any]]:
        """Turn records into features (token ids plus labels and the metadata needed to decode).

        `training` is True for training data. Masked-LM uses it to leave the masking to the
        collator, while evaluation data is masked once, reproducibly.
        """

    @abstractmethod
    def collate(self, features: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Pad features into a batch holding only the model's keyword arguments."""

    @abstractmethod
    def evaluate(
        self, model: PreTrainedModel, records: Sequence[Any], batch_size: int
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Predict and score every record, returning the metrics and one prediction row per record."""

    @abstractmethod
    def compute_metrics(self, prediction: EvalPrediction) -> dict[str, float]:
        """Score the Trainer's gathered validation predictions (used for model selection)."""

    def preprocess_logits_for_metrics(self, logits: Any, labels: Any) -> Any:
        """Reduce one batch of logits before the Trainer gathers them (argmax by default)."""
        if isinstance(logits, tuple):
            logits = logits[0]
        return logits.argmax(dim=-1)

    def prepare_model_for_training(self, model: PreTrainedModel) -> None:
        """Apply task-specific freezing before training (nothing by default)."""

    @classmethod
    @abstractmethod
    def vocabulary_lines(cls, records: Sequence[Any]) -> Iterable[str]:
        """Yield the exact strings this task tokenises, one line per sentence or text.

        Word-level tasks yield the words of a sentence joined by TAB characters; other tasks yield
        each text that goes to the tokenizer as one line.
        """

    def config_record(self) -> dict[str, Any]:
        """Return what an SFT config records about the task, enough to rebuild the same head."""
        return {"task": self.name, "max_seq_length": self.max_seq_length, **self.options.to_dict()}
