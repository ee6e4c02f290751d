"""Maximum spanning tree decoding of dependency arc scores (Chu-Liu/Edmonds) with one root word.

Scores are given as a square matrix `scores[dependent, head]` over the nodes 0..n, where node 0 is
the artificial root and nodes 1..n are the words. The decoder returns the highest-scoring tree in
which every word has exactly one head, there is no cycle, and exactly one word is attached to the
root, as Universal Dependencies requires. The tree may be non-projective.
"""

from __future__ import annotations

import numpy as np


def _find_cycle(heads: np.ndarray) -> list[int] | None:
    """Return the nodes of one cycle in the head graph `heads` (node 0 has no head), or None."""
    num_nodes = len(heads)
    state = np.zeros(num_nodes, dtype=np.int8)  # 0 unvisited, 1 on the current path, 2 finished
    state[0] = 2
    for start in range(1, num_nodes):
        path = []
        node = start
        while state[node] == 0:
            state[node] = 1
            path.append(node)
            node = int(heads[node])
        if state[node] == 1:
            return path[path.index(node):]
        for visited in path:
            state[visited] = 2
    return None


def _maximum_arborescence(scores: np.ndarray) -> np.ndarray:
    """Return the heads of the maximum spanning arborescence rooted at node 0 (Chu-Liu/Edmonds).

    `scores[d, h]` is the score of the arc from head h to dependent d, and -inf marks a forbidden
    arc. Each contraction step merges one cycle into a single node and recurses on the smaller
    graph, so the worst case is O(n^3) for n nodes.
    """
    num_nodes = scores.shape[0]
    heads = scores.argmax(axis=1)
    heads[0] = 0
    cycle = _find_cycle(heads)
    if cycle is None:
        return heads

    in_cycle = np.zeros(num_nodes, dtype=bool)
    in_cycle[cycle] = True
    cycle_nodes = np.flatnonzero(in_cycle)
    outside_nodes = np.flatnonzero(~in_cycle)  # includes the root, which stays at index 0
    contracted = len(outside_nodes)  # index of the merged cycle node in the smaller graph

    # Entering arcs: head u outside the cycle, dependent v inside. Taking arc u -> v breaks the
    # cycle arc into v, so its gain is s(v <- u) - s(v <- heads[v]).
    cycle_arc_scores = scores[cycle_nodes, heads[cycle_nodes]]
    entering = scores[np.ix_(cycle_nodes, outside_nodes)] - cycle_arc_scores[:, None]
    best_entering_dependent = entering.argmax(axis=0)  # per outside head, index into cycle_nodes
    entering_scores = entering.max(axis=0)

    # Leaving arcs: head inside the cycle, dependent u outside; keep the best head per dependent.
    leaving = scores[np.ix_(outside_nodes, cycle_nodes)]
    best_leaving_head = leaving.argmax(axis=1)  # per outside dependent, index into cycle_nodes
    leaving_scores = leaving.max(axis=1)

    smaller = np.full((contracted + 1, contracted + 1), -np.inf)
    smaller[:contracted, :contracted] = scores[np.ix_(outside_nodes, outside_nodes)]
    smaller[:contracted, contracted] = leaving_scores
    smaller[contracted, :contracted] = entering_scores
    smaller[0, :] = -np.inf  # the root never gets a head

    smaller_heads = _maximum_arborescence(smaller)

    result = heads.copy()
    for position, node in enumerate(outside_nodes[1:], start=1):
        head = smaller_heads[position]
        if head == contracted:
            result[node] = cycle_nodes[best_leaving_head[position]]
        else:
            result[node] = outside_nodes[head]
    entering_head_position = smaller_heads[contracted]
    entered = cycle_nodes[best_entering_dependent[entering_head_position]]
    result[entered] = outside_nodes[entering_head_position]
    result[0] = 0
    return result


def decode_tree(scores: np.ndarray) -> np.ndarray:
    """Decode the best dependency tree with exactly one word attached to the root.

    `scores` has shape (n + 1, n + 1) with `scores[d, h]` the score (e.g. log-probability) of
    head h for dependent d. Row 0 (the root's own head) and the diagonal are ignored. Returns an
    int64 array of length n holding the head of each word 1..n, 0 meaning the root.

    The single-root constraint is exact: every arc from the root is lowered by a constant larger
    than the score range of any tree, so the best tree overall has as few root arcs as a tree can
    have (one) and, among those, the highest score.
    """
    scores = np.array(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[0] != scores.shape[1] or scores.shape[0] < 2:
        raise ValueError(
            f"decode_tree: scores must be a square matrix over the root and at least one word, "
            f"got shape {scores.shape}"
        )
    num_words = scores.shape[0] - 1
    word_rows = scores[1:]
    off_diagonal = ~np.eye(num_words + 1, dtype=bool)[1:]
    if not np.isfinite(word_rows[off_diagonal]).all():
        raise ValueError("decode_tree: arc scores must be finite (got NaN or infinity)")

    if num_words == 1:
        return np.zeros(1, dtype=np.int64)

    spread = float(word_rows[off_diagonal].max() - word_rows[off_diagonal].min())
    root_penalty = (spread + 1.0) * (num_words + 1)
    graph = scores.copy()
    graph[1:, 0] -= root_penalty
    np.fill_diagonal(graph, -np.inf)
    graph[0, :] = -np.inf

    heads = _maximum_arborescence(graph)
    return heads[1:].astype(np.int64)
