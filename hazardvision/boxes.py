"""Box geometry on `(n, 4)` xyxy arrays: IoU and class-aware non-maximum suppression."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float32]
IntArray = NDArray[np.int64]

CLASS_OFFSET = 7680.0
"""Per-class coordinate shift in class-aware NMS: larger than any model input side."""


def box_area(xyxy: FloatArray) -> FloatArray:
    """Area of each box of an (n, 4) array; inverted boxes count as empty."""
    return np.asarray((xyxy[:, 2] - xyxy[:, 0]).clip(0) * (xyxy[:, 3] - xyxy[:, 1]).clip(0), np.float32)


def box_iou(a: FloatArray, b: FloatArray) -> NDArray[np.float32]:
    """Pairwise IoU between the boxes of `a` (n, 4) and `b` (m, 4), as an (n, m) array."""
    area_a, area_b = box_area(a), box_area(b)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (bottom_right - top_left).clip(0).prod(axis=2)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0).astype(np.float32)


def non_max_suppression(
    xyxy: FloatArray, scores: FloatArray, class_id: IntArray, iou_threshold: float, max_det: int
) -> IntArray:
    """Indices of the boxes kept by greedy class-aware NMS, best score first.

    A box is suppressed when it overlaps a better-scoring box of the same class by more than
    `iou_threshold`, the same rule as torchvision's `batched_nms`.
    """
    order = np.argsort(-scores, kind="stable")
    if len(order) == 0:
        return order.astype(np.int64)
    # Shifting each class to its own region makes one pass suppress within classes only. The
    # shift is ultralytics' (7680 px per class, in float32), so that IoUs within a hair of the
    # threshold round the same way and our boxes match ultralytics' one to one.
    offset = class_id.astype(np.float32)[:, None] * np.float32(CLASS_OFFSET)
    boxes = (xyxy.astype(np.float32) + offset)[order]
    keep: list[int] = []
    alive = np.ones(len(order), dtype=bool)
    for i in range(len(order)):
        if not alive[i]:
            continue
        keep.append(int(order[i]))
        if len(keep) == max_det:
            break
        rest = np.flatnonzero(alive[i + 1 :]) + i + 1
        if len(rest):
            overlap = box_iou(boxes[i : i + 1], boxes[rest])[0]
            alive[rest[overlap > iou_threshold]] = False
    return np.asarray(keep, dtype=np.int64)


def box_containment(a: FloatArray, b: FloatArray) -> NDArray[np.float32]:
    """Pairwise share of the smaller box that the two boxes share: intersection over the smaller area, (n, m)."""
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (bottom_right - top_left).clip(0).prod(axis=2)
    smaller = np.minimum(box_area(a)[:, None], box_area(b)[None, :])
    return np.where(smaller > 0, inter / np.maximum(smaller, 1e-12), 0.0).astype(np.float32)


def one_box_per_object(
    xyxy: FloatArray, scores: FloatArray, class_id: IntArray, group_of_class: IntArray, iou_threshold: float,
    *, containment_threshold: float = 0.85,
) -> IntArray:
    """Indices of the boxes kept when overlapping boxes of one object are merged, best score first.

    `group_of_class[c]` names the object group of class c: classes of one group are mutually
    exclusive on one object (helmet and no_helmet on a head), so of two boxes in one group that
    overlap by more than `iou_threshold`, or of which one lies almost wholly in the other (more than
    `containment_threshold` of it: a torso box inside a whole-body box of the same worker), only
    the more confident is kept, whatever its class.
    """
    order = np.argsort(-scores, kind="stable")
    groups = group_of_class[class_id] if len(class_id) else class_id
    keep: list[int] = []
    alive = np.ones(len(order), dtype=bool)
    for i, index in enumerate(order):
        if not alive[i]:
            continue
        keep.append(int(index))
        rest = np.flatnonzero(alive[i + 1 :]) + i + 1
        rest = rest[groups[order[rest]] == groups[index]]
        if len(rest):
            mine, others = xyxy[index : index + 1], xyxy[order[rest]]
            inside = box_containment(mine, others)[0] > containment_threshold
            same = (box_iou(mine, others)[0] > iou_threshold) | inside
            alive[rest[same]] = False
    return np.asarray(keep, dtype=np.int64)
