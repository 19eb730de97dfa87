"""Optimal one-to-one assignment (the Hungarian method) in numpy, for matching tracks to boxes."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hazardvision.boxes import IntArray


def _solve(cost: NDArray[np.float64]) -> IntArray:
    """Column of each row in a minimum-cost assignment of an (n, m) matrix with n <= m.

    The shortest-augmenting-path form of the Hungarian method with row and column potentials,
    O(n^2 m); the inner loop over columns is vectorised. Index 0 of the column arrays is a
    virtual column that holds the row being inserted.
    """
    n, m = cost.shape
    u = np.zeros(n + 1)
    v = np.zeros(m + 1)
    owner = np.zeros(m + 1, dtype=np.int64)  # owner[j]: 1-based row assigned to column j, 0 for none
    way = np.zeros(m + 1, dtype=np.int64)
    for row in range(1, n + 1):
        owner[0] = row
        column = 0
        slack = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, dtype=bool)
        while True:
            used[column] = True
            current = owner[column]
            free = ~used[1:]
            reduced = cost[current - 1] - u[current] - v[1:]
            better = free & (reduced < slack[1:])
            slack[1:][better] = reduced[better]
            way[1:][better] = column
            candidates = np.where(free, slack[1:], np.inf)
            nearest = int(np.argmin(candidates)) + 1
            delta = candidates[nearest - 1]
            visited = np.flatnonzero(used)
            u[owner[visited]] += delta
            v[visited] -= delta
            slack[1:][free] -= delta
            column = nearest
            if owner[column] == 0:
                break
        while column:  # flip the augmenting path back to the virtual column
            previous = way[column]
            owner[column] = owner[previous]
            column = previous
    assignment = np.full(n, -1, dtype=np.int64)
    assigned = np.flatnonzero(owner[1:]) + 1
    assignment[owner[assigned] - 1] = assigned - 1
    return assignment


def linear_assignment(cost: ArrayLike, cost_limit: float) -> tuple[IntArray, IntArray, IntArray]:
    """Match rows to columns one to one, minimising total cost; pairs at `cost_limit` or above never match.

    Leaving a row and a column unmatched costs `cost_limit`, so the matching maximises the sum of
    `cost_limit - cost` over its pairs (as `lap.lapjv(..., extend_cost=True, cost_limit=...)`
    does in ByteTrack). Returns the matched `(k, 2)` row/column pairs, the unmatched rows and the
    unmatched columns, each in ascending order.
    """
    matrix = np.asarray(cost, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"assignment costs must be an (n, m) matrix, got shape {matrix.shape}")
    n, m = matrix.shape
    if n == 0 or m == 0:
        return np.zeros((0, 2), dtype=np.int64), np.arange(n, dtype=np.int64), np.arange(m, dtype=np.int64)
    if not np.isfinite(matrix).all():
        raise ValueError("assignment costs must be finite numbers")
    # Gains clipped at zero: a pair at or above the limit is worth no more than leaving both
    # unmatched, and as every entry is <= 0 any partial matching extends to a full one at no extra
    # cost, so a minimum full assignment of the clipped matrix is an optimal partial matching.
    clipped = np.minimum(matrix - cost_limit, 0.0)
    transposed = n > m
    columns = _solve(clipped.T if transposed else clipped)
    pairs = np.stack([np.arange(len(columns)), columns], axis=1)
    if transposed:
        pairs = pairs[:, ::-1]
    pairs = pairs[matrix[pairs[:, 0], pairs[:, 1]] < cost_limit]
    pairs = pairs[np.argsort(pairs[:, 0], kind="stable")]
    unmatched_rows = np.setdiff1d(np.arange(n), pairs[:, 0]).astype(np.int64)
    unmatched_columns = np.setdiff1d(np.arange(m), pairs[:, 1]).astype(np.int64)
    return pairs.astype(np.int64), unmatched_rows, unmatched_columns
