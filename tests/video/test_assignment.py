from __future__ import annotations

import itertools

import numpy as np
import pytest

from hazardvision.video.assignment import linear_assignment


def best_gain_by_brute_force(cost: np.ndarray, limit: float) -> float:
    n, m = cost.shape
    best = 0.0
    for k in range(1, min(n, m) + 1):
        for rows in itertools.combinations(range(n), k):
            for columns in itertools.permutations(range(m), k):
                pairs = list(zip(rows, columns, strict=True))
                if all(cost[i, j] < limit for i, j in pairs):
                    best = max(best, sum(limit - cost[i, j] for i, j in pairs))
    return best


@pytest.mark.parametrize("seed", range(40))
def test_linear_assignment_matches_brute_force_optimum(seed):
    rng = np.random.default_rng(seed)
    n, m = rng.integers(1, 6, size=2)
    cost = rng.random((n, m)).round(1)  # rounding makes ties, which a solver must also get right
    limit = float(rng.uniform(0.3, 1.1))
    pairs, free_rows, free_columns = linear_assignment(cost, limit)
    gain = sum(limit - cost[i, j] for i, j in pairs)
    assert gain == pytest.approx(best_gain_by_brute_force(cost, limit))
    assert sorted([*pairs[:, 0], *free_rows]) == list(range(n))
    assert sorted([*pairs[:, 1], *free_columns]) == list(range(m))


def test_linear_assignment_prefers_global_optimum_over_greedy():
    # Greedy would take (0, 0) at cost 0.1 and leave row 1 with 0.9; the optimum pairs across.
    pairs, _, _ = linear_assignment([[0.1, 0.2], [0.15, 0.9]], 1.0)
    assert pairs.tolist() == [[0, 1], [1, 0]]


def test_linear_assignment_leaves_pairs_at_the_limit_unmatched():
    pairs, free_rows, free_columns = linear_assignment([[0.5, 0.9]], 0.5)
    assert pairs.shape == (0, 2)
    assert free_rows.tolist() == [0]
    assert free_columns.tolist() == [0, 1]


def test_linear_assignment_of_nothing_is_empty():
    pairs, free_rows, free_columns = linear_assignment(np.zeros((0, 3)), 1.0)
    assert pairs.shape == (0, 2)
    assert free_rows.tolist() == []
    assert free_columns.tolist() == [0, 1, 2]
