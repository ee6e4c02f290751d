"""Compact encodings of sorted flat indices, used by the default SFT file format.

Each diff stores its strictly increasing flat row-major indices in the smallest of four
encodings, chosen per tensor and recorded next to it:

- ``uint8_gaps`` and ``uint16_gaps``: gap codes of width w bits, with E = 2**w − 1. The gap
  of an index is its distance to the previous index, counting the first index from −1,
  so every gap is at least 1. A gap g is written as g // E escape codes, each equal to E
  (advance by E, emit nothing), then one code g % E (advance by that much and emit the
  position). Decoding is vectorised: the emitted indices are the cumulative sum of all
  codes, minus 1, taken at the codes that are not E.
- ``int32`` and ``int64``: the indices themselves. ``int32`` is used only for tensors with
  fewer than 2**31 entries.

Decoding always uses int64 arithmetic, so tensors with 2**31 or more entries decode
correctly.
"""

from __future__ import annotations

import torch

from .errors import SftFormatError

UINT8_GAPS = "uint8_gaps"
UINT16_GAPS = "uint16_gaps"
INT32 = "int32"
INT64 = "int64"
# Tie-break order when two encodings have the same size.
INDEX_ENCODINGS = (UINT8_GAPS, UINT16_GAPS, INT32, INT64)

_GAP_CODE_DTYPES = {UINT8_GAPS: torch.uint8, UINT16_GAPS: torch.uint16}
_ESCAPE_CODES = {UINT8_GAPS: 2**8 - 1, UINT16_GAPS: 2**16 - 1}
_PLAIN_DTYPES = {INT32: torch.int32, INT64: torch.int64}
_BYTES_PER_CODE = {UINT8_GAPS: 1, UINT16_GAPS: 2, INT32: 4, INT64: 8}


def _gaps(indices: torch.Tensor) -> torch.Tensor:
    gaps = torch.empty_like(indices)
    if indices.numel():
        gaps[0] = indices[0] + 1
        torch.sub(indices[1:], indices[:-1], out=gaps[1:])
    return gaps


def _num_escapes(gaps: torch.Tensor, escape: int) -> int:
    # Only gaps of at least `escape` need escape codes. They are usually few, and integer
    # division is slow, so only those are divided.
    large = gaps[gaps >= escape]
    return int(torch.div(large, escape, rounding_mode="floor").sum()) if large.numel() else 0


def _sizes_from_gaps(gaps: torch.Tensor, numel: int) -> dict[str, int]:
    nnz = gaps.numel()
    sizes = {INT64: 8 * nnz}
    if numel <= 2**31:
        sizes[INT32] = 4 * nnz
    for encoding, escape in _ESCAPE_CODES.items():
        sizes[encoding] = _BYTES_PER_CODE[encoding] * (nnz + _num_escapes(gaps, escape))
    return sizes


def _smallest(sizes: dict[str, int]) -> str:
    return min(sizes, key=lambda encoding: (sizes[encoding], INDEX_ENCODINGS.index(encoding)))


def encoded_sizes(indices: torch.Tensor, numel: int) -> dict[str, int]:
    """Return the size in bytes of `indices` under every encoding usable for `numel` entries."""
    return _sizes_from_gaps(_gaps(indices), numel)


def choose_encoding(indices: torch.Tensor, numel: int) -> str:
    """Return the encoding that stores `indices` in the fewest bytes."""
    return encode_smallest(indices, numel)[0]


def _encode_gaps(gaps: torch.Tensor, encoding: str) -> torch.Tensor:
    escape = _ESCAPE_CODES[encoding]
    dtype = _GAP_CODE_DTYPES[encoding]
    if gaps.numel() == 0 or int(gaps.max()) < escape:
        return gaps.to(dtype)
    num_escapes, remainders = torch.div(gaps, escape, rounding_mode="floor"), gaps % escape
    # Each gap takes its escape codes followed by one emitting code.
    emit_positions = torch.cumsum(num_escapes + 1, dim=0) - 1
    codes = torch.full(
        (int(emit_positions[-1]) + 1,), escape, dtype=torch.int32, device=gaps.device
    )
    codes[emit_positions] = remainders.to(torch.int32)
    return codes.to(dtype)


def encode_indices(indices: torch.Tensor, encoding: str) -> torch.Tensor:
    """Encode strictly increasing int64 `indices` with `encoding` and return the codes."""
    if encoding in _PLAIN_DTYPES:
        return indices.to(_PLAIN_DTYPES[encoding])
    if encoding not in _ESCAPE_CODES:
        raise ValueError(f"unknown index encoding {encoding!r}; expected one of {INDEX_ENCODINGS}")
    return _encode_gaps(_gaps(indices), encoding)


def encode_smallest(indices: torch.Tensor, numel: int) -> tuple[str, torch.Tensor]:
    """Encode `indices` with the encoding that takes the fewest bytes; return both."""
    gaps = _gaps(indices)
    if gaps.numel() == 0 or int(gaps.max()) < _ESCAPE_CODES[UINT8_GAPS]:
        # One byte per index with no escapes: no other encoding is smaller.
        return UINT8_GAPS, gaps.to(torch.uint8)
    encoding = _smallest(_sizes_from_gaps(gaps, numel))
    if encoding in _PLAIN_DTYPES:
        return encoding, indices.to(_PLAIN_DTYPES[encoding])
    return encoding, _encode_gaps(gaps, encoding)


def decode_indices(encoding: str, codes: torch.Tensor, nnz: int, numel: int) -> torch.Tensor:
    """Decode `codes` back to strictly increasing int64 flat indices.

    Raises SftFormatError when the codes do not describe `nnz` strictly increasing indices
    in [0, `numel`). The caller adds the file and parameter name to the message.
    """
    if encoding in _PLAIN_DTYPES:
        if codes.dtype != _PLAIN_DTYPES[encoding]:
            raise SftFormatError(f"{encoding} indices stored with dtype {codes.dtype}")
        indices = codes.to(torch.int64)
        increasing = indices.numel() < 2 or bool(torch.all(indices[1:] > indices[:-1]))
    elif encoding in _ESCAPE_CODES:
        if codes.dtype != _GAP_CODE_DTYPES[encoding]:
            raise SftFormatError(f"{encoding} indices stored with dtype {codes.dtype}")
        escape = _ESCAPE_CODES[encoding]
        # torch implements few operations for uint16, so widen those codes first.
        codes = codes if codes.dtype == torch.uint8 else codes.to(torch.int32)
        is_escape = codes == escape
        if not bool(is_escape.any()):
            # Without escapes every code is a gap, and gaps of at least 1 keep indices increasing.
            increasing = codes.numel() == 0 or int(codes.min()) >= 1
            indices = torch.cumsum(codes, dim=0, dtype=torch.int64).sub_(1)
        else:
            if bool(is_escape[-1]):
                raise SftFormatError(f"{encoding} index codes end with an escape code")
            indices = torch.cumsum(codes, dim=0, dtype=torch.int64).sub_(1)[~is_escape]
            increasing = indices.numel() < 2 or bool(torch.all(indices[1:] > indices[:-1]))
    else:
        raise SftFormatError(
            f"unknown index encoding {encoding!r}; expected one of {INDEX_ENCODINGS}"
        )

    if indices.numel() != nnz:
        raise SftFormatError(f"index codes describe {indices.numel()} entries, expected {nnz}")
    if not increasing:
        raise SftFormatError("decoded indices are not strictly increasing")
    if nnz and (int(indices[0]) < 0 or int(indices[-1]) >= numel):
        raise SftFormatError(
            f"decoded indices span [{int(indices[0])}, {int(indices[-1])}], outside [0, {numel})"
        )
    return indices
