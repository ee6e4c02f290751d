import itertools

import pytest
import torch
from sft_testing import parameters_snapshot, random_sft

from sft import SFT, BaseModelMismatchError, SftConfig, SparseDiff


def diff_sft(
    values_by_index: dict[int, float], size: int = 8, dtype=torch.float32, **abs_values
) -> SFT:
    indices = torch.tensor(sorted(values_by_index), dtype=torch.int64)
    values = torch.tensor([values_by_index[i] for i in sorted(values_by_index)], dtype=dtype)
    return SFT(diffs={"w": SparseDiff((size,), indices, values)}, abs=abs_values)


def test_compose_sums_over_union_of_indices():
    composed = SFT.compose([diff_sft({0: 1.0, 3: 2.0}), diff_sft({3: 0.5, 5: -1.0})])
    assert composed.diffs["w"].indices.tolist() == [0, 3, 5]
    assert composed.diffs["w"].values.tolist() == [1.0, 2.5, -1.0]
    assert composed.config.kind == "composed"


def test_compose_is_order_independent_bit_for_bit():
    # Values of very different magnitudes, where float32 addition is not associative.
    generator = torch.Generator().manual_seed(0)
    operands = []
    for seed in range(4):
        magnitudes = 10.0 ** torch.randint(-8, 4, (64,), generator=generator).float()
        values = torch.randn(64, generator=generator) * magnitudes
        keep = torch.rand(64, generator=generator) < 0.7
        dense = values * keep
        operands.append(SFT(diffs={"w": SparseDiff.from_dense(dense)}))
    naive = [
        ((a.diffs["w"].to_dense() + b.diffs["w"].to_dense()) + c.diffs["w"].to_dense())
        + d.diffs["w"].to_dense()
        for a, b, c, d in itertools.permutations(operands)
    ]
    assert any(not torch.equal(naive[0], other) for other in naive), "test data too easy"

    results = [SFT.compose(list(order)).diffs["w"] for order in itertools.permutations(operands)]
    for result in results[1:]:
        assert torch.equal(result.indices, results[0].indices)
        assert torch.equal(result.values, results[0].values)


def test_compose_with_two_operands_is_commutative(tiny_mlm_model):
    first = random_sft(tiny_mlm_model, density=0.3, seed=0)
    second = random_sft(tiny_mlm_model, density=0.3, seed=1)
    forward, backward = first + second, second + first
    for name in forward.diffs:
        assert torch.equal(forward.diffs[name].values, backward.diffs[name].values), name


def test_composed_sft_applies_like_both(tiny_mlm_model):
    first = random_sft(tiny_mlm_model, density=0.3, seed=0)
    second = random_sft(tiny_mlm_model, density=0.3, seed=1)
    before = parameters_snapshot(tiny_mlm_model)
    (first + second).apply(tiny_mlm_model)
    for name, parameter in tiny_mlm_model.named_parameters():
        expected = before[name] + first.diffs[name].to_dense() + second.diffs[name].to_dense()
        torch.testing.assert_close(parameter, expected, rtol=0, atol=1e-6)


def test_weights_scale_diffs_but_not_abs():
    head = torch.ones(2)
    composed = SFT.compose([diff_sft({1: 2.0}, head=head), diff_sft({1: 4.0})], weights=[0.5, -1.0])
    assert composed.diffs["w"].values.tolist() == [-3.0]
    assert torch.equal(composed.abs["head"], head)
    assert [c["weight"] for c in composed.config.components] == [0.5, -1.0]


def test_scale_and_multiplication_operators():
    sft = diff_sft({1: 2.0, 2: -1.0}, head=torch.ones(2))
    for scaled in (sft.scale(0.5), 0.5 * sft, sft * 0.5):
        assert scaled.diffs["w"].values.tolist() == [1.0, -0.5]
        assert torch.equal(scaled.abs["head"], torch.ones(2))
    assert sft.diffs["w"].values.tolist() == [2.0, -1.0]


@pytest.mark.parametrize(("policy", "expected"), [("first", 1.0), ("last", 2.0)])
def test_abs_conflict_policies(policy, expected):
    first = diff_sft({0: 1.0}, head=torch.full((2,), 1.0))
    second = diff_sft({0: 1.0}, head=torch.full((2,), 2.0))
    composed = SFT.compose([first, second], abs_conflict=policy)
    assert composed.abs["head"].tolist() == [expected, expected]


def test_abs_conflict_raises_by_default():
    first = diff_sft({0: 1.0}, head=torch.ones(2))
    second = diff_sft({0: 1.0}, head=torch.ones(2))
    with pytest.raises(ValueError, match="both have abs values for 'head'.*abs_conflict"):
        SFT.compose([first, second])
    with pytest.raises(ValueError, match="abs_conflict must be one of"):
        SFT.compose([first, second], abs_conflict="average")


def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError, match="'w' has different shapes: \\(8,\\) in .*\\(9,\\) in"):
        SFT.compose([diff_sft({0: 1.0}, size=8), diff_sft({0: 1.0}, size=9)])


def test_base_model_mismatch_is_reported():
    first, second = diff_sft({0: 1.0}), diff_sft({1: 1.0})
    first.config = SftConfig(base_model_name_or_path="bert-base-multilingual-cased")
    second.config = SftConfig(base_model_name_or_path="xlm-roberta-base")
    with pytest.raises(BaseModelMismatchError, match="different base models"):
        SFT.compose([first, second], on_mismatch="raise")
    composed = SFT.compose([first, second], on_mismatch="ignore")
    assert composed.config.base_model_name_or_path == "bert-base-multilingual-cased"


def test_compose_promotes_dtypes():
    composed = SFT.compose([diff_sft({0: 1.0}, dtype=torch.float16), diff_sft({0: 1.0})])
    assert composed.diffs["w"].dtype == torch.float32


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"sfts": []}, ValueError, "at least one SFT"),
        ({"sfts": ["not an sft"]}, TypeError, "SFT objects"),
        ({"sfts": [SFT()], "weights": [1.0, 2.0]}, ValueError, "2 weights for 1 SFTs"),
        ({"sfts": [SFT()], "weights": [float("nan")]}, TypeError, "finite numbers"),
    ],
)
def test_invalid_compose_arguments(arguments, error, message):
    with pytest.raises(error, match=message):
        SFT.compose(**arguments)
