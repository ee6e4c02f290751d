"""Argument dataclasses of the entry points, and parsing of a config file plus command-line overrides.

Both entry points accept `PROGRAM [CONFIG.yaml|CONFIG.json] [--name value ...]`: the config file
(optional) gives values for any argument, and command-line options override them. Unknown keys in
the config file are rejected, naming the file and the keys.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import transformers
import yaml
from transformers import HfArgumentParser

from ..tasks import TASK_NAMES
from ..tasks.sources import AUTO_FORMAT

if TYPE_CHECKING:
    from .multisource import SourceSpec

logger = logging.getLogger(__name__)

CONFIG_FILE_SUFFIXES: tuple[str, ...] = (".yaml", ".yml", ".json")


@dataclass
class ModelArguments:
    """Which base model and tokenizer to load, and which SFTs to apply before training."""

    model_name_or_path: str = field(
        metadata={"help": "Base model: a local folder or a Hugging Face hub id."}
    )
    tokenizer_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Tokenizer folder or hub id; defaults to model_name_or_path."},
    )
    apply_sfts: list[str] = field(
        default_factory=list,
        metadata={
            "help": "SFTs (folders or hub ids) applied to the base model before training, without "
            "their dense head values. They become part of the starting weights, so the trained "
            "SFT is relative to them: a task SFT is trained with the source-language SFT applied."
        },
    )

    def __post_init__(self):
        if not self.model_name_or_path:
            raise ValueError("model_name_or_path must name a model folder or hub id, got an empty value")
        if isinstance(self.apply_sfts, str):
            self.apply_sfts = [self.apply_sfts]

    @property
    def tokenizer_path(self) -> str:
        return self.tokenizer_name_or_path or self.model_name_or_path


@dataclass
class DataArguments:
    """Which task to train, on which files, and how to cut the data."""

    task: str = field(metadata={"help": f"Task to train: one of {', '.join(TASK_NAMES)}."})
    language: str | None = field(
        default=None,
        metadata={
            "help": "Language code of the training data (e.g. en), recorded in the SFT config. "
            "Required unless sources is given."
        },
    )
    train_files: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Training files; several files are concatenated in the given order. Required "
            "unless sources is given."
        },
    )
    validation_files: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Validation files in the training language, used for evaluation during "
            "training and model selection. Never pass target-language files here: transfer is "
            "zero-shot."
        },
    )
    sources: str | None = field(
        default=None,
        metadata={
            "help": "Multi-source training: a JSON object mapping each source language to its "
            "settings, or the path of a JSON or YAML file holding it (a config file may give the "
            "mapping itself). Settings of a source: train_files (required), validation_files, "
            "language_sft (the SFT applied while training on its batches; null for none), "
            "max_train_samples and max_eval_samples (default: the options of the same name), "
            "upsampling (a positive integer, default 1). Replaces language, train_files and "
            "validation_files."
        },
    )
    max_seq_length: int = field(
        default=128,
        metadata={
            "help": "Maximum length in tokens, special tokens included: the masked-LM block size, "
            "and the truncation length of the other tasks (words beyond it are not trained)."
        },
    )
    max_train_samples: int | None = field(
        default=None,
        metadata={
            "help": "Use only the first N training records (sentences, NLI pairs or text lines), "
            "counted over the files in order."
        },
    )
    max_eval_samples: int | None = field(
        default=None,
        metadata={"help": "Use only the first N validation records, counted over the files in order."},
    )
    ner_type_map: str | None = field(
        default=None,
        metadata={
            "help": "NER: entity type map as JSON, e.g. '{\"DATE\": \"O\"}'; types mapped to O are "
            "dropped. A config file may give a mapping instead. Default: DATE and MISC to O."
        },
    )
    nli_format: str = field(
        default=AUTO_FORMAT,
        metadata={
            "help": "NLI: file format (americasnli, textfooler or cad), or auto to detect it from "
            "the header line."
        },
    )

    def __post_init__(self):
        if self.task not in TASK_NAMES:
            raise ValueError(f"task must be one of {', '.join(TASK_NAMES)}, got {self.task!r}")
        if isinstance(self.train_files, str):
            self.train_files = [self.train_files]
        if isinstance(self.validation_files, str):
            self.validation_files = [self.validation_files]
        if self.sources is None:
            if not self.train_files:
                raise ValueError("train_files must name at least one file")
            if self.language is None:
                raise ValueError("language is required: the language code of the training data")
            check_language_code("language", self.language)
        else:
            conflicting = [
                name
                for name in ("language", "train_files", "validation_files")
                if getattr(self, name)
            ]
            if conflicting:
                raise ValueError(
                    f"sources replaces {', '.join(conflicting)}: give each source's language and files "
                    "in sources, and leave these options out"
                )
            self.source_specs()
        check_positive("max_seq_length", self.max_seq_length)
        check_positive("max_train_samples", self.max_train_samples, optional=True)
        check_positive("max_eval_samples", self.max_eval_samples, optional=True)
        parse_type_map(self.ner_type_map)

    def reader_options(self) -> dict[str, Any]:
        return {"ner_type_map": parse_type_map(self.ner_type_map), "nli_format": self.nli_format}

    def source_specs(self) -> list[SourceSpec] | None:
        """Return the parsed multi-source settings, or None for single-source training."""
        if self.sources is None:
            return None
        from .multisource import parse_sources  # it uses this module's checks

        return parse_sources(self.sources, self.max_train_samples, self.max_eval_samples)


def check_positive(name: str, value: int | None, optional: bool = False) -> None:
    """Raise ValueError unless `value` is a positive int (or None when `optional`)."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def check_language_code(name: str, value: str) -> None:
    """Raise ValueError unless `value` looks like a language code (letters, digits, - or _)."""
    if not isinstance(value, str) or not value or not all(c.isalnum() or c in "-_" for c in value):
        raise ValueError(
            f"{name} must be a language code such as en or mt (letters, digits, - and _), got {value!r}"
        )


def parse_type_map(value: Any) -> dict[str, str] | None:
    """Parse an NER type map given as a dict or as a JSON object string."""
    if value is None or isinstance(value, dict):
        return value
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"ner_type_map must be a JSON object such as '{{\"DATE\": \"O\"}}', got {value!r} ({error})"
        ) from None
    if not isinstance(parsed, dict):
        raise TypeError(f"ner_type_map must be a JSON object, got {value!r}")
    return parsed


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON config file holding one mapping from argument names to values."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} not found")
    with path.open(encoding="utf-8") as handle:
        try:
            values = json.load(handle) if path.suffix == ".json" else yaml.safe_load(handle)
        except (json.JSONDecodeError, yaml.YAMLError) as error:
            raise ValueError(f"{path}: invalid {path.suffix[1:].upper()}: {error}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise TypeError(
            f"{path}: expected a mapping of argument names to values, got {type(values).__name__}"
        )
    return values


def parse_arguments(
    parser: HfArgumentParser, argv: Sequence[str] | None = None
) -> tuple[tuple[Any, ...], set[str]]:
    """Parse `[CONFIG] [--name value ...]` into the parser's dataclasses.

    Returns the dataclass instances and the names of the arguments given explicitly, in the
    config file or on the command line.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    config_values: dict[str, Any] = {}
    if argv and not argv[0].startswith("-") and argv[0].endswith(CONFIG_FILE_SUFFIXES):
        config_path = argv.pop(0)
        config_values = load_config_file(config_path)
        destinations = {action.dest for action in parser._actions}
        unknown = sorted(set(config_values) - destinations)
        if unknown:
            raise ValueError(
                f"{config_path}: unknown argument names {', '.join(unknown)}; run with --help to "
                "list the accepted names"
            )
        parser.set_defaults(**config_values)
        for action in parser._actions:
            if action.dest in config_values:
                action.required = False

    explicit = set(config_values)
    for item in argv:
        if item.startswith("--"):
            explicit.add(item[2:].split("=", 1)[0].replace("-", "_"))
    return parser.parse_args_into_dataclasses(args=argv), explicit


def setup_logging(level: int) -> None:
    """Send this package's and transformers' logs to stderr at `level`."""
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stderr)],
    )
    for name in ("xlt", "sft"):
        logging.getLogger(name).setLevel(level)
    transformers.utils.logging.set_verbosity(level)
    transformers.utils.logging.enable_default_handler()
    transformers.utils.logging.enable_explicit_format()
