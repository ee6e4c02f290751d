import pytest
import torch

from sft import SparseDiff


def test_from_dense_keeps_nonzero_entries():
    dense = torch.tensor([[0.0, 1.5, 0.0], [-2.0, 0.0, 0.25]])
    diff = SparseDiff.from_dense(dense)
    assert diff.shape == torch.Size([2, 3])
    assert diff.indices.tolist() == [1, 3, 5]
    assert diff.values.tolist() == [1.5, -2.0, 0.25]
    assert torch.equal(diff.to_dense(), dense)


def test_between_stores_changed_entries_only():
    base = torch.tensor([1.0, 2.0, 3.0, 4.0])
    tuned = torch.tensor([1.0, 2.5, 3.0, 3.0])
    diff = SparseDiff.between(tuned, base)
    assert diff.indices.tolist() == [1, 3]
    assert diff.values.tolist() == [0.5, -1.0]


def test_between_rejects_shape_mismatch():
    with pytest.raises(ValueError, match=r"\(2, 2\) and \(4,\)"):
        SparseDiff.between(torch.zeros(2, 2), torch.zeros(4))


@pytest.mark.parametrize(
    ("indices", "values", "error", "message"),
    [
        (torch.tensor([0, 1], dtype=torch.int32), torch.zeros(2), TypeError, "int64"),
        (torch.tensor([0, 1]), torch.zeros(2, dtype=torch.int64), TypeError, "floating-point"),
        (torch.tensor([0, 1]), torch.zeros(3), ValueError, "2 indices but 3 values"),
        (torch.tensor([1, 1]), torch.zeros(2), ValueError, "strictly increasing"),
        (torch.tensor([2, 1]), torch.zeros(2), ValueError, "strictly increasing"),
        (torch.tensor([0, 6]), torch.zeros(2), ValueError, r"\[0, 6\)"),
        (torch.tensor([-1, 2]), torch.zeros(2), ValueError, r"\[0, 6\)"),
    ],
)
def test_constructor_rejects_invalid_entries(indices, values, error, message):
    with pytest.raises(error, match=message):
        SparseDiff((2, 3), indices, values)


def test_empty_diff_is_valid():
    diff = SparseDiff.empty((4, 5))
    assert diff.nnz == 0
    assert diff.numel == 20
    assert torch.equal(diff.to_dense(), torch.zeros(4, 5))


def test_between_low_precision_is_exact():
    generator = torch.Generator().manual_seed(0)
    base = torch.randn(1000, generator=generator).to(torch.bfloat16)
    tuned = (base.float() + torch.randn(1000, generator=generator) * 1e-2).to(torch.bfloat16)
    diff = SparseDiff.between(tuned, base)
    assert diff.dtype == torch.float32
    reconstructed = (base.float() + diff.to_dense()).to(torch.bfloat16)
    assert torch.equal(reconstructed, tuned)
