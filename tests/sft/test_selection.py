import pytest
import torch

from sft.selection import largest_change_masks, random_masks, top_k_masks


def brute_force_top_k(scores: list[torch.Tensor], k: int, exclude=None) -> torch.Tensor:
    flat = torch.cat([score.reshape(-1).float() for score in scores])
    if exclude is not None:
        excluded = torch.cat([mask.reshape(-1) for mask in exclude])
        flat = torch.where(excluded, torch.tensor(-1.0), flat)
    order = sorted(range(flat.numel()), key=lambda i: (-flat[i].item(), i))[:k]
    expected = torch.zeros(flat.numel(), dtype=torch.bool)
    expected[order] = True
    return expected


def flatten(masks: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([mask.reshape(-1) for mask in masks])


@pytest.mark.parametrize("seed", range(20))
def test_matches_brute_force_with_ties(seed):
    generator = torch.Generator().manual_seed(seed)
    shapes = [tuple(torch.randint(1, 30, (2,), generator=generator).tolist()) for _ in range(3)]
    # Rounding to one decimal creates many ties, also at the threshold.
    current = [torch.randn(shape, generator=generator).round(decimals=1) for shape in shapes]
    reference = [torch.zeros(shape) for shape in shapes]
    total = sum(tensor.numel() for tensor in current)
    k = int(torch.randint(0, total + 1, (1,), generator=generator))
    masks = largest_change_masks(current, reference, k, show_progress=False)
    assert [mask.shape for mask in masks] == [tensor.shape for tensor in current]
    assert torch.equal(flatten(masks), brute_force_top_k([c.abs() for c in current], k))


def test_exactly_k_selected_when_all_scores_tie():
    scores = [torch.zeros(4, 4), torch.zeros(10)]
    masks = top_k_masks(scores, 7, show_progress=False)
    assert int(flatten(masks).sum()) == 7
    # Ties go to the first tensor, then to the lowest flat indices.
    assert flatten(masks).nonzero().flatten().tolist() == list(range(7))


def test_excluded_entries_are_never_selected():
    generator = torch.Generator().manual_seed(0)
    current = [torch.randn(20, 20, generator=generator), torch.randn(50, generator=generator)]
    reference = [torch.zeros(20, 20), torch.zeros(50)]
    exclude = [torch.rand(20, 20, generator=generator) < 0.5, torch.zeros(50, dtype=torch.bool)]
    masks = largest_change_masks(current, reference, 100, exclude=exclude, show_progress=False)
    assert not bool((masks[0] & exclude[0]).any())
    expected = brute_force_top_k([c.abs() for c in current], 100, exclude)
    assert torch.equal(flatten(masks), expected)


def test_scores_across_exponent_range():
    # Exercises both radix passes: values span many float exponents and share high bits.
    values = torch.tensor([1e-30, 1e-5, 1.0, 1.0000001, 1.0000002, 3e5, float("inf"), 0.0])
    masks = top_k_masks([values], 4, show_progress=False)
    assert masks[0].tolist() == [False, False, False, True, True, True, True, False]


def test_large_tensor_spanning_several_chunks():
    generator = torch.Generator().manual_seed(0)
    scores = [torch.rand(5_000_000, generator=generator), torch.rand(300, generator=generator)]
    k = 123_457
    masks = top_k_masks(scores, k, show_progress=False)
    flat = torch.cat(scores)
    selected = flatten(masks)
    assert int(selected.sum()) == k
    assert float(flat[selected].min()) >= float(flat[~selected].max())


def test_rejects_too_many_entries():
    with pytest.raises(ValueError, match="cannot select 11 entries: only 10"):
        top_k_masks([torch.ones(10)], 11, show_progress=False)


def test_rejects_nan_scores():
    with pytest.raises(ValueError, match="NaN"):
        top_k_masks([torch.tensor([1.0, float("nan")])], 1, show_progress=False)


def test_rejects_negative_scores():
    with pytest.raises(ValueError, match="non-negative"):
        top_k_masks([torch.tensor([1.0, -2.0])], 1, show_progress=False)


def test_top_k_masks_leaves_scores_unchanged():
    scores = [torch.tensor([3.0, 1.0, 2.0])]
    exclude = [torch.tensor([True, False, False])]
    masks = top_k_masks(scores, 1, exclude=exclude, show_progress=False)
    assert masks[0].tolist() == [False, False, True]
    assert scores[0].tolist() == [3.0, 1.0, 2.0]


def test_random_masks_are_seeded_and_exact():
    shapes = [torch.Size([30, 40]), torch.Size([500])]
    first = random_masks(shapes, 321, seed=7, show_progress=False)
    again = random_masks(shapes, 321, seed=7, show_progress=False)
    other = random_masks(shapes, 321, seed=8, show_progress=False)
    assert int(flatten(first).sum()) == 321
    assert torch.equal(flatten(first), flatten(again))
    assert not torch.equal(flatten(first), flatten(other))


def test_random_masks_spread_over_tensors():
    shapes = [torch.Size([1000]), torch.Size([1000])]
    masks = random_masks(shapes, 1000, seed=0, show_progress=False)
    counts = [int(mask.sum()) for mask in masks]
    # Binomial(1000, 0.5) lies in [430, 570] with probability above 0.9999.
    assert 430 <= counts[0] <= 570


def test_random_masks_respect_exclusion():
    shapes = [torch.Size([100])]
    exclude = [torch.arange(100) < 60]
    masks = random_masks(shapes, 40, seed=0, exclude=exclude, show_progress=False)
    assert masks[0][60:].all()
    assert not masks[0][:60].any()
