"""Maximum spanning tree decoding with exactly one root-attached word."""

import itertools

import numpy as np
import pytest

from xlt.tasks.tree_decoding import decode_tree


def is_tree(heads):
    """Whether 1-based `heads` (0 = root) reach the root from every word without a cycle."""
    for start in range(1, len(heads) + 1):
        seen = set()
        node = start
        while node != 0:
            if node in seen:
                return False
            seen.add(node)
            node = heads[node - 1]
    return True


def tree_score(scores, heads):
    return sum(scores[word + 1, head] for word, head in enumerate(heads))


def best_single_root_tree(scores):
    """Search every head assignment for the best tree with one root-attached word."""
    num_words = scores.shape[0] - 1
    best = None
    for heads in itertools.product(range(num_words + 1), repeat=num_words):
        if any(head == word + 1 for word, head in enumerate(heads)):
            continue
        if heads.count(0) != 1 or not is_tree(heads):
            continue
        score = tree_score(scores, heads)
        if best is None or score > best[0]:
            best = (score, heads)
    return best


@pytest.mark.parametrize("num_words", [1, 2, 3, 4, 5])
def test_decode_tree_matches_exhaustive_search(num_words):
    rng = np.random.default_rng(num_words)
    for _ in range(40):
        scores = rng.normal(scale=3.0, size=(num_words + 1, num_words + 1))
        best_score, best_heads = best_single_root_tree(scores)
        heads = decode_tree(scores)
        assert tuple(heads) == best_heads
        assert np.isclose(tree_score(scores, heads), best_score)


def test_decode_tree_keeps_one_root_when_scores_prefer_two():
    # Both words prefer the root; a per-word argmax would attach both to it.
    scores = np.array(
        [
            [0.0, 0.0, 0.0],
            [-0.1, 0.0, -2.0],
            [-0.2, -1.0, 0.0],
        ]
    )
    heads = decode_tree(scores)
    assert list(heads).count(0) == 1
    # Best single-root tree: word 1 on the root (-0.1), word 2 under word 1 (-1.0).
    assert list(heads) == [0, 1]


def test_decode_tree_breaks_cycle_of_greedy_heads():
    # Greedy heads: 1 <- 2, 2 <- 3, 3 <- 1, a cycle with no root.
    scores = np.full((4, 4), -5.0)
    scores[1, 2] = scores[2, 3] = scores[3, 1] = 0.0
    scores[1, 0] = -1.0
    heads = decode_tree(scores)
    assert is_tree(list(heads))
    assert list(heads).count(0) == 1
    assert list(heads) == [0, 3, 1]


def test_decode_tree_single_word_attaches_to_root():
    assert list(decode_tree(np.zeros((2, 2)))) == [0]


def test_decode_tree_rejects_non_square_scores():
    with pytest.raises(ValueError, match="square matrix"):
        decode_tree(np.zeros((3, 2)))


def test_decode_tree_rejects_nan_scores():
    scores = np.zeros((3, 3))
    scores[1, 2] = np.nan
    with pytest.raises(ValueError, match="finite"):
        decode_tree(scores)
