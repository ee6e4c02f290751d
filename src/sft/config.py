"""The JSON config saved next to an SFT's tensors."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .constants import FORMAT_VERSION, SFT_KINDS
from .errors import SftFormatError
from .version import __version__

logger = logging.getLogger(__name__)


@dataclass
class SftConfig:
    """Metadata of an SFT: what it was trained from and how, and which format wrote it."""

    kind: str | None = field(
        default=None,
        metadata={
            "help": f"What the SFT adapts the model to: one of {SFT_KINDS}, or None when unknown "
            "(for example an SFT read from a legacy file)."
        },
    )
    base_model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "Hub id or local path of the base model the SFT was trained from, as recorded "
            "in the model's config (`name_or_path`). None when unknown."
        },
    )
    base_model_fingerprint: str | None = field(
        default=None,
        metadata={
            "help": "Hex SHA-256 digest of the sorted (name, shape) pairs of the parameters with a "
            "diff; see `sft.fingerprint.parameter_shapes_digest`. None when unknown."
        },
    )
    ft_params_num: int | None = field(
        default=None,
        metadata={
            "help": "Budget K of tunable entries the SFT was trained with. The stored diffs may hold "
            "fewer entries when some selected entries ended at their base value. None when unknown."
        },
    )
    training_arguments: dict[str, Any] = field(
        default_factory=dict,
        metadata={
            "help": "Arguments the SFT was trained with, as JSON values: for SFTs from the trainer, "
            "`sft_arguments` (SftArguments) and `trainer_arguments` (TrainingArguments)."
        },
    )
    components: list[dict[str, Any]] = field(
        default_factory=list,
        metadata={
            "help": "For a composed SFT, one entry per operand with its `name_or_path`, `kind` and "
            "`weight`, in the order given to `SFT.compose`. Empty otherwise."
        },
    )
    format_version: int = field(
        default=FORMAT_VERSION,
        metadata={"help": "Version of the default file format that wrote the SFT."},
    )
    library_version: str = field(
        default=__version__,
        metadata={"help": "Version of the sft library that created the SFT."},
    )

    def __post_init__(self) -> None:
        if self.kind is not None and self.kind not in SFT_KINDS:
            raise ValueError(f"kind must be one of {SFT_KINDS} or None, got {self.kind!r}")
        for name in ("base_model_name_or_path", "base_model_fingerprint"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{name} must be a string or None, got {type(value).__name__}")
        if self.ft_params_num is not None and (
            isinstance(self.ft_params_num, bool)
            or not isinstance(self.ft_params_num, int)
            or self.ft_params_num < 0
        ):
            raise ValueError(
                f"ft_params_num must be a non-negative integer or None, got {self.ft_params_num!r}"
            )
        if not isinstance(self.training_arguments, dict):
            raise TypeError(
                f"training_arguments must be a dict, got {type(self.training_arguments).__name__}"
            )
        if not isinstance(self.components, list):
            raise TypeError(f"components must be a list, got {type(self.components).__name__}")
        if not isinstance(self.format_version, int) or self.format_version < 1:
            raise ValueError(
                f"format_version must be a positive integer, got {self.format_version!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json_string(self) -> str:
        """Return the config as indented JSON with sorted keys, ending in a newline."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "<dict>") -> SftConfig:
        """Build a config from parsed JSON.

        Raises SftFormatError, naming `source`, for a format version newer than this library
        reads or for invalid field values. Unknown keys are ignored with a warning, so that
        files from later minor versions still load.
        """
        if not isinstance(values, dict):
            raise SftFormatError(f"{source}: expected a JSON object, got {type(values).__name__}")
        version = values.get("format_version", FORMAT_VERSION)
        if isinstance(version, int) and version > FORMAT_VERSION:
            raise SftFormatError(
                f"{source}: format_version {version} is newer than the newest version this library "
                f"reads ({FORMAT_VERSION}); upgrade composable-sft to load it"
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            logger.warning("%s: ignoring unknown config keys %s", source, unknown)
        try:
            return cls(**{key: value for key, value in values.items() if key in known})
        except (TypeError, ValueError) as error:
            raise SftFormatError(f"{source}: invalid SFT config: {error}") from error

    @classmethod
    def from_json_file(cls, path: str) -> SftConfig:
        try:
            with open(path, encoding="utf-8") as file:
                values = json.load(file)
        except json.JSONDecodeError as error:
            raise SftFormatError(
                f"{path}: invalid JSON at line {error.lineno}: {error.msg}"
            ) from error
        return cls.from_dict(values, source=path)
