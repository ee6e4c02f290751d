"""Reading and writing the legacy format of the original composable-sft library.

A legacy SFT is one file, `pytorch_diff.bin`, written by `torch.save` of::

    {"diffs": {name: {"size": torch.Size, "index_steps": list, "values": 1-D tensor}},
     "abs": {name: tensor}}

Each diff's nonzero coordinates (c0, c1, ...) in a tensor of size (s0, s1, ...) are
flattened in column-major order, c0 + c1·s0 + c2·s0·s1 + ... (the first dimension varies
fastest), sorted ascending with the values permuted to match. `index_steps` contains the
first flat index, as a numpy.int64, followed by the successive differences as Python ints.
An empty diff has `index_steps == []`.

Loading never runs code from the file: it uses `torch.load(weights_only=True)` with an
allow-list of the numpy types these files contain, and rejects anything else.
"""

from __future__ import annotations

import logging
import math
import pickle
import types
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .atomic import atomic_path
from .errors import SftFormatError
from .sparse_diff import SparseDiff

logger = logging.getLogger(__name__)


def _numpy_scalar_constructor():
    core = getattr(np, "_core", None) or np.core
    return core.multiarray.scalar


# numpy scalars pickle as numpy.core.multiarray.scalar(dtype, bytes) under numpy 1.x (the
# released files) and as numpy._core.multiarray.scalar under numpy 2. A dtype unpickles
# through numpy.dtype(...) followed by BUILD on its class (numpy.dtypes.Int64DType in numpy
# 2). Files written by this library store the first index step as numpy.int64(value).
_LEGACY_SAFE_GLOBALS = [
    (_numpy_scalar_constructor(), "numpy.core.multiarray.scalar"),
    (_numpy_scalar_constructor(), "numpy._core.multiarray.scalar"),
    np.dtype,
    type(np.dtype(np.int64)),
    np.int64,
]


def _strides(shape: torch.Size, first_dim_fastest: bool) -> torch.Tensor:
    dims = list(shape) if first_dim_fastest else list(reversed(shape))
    strides = [1]
    for size in dims[:-1]:
        strides.append(strides[-1] * size)
    if not first_dim_fastest:
        strides.reverse()
    return torch.tensor(strides, dtype=torch.int64)


def _reorder_flat_indices(
    indices: torch.Tensor, shape: torch.Size, to_first_dim_fastest: bool
) -> torch.Tensor:
    """Convert flat indices between row-major and column-major order of the same shape."""
    if len(shape) <= 1:
        return indices.clone()
    sizes = torch.tensor(list(shape), dtype=torch.int64)
    source_strides = _strides(shape, first_dim_fastest=not to_first_dim_fastest)
    target_strides = _strides(shape, first_dim_fastest=to_first_dim_fastest)
    coordinates = torch.div(indices.unsqueeze(1), source_strides, rounding_mode="floor") % sizes
    return (coordinates * target_strides).sum(dim=1)


def encode_legacy_diff(diff: SparseDiff) -> dict[str, Any]:
    """Encode one diff as the original library did: size, index_steps and values."""
    column_major = _reorder_flat_indices(diff.indices.cpu(), diff.shape, to_first_dim_fastest=True)
    order = torch.argsort(column_major)
    column_major = column_major[order]
    values = diff.values.detach().cpu()[order]
    if column_major.numel() == 0:
        index_steps: list = []
    else:
        index_steps = [np.int64(column_major[0])] + torch.diff(column_major).tolist()
    return {"size": torch.Size(diff.shape), "index_steps": index_steps, "values": values}


def decode_legacy_diff(encoding: Any, source: str = "<legacy diff>") -> SparseDiff:
    """Decode one legacy diff entry into a SparseDiff with row-major indices.

    Raises SftFormatError naming `source` when the entry is malformed.
    """
    if not isinstance(encoding, dict) or not {"size", "index_steps", "values"} <= set(encoding):
        keys = sorted(encoding) if isinstance(encoding, dict) else type(encoding).__name__
        raise SftFormatError(
            f"{source}: expected a dict with size, index_steps and values, got {keys}"
        )
    size, steps, values = encoding["size"], encoding["index_steps"], encoding["values"]
    if not isinstance(size, (torch.Size, tuple, list)) or not all(
        isinstance(d, (int, np.integer)) and d >= 0 for d in size
    ):
        raise SftFormatError(f"{source}: invalid size {size!r}")
    if not isinstance(steps, list):
        raise SftFormatError(f"{source}: index_steps must be a list, got {type(steps).__name__}")
    if not isinstance(values, torch.Tensor) or values.dim() != 1:
        raise SftFormatError(f"{source}: values must be a 1-D tensor")
    if len(steps) != values.numel():
        raise SftFormatError(f"{source}: {len(steps)} index steps but {values.numel()} values")
    shape = torch.Size(int(d) for d in size)
    numel = math.prod(shape)

    try:
        step_array = np.asarray(steps, dtype=np.int64)
    except (TypeError, ValueError, OverflowError) as error:
        raise SftFormatError(f"{source}: index_steps must hold integers: {error}") from error
    if step_array.size and (step_array[0] < 0 or (step_array[1:] < 1).any()):
        raise SftFormatError(
            f"{source}: index_steps must start with a non-negative index followed by positive "
            "steps (strictly increasing indices)"
        )
    column_major = torch.from_numpy(np.cumsum(step_array, dtype=np.int64))
    if column_major.numel() and int(column_major[-1]) >= numel:
        raise SftFormatError(
            f"{source}: flat index {int(column_major[-1])} is out of range for size {tuple(shape)}"
        )

    row_major = _reorder_flat_indices(column_major, shape, to_first_dim_fastest=False)
    order = torch.argsort(row_major)
    return SparseDiff(shape, row_major[order], values[order])


def save_legacy_format(
    path: str | Path, diffs: Mapping[str, SparseDiff], abs_values: Mapping[str, torch.Tensor]
) -> None:
    """Write `diffs` and `abs_values` to the legacy file `path`, atomically."""
    payload = {
        "diffs": {name: encode_legacy_diff(diff) for name, diff in diffs.items()},
        "abs": {name: value.detach().cpu().clone() for name, value in abs_values.items()},
    }
    with atomic_path(path) as temporary:
        torch.save(payload, temporary, pickle_module=_LEGACY_PICKLE_MODULE)


class _LegacyPickler(pickle.Pickler):
    """Pickler that writes numpy.int64 scalars as numpy.int64(value).

    That form unpickles under numpy 1.x and 2.x alike, unlike numpy's own
    numpy._core.multiarray.scalar, which numpy 1.x cannot import.
    """

    def reducer_override(self, obj):
        if type(obj) is np.int64:
            return np.int64, (int(obj),)
        return NotImplemented


_LEGACY_PICKLE_MODULE = types.SimpleNamespace(
    __name__="sft_legacy_pickle", Pickler=_LegacyPickler, dump=pickle.dump
)


def load_legacy_format(path: str | Path) -> tuple[dict[str, SparseDiff], dict[str, torch.Tensor]]:
    """Read a legacy `pytorch_diff.bin` file without running code from it.

    Returns the diffs (as row-major SparseDiffs) and the abs tensors. Raises SftFormatError
    when the file needs a type outside the allow-list, is corrupt or is malformed.
    """
    path = Path(path)
    try:
        with torch.serialization.safe_globals(_LEGACY_SAFE_GLOBALS):
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise SftFormatError(
            f"{path}: rejected: the file needs a type that legacy SFT files never contain, so it was "
            "not loaded. Legacy files hold only dicts, lists, tensors, torch.Size and numpy int64 "
            f"scalars. Only load it with plain torch.load if you trust its source. Details: {error}"
        ) from error
    except (RuntimeError, EOFError, zipfile.BadZipFile) as error:
        raise SftFormatError(f"{path}: not a readable torch.save file: {error}") from error

    if not isinstance(payload, dict) or "diffs" not in payload:
        keys = sorted(map(str, payload)) if isinstance(payload, dict) else type(payload).__name__
        raise SftFormatError(f"{path}: expected a dict with a 'diffs' entry, got {keys}")
    diffs_payload, abs_payload = payload["diffs"], payload.get("abs") or {}
    if not isinstance(diffs_payload, dict) or not isinstance(abs_payload, dict):
        raise SftFormatError(f"{path}: 'diffs' and 'abs' must be dicts")

    diffs = {
        name: decode_legacy_diff(encoding, source=f"{path}: diff {name!r}")
        for name, encoding in diffs_payload.items()
    }
    abs_values = {}
    for name, value in abs_payload.items():
        if not isinstance(value, torch.Tensor):
            raise SftFormatError(
                f"{path}: abs {name!r} must be a tensor, got {type(value).__name__}"
            )
        abs_values[name] = value
    logger.debug(
        "Loaded %d diffs and %d abs tensors from legacy file %s", len(diffs), len(abs_values), path
    )
    return diffs, abs_values
