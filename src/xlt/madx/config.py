"""The JSON config saved next to a trained MAD-X adapter and its head weights."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..data.atomic import atomic_write_text

logger = logging.getLogger(__name__)

# Version of the folder layout that `AdapterModule.save_pretrained` writes.
MADX_FORMAT_VERSION = 1
# Kinds of adapter, as of SFTs: language adapters (masked-LM) and task adapters.
ADAPTER_KINDS: tuple[str, ...] = ("language", "task")


class MadxFormatError(ValueError):
    """A MAD-X adapter folder whose config is missing, unreadable or invalid."""


@dataclass
class MadxConfig:
    """Metadata of a trained adapter: what it adapts to, its size, and how it was trained."""

    kind: str = field(
        metadata={"help": f"What the adapter adapts the model to: one of {', '.join(ADAPTER_KINDS)}."}
    )
    task: str = field(
        metadata={"help": "Task the adapter was trained on: mlm for language adapters, else the task name."}
    )
    language: str = field(metadata={"help": "Language code of the training data (e.g. en)."})
    adapter_name: str = field(
        metadata={
            "help": "Name of the adapter inside the model while training: the language code for "
            "language adapters, the task name for task adapters."
        }
    )
    adapter_config: dict[str, Any] = field(
        metadata={
            "help": "The `adapters` library's configuration of the adapter (`AdapterConfig.to_dict()`), "
            "as in the adapter's own adapter_config.json."
        }
    )
    reduction_factor: float = field(
        metadata={"help": "Bottleneck reduction factor: bottleneck size = hidden size // factor."}
    )
    num_adapter_parameters: int = field(
        metadata={
            "help": "Number of trainable entries the adapter adds to the model, invertible adapter "
            "included; compare with an SFT's budget K."
        }
    )
    inv_reduction_factor: float | None = field(
        default=None,
        metadata={"help": "Reduction factor of the invertible adapter; None for adapters without one."},
    )
    head_parameter_names: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Parameters that the base checkpoint lacks (the task head: classifier, parser, "
            "pooler) trained together with the adapter and saved in the head weights file."
        },
    )
    num_head_parameters: int = field(
        default=0, metadata={"help": "Number of entries of the parameters in head_parameter_names."}
    )
    stacked_on: str | None = field(
        default=None,
        metadata={
            "help": "For a task adapter, the language of the language adapter it was stacked on "
            "while training (`Stack(language, task)`); None when trained on the bare model."
        },
    )
    base_model_name_or_path: str | None = field(
        default=None, metadata={"help": "Base model the adapter was trained on, as recorded in its config."}
    )
    adapters_version: str | None = field(
        default=None, metadata={"help": "Version of the `adapters` library that trained the adapter."}
    )
    training_arguments: dict[str, Any] = field(
        default_factory=dict,
        metadata={
            "help": "Arguments of the training run as JSON values: the entries `xlt-train` records "
            "(model, data, method, task, language) plus adapter and trainer arguments."
        },
    )
    format_version: int = field(
        default=MADX_FORMAT_VERSION,
        metadata={"help": "Version of the folder layout that wrote the adapter."},
    )

    def __post_init__(self) -> None:
        if self.kind not in ADAPTER_KINDS:
            raise ValueError(f"kind must be one of {', '.join(ADAPTER_KINDS)}, got {self.kind!r}")
        for name in ("task", "language", "adapter_name"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty string, got {value!r}")
        if (self.kind == "language") != (self.task == "mlm"):
            raise ValueError(
                f"kind={self.kind!r} does not match task={self.task!r}: language adapters are "
                "trained on task mlm and task adapters on any other task"
            )
        for name in ("adapter_config", "training_arguments"):
            if not isinstance(getattr(self, name), dict):
                raise TypeError(f"{name} must be a dict, got {type(getattr(self, name)).__name__}")
        _check_positive_number("reduction_factor", self.reduction_factor)
        if self.inv_reduction_factor is not None:
            _check_positive_number("inv_reduction_factor", self.inv_reduction_factor)
        for name in ("num_adapter_parameters", "num_head_parameters"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if not isinstance(self.head_parameter_names, list) or not all(
            isinstance(name, str) for name in self.head_parameter_names
        ):
            raise TypeError(f"head_parameter_names must be a list of strings, got {self.head_parameter_names!r}")
        if not isinstance(self.format_version, int) or self.format_version < 1:
            raise ValueError(f"format_version must be a positive integer, got {self.format_version!r}")

    def to_json_string(self) -> str:
        """Return the config as indented JSON with sorted keys, ending in a newline."""
        return json.dumps(asdict(self), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, self.to_json_string())

    @classmethod
    def from_json_file(cls, path: str | Path) -> MadxConfig:
        """Read a config, raising MadxFormatError that names the file for any invalid content."""
        path = Path(path)
        if not path.is_file():
            raise MadxFormatError(
                f"{path} not found: the folder contains no adapter written by `xlt-train --method madx`"
            )
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise MadxFormatError(f"{path}: invalid JSON at line {error.lineno}: {error.msg}") from None
        if not isinstance(values, dict):
            raise MadxFormatError(f"{path}: expected a JSON object, got {type(values).__name__}")
        version = values.get("format_version", MADX_FORMAT_VERSION)
        if isinstance(version, int) and version > MADX_FORMAT_VERSION:
            raise MadxFormatError(
                f"{path}: format_version {version} is newer than the newest this code reads "
                f"({MADX_FORMAT_VERSION}); update composable-sft"
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            logger.warning("%s: ignoring unknown config keys %s", path, ", ".join(unknown))
        try:
            return cls(**{key: value for key, value in values.items() if key in known})
        except (TypeError, ValueError) as error:
            raise MadxFormatError(f"{path}: invalid MAD-X adapter config: {error}") from None


def _check_positive_number(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
