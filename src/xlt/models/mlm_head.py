"""Train a masked-LM head on a frozen encoder.

Usage::

    python -m xlt.models.mlm_head --model resources/models/multilingual-e5-small-trimmed \\
        --text mt=resources/corpora/mt.txt fo=resources/corpora/fo.txt ... \\
        --out resources/models/multilingual-e5-small-mlm \\
        --report resources/models/multilingual-e5-small-mlm.json

It is meant for encoders saved without a masked-LM head, such as the converted e5 model, and runs
on the CPU. The output is a ``BertForMaskedLM`` whose encoder and embeddings are those of
``--model`` unchanged. Its head (dense transform, GELU, LayerNorm and the output bias) is trained,
and the decoder stays tied to the input embeddings. The folder also contains the tokenizer, so it
loads with ``AutoModelForMaskedLM`` and, with a new head, ``AutoModelForTokenClassification`` and
``AutoModelForSequenceClassification``.

Because the encoder is frozen, the encoder runs once: the last hidden states at the masked
positions of every training and held-out sentence are cached, and the head trains for several
epochs on that cache. The masking (which positions, and the 80/10/10 split into ``<mask>``, a
random token and the original token) is therefore drawn once per sentence, not once per epoch.
Logits are computed only at masked positions.

Training starts the output bias at the log frequency of each id among the training targets, then
trains the transform and the bias with AdamW.

Per language, a fixed, seeded sample of lines is held out. The report gives the top-1 accuracy of
the head at held-out masked positions, all replaced by ``<mask>``: before training (the head as
loaded, which for a model without one is freshly initialised with a zero output bias), after it,
and for reference the accuracy of always predicting the most frequent training target.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import random
import sys
import time
import zlib
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm
from transformers import (
    AutoModelForMaskedLM,
    AutoTokenizer,
    DataCollatorForLanguageModeling,
    HfArgumentParser,
    PreTrainedModel,
    get_linear_schedule_with_warmup,
)

from xlt.models.outputs import atomic_output_dir, provenance
from xlt.models.text_files import parse_language_files, read_text_lines
from xlt.provenance import write_json_atomic

logger = logging.getLogger(__name__)

# Pseudo-count added to every vocabulary entry when the output bias starts from log frequencies.
PRIOR_PSEUDO_COUNT = 0.1


@dataclass
class MlmHeadArguments:
    """Settings of `python -m xlt.models.mlm_head`."""

    model: str = field(metadata={"help": "Encoder folder (or hub id) with its tokenizer."})
    text: list[str] = field(
        metadata={"help": "Language corpora as LANG=FILE, one sentence per line."}
    )
    out: str = field(metadata={"help": "Output folder for the BertForMaskedLM and tokenizer."})
    report: str = field(metadata={"help": "Output JSON file with settings, accuracies and times."})
    train_lines_per_language: int = field(
        default=300, metadata={"help": "Training sentences sampled per language (at most)."}
    )
    eval_lines_per_language: int = field(
        default=100, metadata={"help": "Held-out sentences sampled per language (at most)."}
    )
    max_length: int = field(
        default=128, metadata={"help": "Tokens per sentence, special tokens included."}
    )
    mlm_probability: float = field(
        default=0.15, metadata={"help": "Probability that a non-special token is masked."}
    )
    epochs: int = field(default=4, metadata={"help": "Passes of the head over the cached states."})
    batch_size: int = field(
        default=512, metadata={"help": "Masked positions per optimisation step."}
    )
    encode_batch_size: int = field(
        default=64, metadata={"help": "Sentences per encoder forward pass."}
    )
    learning_rate: float = field(default=2e-3, metadata={"help": "Peak AdamW learning rate."})
    warmup_ratio: float = field(
        default=0.05, metadata={"help": "Fraction of steps with linear warm-up, then linear decay."}
    )
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay."})
    bf16: bool = field(
        default=False,
        metadata={"help": "Run the encoder pass and the head's matrix products under CPU "
                  "bfloat16 autocast (faster on CPUs with AVX512-BF16). The cached states, the "
                  "head weights and the loss stay float32."},
    )
    seed: int = field(default=42, metadata={"help": "Seed of sampling, masking and the head init."})

    def __post_init__(self) -> None:
        if not self.text:
            raise ValueError("text: give at least one LANG=FILE")
        self.corpora = parse_language_files(self.text)
        positive = ("train_lines_per_language", "eval_lines_per_language", "max_length",
                    "epochs", "batch_size", "encode_batch_size")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r}: must be a positive integer")
        if self.max_length < 3:
            raise ValueError(f"max_length={self.max_length}: must leave room for one token "
                             "between <s> and </s> (at least 3)")
        if not 0.0 < self.mlm_probability < 1.0:
            raise ValueError(f"mlm_probability={self.mlm_probability}: must be in (0, 1)")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate={self.learning_rate}: must be positive")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"warmup_ratio={self.warmup_ratio}: must be in [0, 1)")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay={self.weight_decay}: must be non-negative")
        if not isinstance(self.bf16, bool):
            raise TypeError(f"bf16={self.bf16!r}: must be true or false")


def split_lines(lines: list[str], language: str, train: int, held_out: int, seed: int):
    """Return ``(train_lines, held_out_lines)``, a seeded sample that depends on the language.

    At most half of a small corpus is held out.
    """
    order = list(range(len(lines)))
    random.Random(seed * 1_000_003 + zlib.crc32(language.encode())).shuffle(order)
    held_out = min(held_out, len(lines) // 2)
    evaluation = [lines[i] for i in order[:held_out]]
    training = [lines[i] for i in order[held_out : held_out + train]]
    return training, evaluation


@dataclass
class CachedPositions:
    """Last hidden states at masked positions, with the original ids and a language index."""

    states: torch.Tensor
    targets: torch.Tensor
    languages: torch.Tensor


@torch.no_grad()
def encode_masked(
    model: PreTrainedModel,
    tokenizer,
    sentences: list[tuple[int, str]],
    collator: DataCollatorForLanguageModeling,
    max_length: int,
    batch_size: int,
    description: str,
    bf16: bool = False,
) -> CachedPositions:
    """Mask `sentences` (language index, text) and cache the encoder output at masked positions.

    With `bf16` the encoder runs under bfloat16 autocast; the cache is float32 either way.
    """
    encoder = model.base_model
    encoded = tokenizer([text for _, text in sentences], truncation=True, max_length=max_length,
                        return_special_tokens_mask=True)
    order = sorted(range(len(sentences)), key=lambda i: len(encoded["input_ids"][i]))
    states, targets, languages = [], [], []
    for start in tqdm(range(0, len(order), batch_size), desc=description, unit="batch",
                      disable=None):
        rows = order[start : start + batch_size]
        features = [
            {"input_ids": encoded["input_ids"][i],
             "special_tokens_mask": encoded["special_tokens_mask"][i]}
            for i in rows
        ]
        batch = collator(features)
        with _autocast(bf16):
            hidden = encoder(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
            ).last_hidden_state
        masked = batch["labels"] != -100
        states.append(hidden[masked].float())
        targets.append(batch["labels"][masked])
        row_language = torch.tensor([sentences[i][0] for i in rows])
        languages.append(row_language[:, None].expand_as(masked)[masked])
    return CachedPositions(torch.cat(states), torch.cat(targets), torch.cat(languages))


@torch.no_grad()
def accuracy_by_language(
    model: PreTrainedModel, cache: CachedPositions, count: int, chunk: int = 2048
) -> list[float]:
    """Return the top-1 accuracy of the head on `cache` for each of `count` languages."""
    correct = torch.zeros(count)
    total = torch.zeros(count)
    for start in range(0, len(cache.targets), chunk):
        logits = _head_logits(model, cache.states[start : start + chunk])
        hits = (logits.argmax(dim=-1) == cache.targets[start : start + chunk]).float()
        languages = cache.languages[start : start + chunk]
        correct.index_add_(0, languages, hits)
        total.index_add_(0, languages, torch.ones_like(hits))
    return [float(c / t) if t > 0 else float("nan") for c, t in zip(correct, total)]


def _autocast(enabled: bool):
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled)


def _head_logits(model: PreTrainedModel, states: torch.Tensor) -> torch.Tensor:
    # BertForMaskedLM.cls maps hidden states to vocabulary logits (transform, tied decoder, bias).
    return model.cls(states)


def head_parameters(model: PreTrainedModel) -> list[torch.nn.Parameter]:
    """Freeze everything except the head transform and the output bias; return those."""
    predictions = model.cls.predictions
    if predictions.decoder.weight is not model.get_input_embeddings().weight:
        raise ValueError("the decoder is not tied to the input embeddings; "
                         "set tie_word_embeddings=True in the model config")
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    trainable = list(predictions.transform.parameters()) + [predictions.bias]
    for parameter in trainable:
        parameter.requires_grad_(True)
    return trainable


@torch.no_grad()
def initialise_bias(model: PreTrainedModel, targets: torch.Tensor) -> None:
    """Set the output bias to the log relative frequency of each id among the training targets.

    The bias then starts at the unigram prior instead of zero. AdamW moves each bias entry by
    about one learning rate per step, so starting from zero the prior is out of reach of a
    training run of a few hundred steps.
    """
    counts = torch.bincount(targets, minlength=model.config.vocab_size).float()
    counts += PRIOR_PSEUDO_COUNT
    model.cls.predictions.bias.copy_(torch.log(counts / counts.sum()))


def most_frequent_token_accuracy(train: CachedPositions, held_out: CachedPositions,
                                 count: int) -> list[float]:
    """Return the accuracy per language of always predicting the most frequent training target."""
    most_frequent = torch.bincount(train.targets).argmax()
    hits = (held_out.targets == most_frequent).float()
    correct = torch.zeros(count).index_add_(0, held_out.languages, hits)
    total = torch.zeros(count).index_add_(0, held_out.languages, torch.ones_like(hits))
    return [float(c / t) if t > 0 else float("nan") for c, t in zip(correct, total)]


def train_head(
    model: PreTrainedModel,
    cache: CachedPositions,
    args: MlmHeadArguments,
    held_out: CachedPositions | None = None,
) -> list[dict[str, float]]:
    """Train the head on the cached positions; return each epoch's mean loss.

    With `held_out`, each epoch's record also has the held-out accuracy over all languages.

    The output bias starts from the unigram prior of the targets (`initialise_bias`), then the
    transform and the bias train together with AdamW and a linear warm-up and decay.
    """
    parameters = head_parameters(model)
    initialise_bias(model, cache.targets)
    optimizer = torch.optim.AdamW(parameters, lr=args.learning_rate,
                                  weight_decay=args.weight_decay)
    steps_per_epoch = math.ceil(len(cache.targets) / args.batch_size)
    total_steps = steps_per_epoch * args.epochs
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(args.warmup_ratio * total_steps), total_steps
    )
    generator = torch.Generator().manual_seed(args.seed)
    model.train()
    epochs = []
    progress = tqdm(total=total_steps, desc="training head", unit="step", disable=None)
    for epoch in range(args.epochs):
        permutation = torch.randperm(len(cache.targets), generator=generator)
        epoch_loss = 0.0
        for start in range(0, len(permutation), args.batch_size):
            index = permutation[start : start + args.batch_size]
            with _autocast(args.bf16):
                logits = _head_logits(model, cache.states[index])
            loss = torch.nn.functional.cross_entropy(logits.float(), cache.targets[index])
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            epoch_loss += loss.item() * len(index)
            progress.update(1)
        record = {"epoch": epoch + 1, "mean_loss": epoch_loss / len(permutation)}
        if held_out is not None:
            model.eval()
            record["held_out_accuracy"] = accuracy_by_language(model, held_out, 1)[0]
            model.train()
        epochs.append(record)
        logger.info("epoch %s", record)
    progress.close()
    model.eval()
    return epochs


def run(args: MlmHeadArguments) -> dict:
    """Train the head, save the model folder and the report; return the report."""
    started = time.perf_counter()
    load_at_start = _load_average()
    torch.manual_seed(args.seed)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    if tokenizer.mask_token is None:
        raise ValueError(f"{args.model}: the tokenizer has no mask token")
    # A new head is initialised from the seeded global generator.
    model = AutoModelForMaskedLM.from_pretrained(args.model).eval()
    if not hasattr(model, "cls"):
        raise ValueError(f"{args.model}: {type(model).__name__} is not a BERT masked-LM model; "
                         "only BertForMaskedLM heads are supported")

    languages = list(args.corpora)
    train_sentences: list[tuple[int, str]] = []
    eval_sentences: list[tuple[int, str]] = []
    per_language: dict[str, dict] = {}
    for index, language in enumerate(languages):
        path = args.corpora[language]
        lines = list(read_text_lines(path))
        if len(lines) < 2:
            raise ValueError(f"{path}: {len(lines)} non-empty lines, but at least 2 are needed "
                             "(one for training, one held out)")
        training, evaluation = split_lines(lines, language, args.train_lines_per_language,
                                           args.eval_lines_per_language, args.seed)
        train_sentences += [(index, line) for line in training]
        eval_sentences += [(index, line) for line in evaluation]
        per_language[language] = {"file": str(path), "lines": len(lines),
                                  "train_lines": len(training), "eval_lines": len(evaluation)}

    train_collator = DataCollatorForLanguageModeling(
        tokenizer, mlm_probability=args.mlm_probability, seed=args.seed, return_tensors="pt"
    )
    eval_collator = DataCollatorForLanguageModeling(
        tokenizer, mlm_probability=args.mlm_probability, mask_replace_prob=1.0,
        random_replace_prob=0.0, seed=args.seed + 1, return_tensors="pt"
    )
    encode_started = time.perf_counter()
    logger.info("encoding %d training and %d held-out sentences of %d languages",
                len(train_sentences), len(eval_sentences), len(languages))
    eval_cache = encode_masked(model, tokenizer, eval_sentences, eval_collator, args.max_length,
                               args.encode_batch_size, "encoding held-out", args.bf16)
    train_cache = encode_masked(model, tokenizer, train_sentences, train_collator,
                                args.max_length, args.encode_batch_size, "encoding training",
                                args.bf16)
    encode_seconds = time.perf_counter() - encode_started
    logger.info("cached %d training and %d held-out masked positions in %.0f s",
                len(train_cache.targets), len(eval_cache.targets), encode_seconds)

    before = accuracy_by_language(model, eval_cache, len(languages))
    train_started = time.perf_counter()
    # The held-out accuracy per epoch pools every language (language index 0 for all).
    pooled = CachedPositions(eval_cache.states, eval_cache.targets,
                             torch.zeros_like(eval_cache.languages))
    epochs = train_head(model, train_cache, args, held_out=pooled)
    train_seconds = time.perf_counter() - train_started
    after = accuracy_by_language(model, eval_cache, len(languages))
    baseline = most_frequent_token_accuracy(train_cache, eval_cache, len(languages))

    eval_counts = torch.bincount(eval_cache.languages, minlength=len(languages)).tolist()
    train_counts = torch.bincount(train_cache.languages, minlength=len(languages)).tolist()
    for index, language in enumerate(languages):
        per_language[language].update(
            train_masked_tokens=train_counts[index], eval_masked_tokens=eval_counts[index],
            accuracy_before=before[index], accuracy_after=after[index],
            accuracy_most_frequent_token=baseline[index],
        )
    settings = {key: value for key, value in dataclasses.asdict(args).items()}
    report = {
        "settings": settings,
        "languages": per_language,
        "overall": {
            "train_masked_tokens": len(train_cache.targets),
            "eval_masked_tokens": len(eval_cache.targets),
            "accuracy_before": _weighted(before, eval_counts),
            "accuracy_after": _weighted(after, eval_counts),
            "accuracy_most_frequent_token": _weighted(baseline, eval_counts),
        },
        "epochs": epochs,
        "vocab_size": model.config.vocab_size,
        "wall_time_seconds": {"encode": encode_seconds, "train_head": train_seconds},
        "torch_threads": torch.get_num_threads(),
        # Wall times on a shared machine depend on its load, which the 1-minute averages record.
        "load_average": {"start": load_at_start, "end": _load_average()},
        "provenance": provenance(),
    }

    with atomic_output_dir(args.out) as staging:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
    report["wall_time_seconds"]["total"] = time.perf_counter() - started
    write_json_atomic(args.report, report)
    logger.info("held-out masked-token accuracy %.4f -> %.4f",
                report["overall"]["accuracy_before"], report["overall"]["accuracy_after"])
    return report


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def _weighted(values: list[float], counts: list[int]) -> float:
    total = sum(counts)
    return sum(v * c for v, c in zip(values, counts) if c) / total if total else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = HfArgumentParser(MlmHeadArguments)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        (args,) = parser.parse_args_into_dataclasses(args=argv)
        run(args)
    except (OSError, ValueError) as error:
        logger.error("%s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
