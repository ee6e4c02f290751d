import pytest
import torch

from sft.errors import SftFormatError
from sft.index_codec import (
    INDEX_ENCODINGS,
    INT32,
    INT64,
    UINT8_GAPS,
    UINT16_GAPS,
    choose_encoding,
    decode_indices,
    encode_indices,
    encoded_sizes,
)

CASES = {
    "empty": [],
    "first index zero": [0],
    "dense run": list(range(10)),
    "gaps at escape boundaries": [254, 255, 509, 510, 765, 1020 + 65535, 1020 + 2 * 65535 + 1],
    "huge gap": [3, 10**9],
}


@pytest.mark.parametrize("encoding", INDEX_ENCODINGS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_encoding_round_trip(encoding, case):
    indices = torch.tensor(CASES[case], dtype=torch.int64)
    numel = 2 * 10**9
    codes = encode_indices(indices, encoding)
    decoded = decode_indices(encoding, codes, indices.numel(), numel)
    assert decoded.dtype == torch.int64
    assert torch.equal(decoded, indices)


def test_encoded_size_matches_codes():
    indices = torch.tensor(CASES["gaps at escape boundaries"])
    sizes = encoded_sizes(indices, numel=10**6)
    for encoding, size in sizes.items():
        codes = encode_indices(indices, encoding)
        assert codes.numel() * codes.element_size() == size, encoding


def test_choose_encoding_prefers_smallest():
    dense = torch.arange(0, 100000, 10)
    assert choose_encoding(dense, numel=100000) == UINT8_GAPS
    spread = torch.arange(0, 100000 * 1000, 1000)
    assert choose_encoding(spread, numel=10**8) == UINT16_GAPS
    very_spread = torch.arange(0, 10**6 * 10**6, 10**6)
    assert choose_encoding(very_spread, numel=2**31) == INT32
    assert choose_encoding(very_spread, numel=2**40) == INT64


def test_decoding_beyond_int32_range():
    numel = 2**33
    indices = torch.tensor([5, 2**31 - 1, 2**31, 2**32 + 7, numel - 1])
    for encoding in (UINT16_GAPS, INT64):
        decoded = decode_indices(
            encoding, encode_indices(indices, encoding), indices.numel(), numel
        )
        assert decoded.tolist() == indices.tolist()
    assert INT32 not in encoded_sizes(indices, numel)


def test_decode_rejects_wrong_entry_count():
    codes = encode_indices(torch.tensor([1, 2, 3]), UINT8_GAPS)
    with pytest.raises(SftFormatError, match="3 entries, expected 4"):
        decode_indices(UINT8_GAPS, codes, 4, 100)


def test_decode_rejects_out_of_range_index():
    codes = encode_indices(torch.tensor([1, 200]), UINT8_GAPS)
    with pytest.raises(SftFormatError, match="outside"):
        decode_indices(UINT8_GAPS, codes, 2, 100)


def test_decode_rejects_trailing_escape():
    codes = torch.tensor([3, 255], dtype=torch.uint8)
    with pytest.raises(SftFormatError, match="escape"):
        decode_indices(UINT8_GAPS, codes, 1, 1000)


def test_decode_rejects_unknown_encoding():
    with pytest.raises(SftFormatError, match="unknown index encoding"):
        decode_indices("zstd", torch.zeros(1, dtype=torch.uint8), 1, 10)


@pytest.mark.parametrize(
    ("encoding", "codes"),
    [
        (UINT8_GAPS, torch.tensor([1, 0, 2], dtype=torch.uint8)),
        (UINT8_GAPS, torch.tensor([1, 255, 0, 0], dtype=torch.uint8)),
        (INT64, torch.tensor([5, 3, 9])),
    ],
    ids=["zero gap", "zero gap after escape", "unsorted plain"],
)
def test_decode_rejects_repeated_or_unsorted_indices(encoding, codes):
    nnz = 3
    with pytest.raises(SftFormatError, match="not strictly increasing"):
        decode_indices(encoding, codes, nnz, 1000)
