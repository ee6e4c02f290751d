import os
import pickle
import types

import numpy as np
import pytest
import torch
from sft_testing import assert_same_sft, random_sft

from sft import SFT, SftFormatError, SparseDiff
from sft.constants import LEGACY_WEIGHTS_NAME
from sft.legacy import decode_legacy_diff, encode_legacy_diff

NUMPY_SCALAR = (getattr(np, "_core", None) or np.core).multiarray.scalar


class Torch1Pickler(pickle._Pickler):
    """Pure-Python pickler that names numpy's scalar constructor as numpy 1.x did.

    torch 1.x with numpy 1.x pickled numpy.int64 values as
    numpy.core.multiarray.scalar(numpy.dtype("i8", False, True), bytes), with the bytes
    written through _codecs.encode at pickle protocol 2.
    """

    def save_global(self, obj, name=None):
        if obj is NUMPY_SCALAR:
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\nscalar\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)


TORCH1_PICKLE_MODULE = types.SimpleNamespace(
    __name__="torch1_pickle", Pickler=Torch1Pickler, dump=pickle.dump
)


def hand_encoded_payload():
    # Size (2, 3) with entries (0, 1) = 10, (1, 0) = 20 and (1, 2) = 30. Column-major flat
    # indices: (0, 1) -> 2, (1, 0) -> 1, (1, 2) -> 5; sorted: 1, 2, 5.
    matrix = {
        "size": torch.Size([2, 3]),
        "index_steps": [np.int64(1), 1, 3],
        "values": torch.tensor([20.0, 10.0, 30.0]),
    }
    # Size (2, 3, 4) with one entry (1, 2, 3) = 7: flat index 1 + 2 * 2 + 3 * 6 = 23.
    cube = {
        "size": torch.Size([2, 3, 4]),
        "index_steps": [np.int64(23)],
        "values": torch.tensor([7.0]),
    }
    empty = {"size": torch.Size([4]), "index_steps": [], "values": torch.zeros(0)}
    return {
        "diffs": {"matrix": matrix, "cube": cube, "empty": empty},
        "abs": {"head.bias": torch.tensor([1.0, 2.0])},
    }


def check_hand_encoded_sft(loaded: SFT) -> None:
    assert torch.equal(
        loaded.diffs["matrix"].to_dense(), torch.tensor([[0.0, 10.0, 0.0], [20.0, 0.0, 30.0]])
    )
    cube = torch.zeros(2, 3, 4)
    cube[1, 2, 3] = 7.0
    assert torch.equal(loaded.diffs["cube"].to_dense(), cube)
    assert loaded.diffs["empty"].nnz == 0
    assert torch.equal(loaded.abs["head.bias"], torch.tensor([1.0, 2.0]))
    assert loaded.config.kind is None


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "pre-1.6 tar"])
def test_torch1_style_file_loads(tmp_path, zip_format):
    torch.save(
        hand_encoded_payload(),
        tmp_path / LEGACY_WEIGHTS_NAME,
        pickle_module=TORCH1_PICKLE_MODULE,
        _use_new_zipfile_serialization=zip_format,
    )
    raw = (tmp_path / LEGACY_WEIGHTS_NAME).read_bytes()
    assert b"numpy.core.multiarray\nscalar" in raw
    check_hand_encoded_sft(SFT.from_pretrained(tmp_path))


def test_writer_matches_original_layout(tmp_path):
    dense = torch.tensor([[0.0, 10.0, 0.0], [20.0, 0.0, 30.0]])
    SFT(
        diffs={"matrix": SparseDiff.from_dense(dense), "empty": SparseDiff.empty((4,))}
    ).save_pretrained(tmp_path, file_format="legacy")
    raw = torch.load(tmp_path / LEGACY_WEIGHTS_NAME, weights_only=False)
    matrix = raw["diffs"]["matrix"]
    assert type(matrix["size"]) is torch.Size
    assert matrix["size"] == torch.Size([2, 3])
    assert matrix["index_steps"] == [1, 1, 3]
    assert type(matrix["index_steps"][0]) is np.int64
    assert [type(step) for step in matrix["index_steps"][1:]] == [int, int]
    assert matrix["values"].tolist() == [20.0, 10.0, 30.0]
    assert raw["diffs"]["empty"]["index_steps"] == []
    assert raw["abs"] == {}


def test_legacy_round_trip_is_exact(tmp_path, tiny_mlm_model):
    original = random_sft(tiny_mlm_model, density=0.1, seed=3, with_abs=("cls.predictions.bias",))
    original.save_pretrained(tmp_path, file_format="legacy")
    assert_same_sft(original, SFT.from_pretrained(tmp_path / LEGACY_WEIGHTS_NAME))


def test_default_format_preferred_over_legacy(tmp_path, tiny_mlm_model):
    legacy = random_sft(tiny_mlm_model, density=0.1, seed=1)
    default = random_sft(tiny_mlm_model, density=0.1, seed=2)
    legacy.save_pretrained(tmp_path, file_format="legacy")
    default.save_pretrained(tmp_path)
    assert_same_sft(default, SFT.from_pretrained(tmp_path))
    assert_same_sft(legacy, SFT.from_pretrained(tmp_path / LEGACY_WEIGHTS_NAME))


class RunsCommand:
    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_code_in_legacy_file_is_not_run(tmp_path):
    marker = tmp_path / "command-ran"
    payload = {"diffs": {}, "abs": {}, "extra": RunsCommand(f"touch {marker}")}
    torch.save(payload, tmp_path / LEGACY_WEIGHTS_NAME)

    with pytest.raises(SftFormatError, match="rejected.*not loaded"):
        SFT.from_pretrained(tmp_path)
    assert not marker.exists()

    # The same file does run the command under unrestricted unpickling.
    torch.load(tmp_path / LEGACY_WEIGHTS_NAME, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"abs": {}}, "expected a dict with a 'diffs' entry"),
        ({"diffs": {"w": {"size": torch.Size([4])}}}, "size, index_steps and values"),
        (
            {
                "diffs": {
                    "w": {
                        "size": torch.Size([4]),
                        "index_steps": [np.int64(1), 0],
                        "values": torch.zeros(2),
                    }
                }
            },
            "strictly increasing",
        ),
        (
            {
                "diffs": {
                    "w": {
                        "size": torch.Size([4]),
                        "index_steps": [np.int64(3), 1],
                        "values": torch.zeros(2),
                    }
                }
            },
            "out of range",
        ),
        (
            {
                "diffs": {
                    "w": {
                        "size": torch.Size([4]),
                        "index_steps": [np.int64(1)],
                        "values": torch.zeros(2),
                    }
                }
            },
            "1 index steps but 2 values",
        ),
        ({"diffs": {}, "abs": {"b": [1.0]}}, "abs 'b' must be a tensor"),
    ],
)
def test_malformed_legacy_file_is_rejected(tmp_path, payload, message):
    torch.save(payload, tmp_path / LEGACY_WEIGHTS_NAME)
    with pytest.raises(SftFormatError, match=message):
        SFT.from_pretrained(tmp_path)


def test_not_a_torch_file_is_rejected(tmp_path):
    (tmp_path / LEGACY_WEIGHTS_NAME).write_bytes(b"not a pickle")
    with pytest.raises(SftFormatError, match=LEGACY_WEIGHTS_NAME):
        SFT.from_pretrained(tmp_path)


def test_decoding_beyond_int32_range():
    # Size (2**16, 2**16) has 2**32 entries. Column-major index 2**32 - 3 is (65533, 65535).
    encoding = {
        "size": torch.Size([2**16, 2**16]),
        "index_steps": [np.int64(2**32 - 3), 1],
        "values": torch.ones(2),
    }
    diff = decode_legacy_diff(encoding)
    assert diff.indices.tolist() == [65533 * 2**16 + 65535, 65534 * 2**16 + 65535]


def test_encode_decode_are_inverse_for_three_dimensions():
    generator = torch.Generator().manual_seed(0)
    dense = torch.randn(3, 5, 7, generator=generator) * (
        torch.rand(3, 5, 7, generator=generator) < 0.3
    )
    diff = SparseDiff.from_dense(dense)
    decoded = decode_legacy_diff(encode_legacy_diff(diff))
    assert torch.equal(decoded.indices, diff.indices)
    assert torch.equal(decoded.values, diff.values)
