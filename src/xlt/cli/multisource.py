"""The `sources` option of `xlt-train`: the settings of each source language of multi-source training.

`sources` maps each source language to its training files, optional validation files, the
language SFT applied while training on its batches, caps on its records and an upsampling
factor. `xlt-train` reads and encodes every source on its own (see
`xlt.cli.training_data.read_multisource_data`) and trains with `sft.MultiSourceSparseFineTuner`
or `sft.MultiSourceTrainer`, so that each batch comes from one source and is trained with that
source's language SFT applied. The task module is then relative to the bare base model.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sft import SFT

from .arguments import check_language_code, check_positive, load_config_file

logger = logging.getLogger(__name__)

# Settings a source may give; every other key is rejected.
SOURCE_SETTINGS: tuple[str, ...] = (
    "train_files",
    "validation_files",
    "language_sft",
    "max_train_samples",
    "max_eval_samples",
    "upsampling",
)


@dataclass(frozen=True)
class SourceSpec:
    """Settings of one source language of multi-source training."""

    language: str
    train_files: tuple[str, ...]
    validation_files: tuple[str, ...] = ()
    # SFT folder or hub id applied, without its abs values, while training on this source's
    # batches; None trains the source's batches on the bare model.
    language_sft: str | None = None
    # Caps on the records read, counted over the files in order.
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    # How many times one epoch shows each training example of this source.
    upsampling: int = 1

    def record(self) -> dict[str, Any]:
        """Return the settings as a JSON-serialisable dict."""
        values = asdict(self)
        values["train_files"] = list(self.train_files)
        values["validation_files"] = list(self.validation_files)
        return values


def _read_mapping(value: Any) -> tuple[Mapping[str, Any], str]:
    """Return the sources mapping given inline, as JSON text or as a file path, and its origin."""
    if isinstance(value, Mapping):
        return value, "sources"
    if not isinstance(value, str) or not value.strip():
        raise TypeError(
            f"sources must be a JSON object, a mapping or the path of a JSON or YAML file, got {value!r}"
        )
    text = value.strip()
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"sources is not valid JSON ({error}): {text[:200]!r}") from None
        if not isinstance(parsed, dict):
            raise TypeError(f"sources must be a JSON object, got {type(parsed).__name__}")
        return parsed, "sources"
    return load_config_file(text), f"sources file {text}"


def _file_list(value: Any, where: str, required: bool) -> tuple[str, ...]:
    if value is None:
        value = []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Sequence) or not all(isinstance(item, str) and item for item in value):
        raise TypeError(f"{where} must be a list of file paths, got {value!r}")
    if required and not value:
        raise ValueError(f"{where} must name at least one file")
    return tuple(value)


def _parse_source(
    language: Any,
    settings: Any,
    origin: str,
    default_max_train: int | None,
    default_max_eval: int | None,
) -> SourceSpec:
    check_language_code(f"{origin}: source language", language)
    where = f"{origin}: source {language}"
    if not isinstance(settings, Mapping):
        raise TypeError(f"{where} must map setting names to values, got {settings!r}")
    unknown = sorted(set(settings) - set(SOURCE_SETTINGS))
    if unknown:
        raise ValueError(
            f"{where} has unknown settings {unknown}; the settings are {', '.join(SOURCE_SETTINGS)}"
        )
    language_sft = settings.get("language_sft")
    if language_sft is not None and (not isinstance(language_sft, str) or not language_sft):
        raise TypeError(
            f"{where}.language_sft must be an SFT folder or hub id, or null, got {language_sft!r}"
        )
    spec = SourceSpec(
        language=language,
        train_files=_file_list(settings.get("train_files"), f"{where}.train_files", required=True),
        validation_files=_file_list(
            settings.get("validation_files"), f"{where}.validation_files", required=False
        ),
        language_sft=language_sft,
        max_train_samples=settings.get("max_train_samples", default_max_train),
        max_eval_samples=settings.get("max_eval_samples", default_max_eval),
        upsampling=settings.get("upsampling", 1),
    )
    check_positive(f"{where}.max_train_samples", spec.max_train_samples, optional=True)
    check_positive(f"{where}.max_eval_samples", spec.max_eval_samples, optional=True)
    check_positive(f"{where}.upsampling", spec.upsampling)
    return spec


def parse_sources(
    value: Any, default_max_train: int | None = None, default_max_eval: int | None = None
) -> list[SourceSpec]:
    """Parse the `sources` option into one `SourceSpec` per source language, in the given order.

    `value` is a mapping, JSON object text or the path of a JSON or YAML file holding the
    mapping. Caps that a source leaves out default to `default_max_train` and
    `default_max_eval`. Raises ValueError or TypeError naming the source and the setting.
    """
    mapping, origin = _read_mapping(value)
    if not mapping:
        raise ValueError(f"{origin} names no source; give at least one source language")
    return [
        _parse_source(language, settings, origin, default_max_train, default_max_eval)
        for language, settings in mapping.items()
    ]


def load_source_sfts(specs: Sequence[SourceSpec]) -> dict[str, SFT | None]:
    """Load the language SFT of every source (None for a source without one)."""
    source_sfts: dict[str, SFT | None] = {}
    for spec in specs:
        if spec.language_sft is None:
            logger.info("Source %s: no language SFT, its batches train on the bare model", spec.language)
            source_sfts[spec.language] = None
        else:
            source_sfts[spec.language] = SFT.from_pretrained(spec.language_sft)
    return source_sfts
