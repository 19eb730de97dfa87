"""Per-class operating thresholds, chosen on validation splits by maximum F1.

Each class's detections over every validation split that labels the class are pooled and ranked
by confidence; the threshold is the confidence at which F1 (at IoU 0.5) is highest. A split that
does not label a class (people in ppe-vest) is left out of that class's choice, since its
detections there would count as false alarms that are not.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from hazardvision.packs.evaluation import Accumulator

MIN_THRESHOLD = 0.05
"""No class reports below this, whatever F1 says: a threshold under it only adds noise for the user."""


def max_f1_threshold(confidence: np.ndarray, hits: np.ndarray, instances: int) -> tuple[float, float] | None:
    """(threshold, F1) at the F1 maximum of ranked detections, or None without instances or hits."""
    if instances == 0 or not hits.any():
        return None
    order = np.argsort(-confidence, kind="stable")
    confidence, hits = confidence[order], hits[order]
    true_positives = np.cumsum(hits)
    precision = true_positives / np.arange(1, len(hits) + 1)
    recall = true_positives / instances
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    # Of equal confidences only the last detection is a threshold one can set.
    last_of_value = np.append(confidence[1:] != confidence[:-1], True)
    best = int(np.flatnonzero(last_of_value)[np.argmax(f1[last_of_value])])
    return max(float(confidence[best]), MIN_THRESHOLD), float(f1[best])


def choose_thresholds(
    classes: Sequence[str], scored: Iterable[tuple[Accumulator, Iterable[str]]]
) -> dict[str, tuple[float, float]]:
    """class -> (threshold, F1) from (validation accumulator, classes its split labels) pairs."""
    pooled: dict[str, list[tuple[np.ndarray, np.ndarray, int]]] = {name: [] for name in classes}
    for accumulator, labelled in scored:
        for name in set(labelled) & set(classes):
            pooled[name].append(accumulator.hits(name))
    chosen = {}
    for name, parts in pooled.items():
        if not parts:
            continue
        found = max_f1_threshold(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                                 sum(p[2] for p in parts))
        if found is not None:
            chosen[name] = (round(found[0], 4), round(found[1], 4))
    return chosen
