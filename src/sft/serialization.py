"""Reading and writing the default SFT format: a safetensors file plus a JSON config.

The folder contains two files:

- `sft.safetensors`: for each diff, the tensors `diffs.<name>.indices` (encoded flat
  row-major indices, see `sft.index_codec`) and `diffs.<name>.values`; for each abs
  parameter, the tensor `abs.<name>`. The header metadata key `sft_diffs` contains a JSON
  list with one object per diff, in the SFT's order, giving its `name`, `shape`, `nnz`
  and `index_encoding`. The key `sft_format_version` contains the format version.
- `sft_config.json`: the `SftConfig`, as key-sorted JSON.

docs/formats.md describes both files in full.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .atomic import atomic_path, write_text_atomic
from .config import SftConfig
from .constants import FORMAT_VERSION, SFT_CONFIG_NAME, SFT_WEIGHTS_NAME
from .errors import SftFormatError
from .index_codec import decode_indices, encode_smallest
from .sparse_diff import SparseDiff

logger = logging.getLogger(__name__)

DIFFS_METADATA_KEY = "sft_diffs"
FORMAT_VERSION_METADATA_KEY = "sft_format_version"
_DIFF_PREFIX = "diffs."
_ABS_PREFIX = "abs."


def _indices_key(name: str) -> str:
    return f"{_DIFF_PREFIX}{name}.indices"


def _values_key(name: str) -> str:
    return f"{_DIFF_PREFIX}{name}.values"


def _abs_key(name: str) -> str:
    return f"{_ABS_PREFIX}{name}"


def save_default_format(
    folder: str | Path,
    diffs: Mapping[str, SparseDiff],
    abs_values: Mapping[str, torch.Tensor],
    config: SftConfig,
) -> None:
    """Write `sft.safetensors` and `sft_config.json` into `folder`, each atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # Serialise the config first: a value that is not valid JSON must fail before any file changes.
    config_text = config.to_json_string()

    tensors: dict[str, torch.Tensor] = {}
    layout: list[dict] = []
    for name, diff in diffs.items():
        encoding, codes = encode_smallest(diff.indices.cpu(), diff.numel)
        tensors[_indices_key(name)] = codes.contiguous()
        tensors[_values_key(name)] = diff.values.detach().cpu().contiguous()
        layout.append(
            {"name": name, "shape": list(diff.shape), "nnz": diff.nnz, "index_encoding": encoding}
        )
    for name, value in abs_values.items():
        tensors[_abs_key(name)] = value.detach().cpu().contiguous()

    metadata = {
        DIFFS_METADATA_KEY: json.dumps(layout, sort_keys=True),
        FORMAT_VERSION_METADATA_KEY: str(FORMAT_VERSION),
    }
    with atomic_path(folder / SFT_WEIGHTS_NAME) as temporary:
        save_file(tensors, str(temporary), metadata=metadata)
    write_text_atomic(folder / SFT_CONFIG_NAME, config_text)


def _read_layout(path: Path, metadata: Mapping[str, str] | None) -> list[dict]:
    metadata = metadata or {}
    version_text = metadata.get(FORMAT_VERSION_METADATA_KEY)
    if version_text is None or DIFFS_METADATA_KEY not in metadata:
        raise SftFormatError(
            f"{path}: not an SFT file: the safetensors header lacks the "
            f"{FORMAT_VERSION_METADATA_KEY!r} and {DIFFS_METADATA_KEY!r} metadata keys"
        )
    if not version_text.isdigit() or int(version_text) > FORMAT_VERSION:
        raise SftFormatError(
            f"{path}: format version {version_text!r} is not supported; this library reads "
            f"versions up to {FORMAT_VERSION}; upgrade composable-sft to load it"
        )
    try:
        layout = json.loads(metadata[DIFFS_METADATA_KEY])
    except json.JSONDecodeError as error:
        raise SftFormatError(
            f"{path}: invalid JSON in the {DIFFS_METADATA_KEY!r} metadata: {error}"
        ) from error
    if not isinstance(layout, list) or not all(
        isinstance(entry, dict) and isinstance(entry.get("name"), str) for entry in layout
    ):
        raise SftFormatError(
            f"{path}: the {DIFFS_METADATA_KEY!r} metadata must be a JSON list of objects with a 'name'"
        )
    names = [entry["name"] for entry in layout]
    if len(set(names)) != len(names):
        raise SftFormatError(f"{path}: the {DIFFS_METADATA_KEY!r} metadata lists a diff twice")
    return layout


def _read_diff(path: Path, file, entry: dict) -> SparseDiff:
    name = entry["name"]
    if not {"shape", "nnz", "index_encoding"} <= set(entry):
        raise SftFormatError(
            f"{path}: diff {name!r} needs 'shape', 'nnz' and 'index_encoding' in the "
            f"{DIFFS_METADATA_KEY!r} metadata, got {entry!r}"
        )
    shape, nnz = entry["shape"], entry["nnz"]
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise SftFormatError(f"{path}: diff {name!r} has an invalid shape {shape!r}")
    if not isinstance(nnz, int) or nnz < 0:
        raise SftFormatError(f"{path}: diff {name!r} has an invalid nnz {nnz!r}")
    try:
        codes = file.get_tensor(_indices_key(name))
        values = file.get_tensor(_values_key(name))
    except SafetensorError as error:
        raise SftFormatError(f"{path}: diff {name!r}: {error}") from error
    try:
        indices = decode_indices(entry["index_encoding"], codes, nnz, math.prod(shape))
        if values.dim() != 1 or values.numel() != nnz or not values.is_floating_point():
            raise SftFormatError(
                f"values must be a 1-D floating-point tensor of {nnz} entries, got dtype "
                f"{values.dtype} and shape {tuple(values.shape)}"
            )
        # decode_indices checked the index invariants, so the SparseDiff checks are skipped.
        return SparseDiff._unchecked(torch.Size(shape), indices, values)
    except (SftFormatError, TypeError, ValueError) as error:
        raise SftFormatError(f"{path}: diff {name!r}: {error}") from error


def load_default_format(
    folder: str | Path,
) -> tuple[dict[str, SparseDiff], dict[str, torch.Tensor], SftConfig]:
    """Read an SFT saved by `save_default_format` and return its diffs, abs values and config."""
    folder = Path(folder)
    weights_path = folder / SFT_WEIGHTS_NAME
    config_path = folder / SFT_CONFIG_NAME
    if not config_path.is_file():
        raise SftFormatError(
            f"{folder}: {SFT_WEIGHTS_NAME} is present but {SFT_CONFIG_NAME} is missing"
        )
    config = SftConfig.from_json_file(str(config_path))

    try:
        file = safe_open(str(weights_path), framework="pt", device="cpu")
    except SafetensorError as error:
        raise SftFormatError(f"{weights_path}: not a valid safetensors file: {error}") from error
    with file:
        layout = _read_layout(weights_path, file.metadata())
        diffs = {entry["name"]: _read_diff(weights_path, file, entry) for entry in layout}
        diff_keys = {key for name in diffs for key in (_indices_key(name), _values_key(name))}
        abs_values = {}
        for key in file.keys():  # noqa: SIM118 - safe_open objects are not iterable
            if key in diff_keys:
                continue
            if not key.startswith(_ABS_PREFIX):
                raise SftFormatError(
                    f"{weights_path}: unexpected tensor {key!r}; every tensor must be a diff listed in "
                    f"the {DIFFS_METADATA_KEY!r} metadata or start with {_ABS_PREFIX!r}"
                )
            abs_values[key[len(_ABS_PREFIX) :]] = file.get_tensor(key)
    logger.debug(
        "Loaded %d diffs and %d abs tensors from %s", len(diffs), len(abs_values), weights_path
    )
    return diffs, abs_values, config
