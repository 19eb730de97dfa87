from __future__ import annotations

import numpy as np
import pytest

from hazardvision.boxes import box_iou, non_max_suppression


def random_boxes(rng: np.random.Generator, n: int) -> np.ndarray:
    top_left = rng.uniform(0, 300, (n, 2))
    size = rng.uniform(5, 80, (n, 2))
    return np.concatenate([top_left, top_left + size], axis=1).astype(np.float32)


def test_box_iou_of_known_boxes():
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], np.float32)
    np.testing.assert_allclose(box_iou(a, b), [[1.0, 50 / 150, 0.0]], rtol=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_non_max_suppression_matches_torchvision(seed):
    torch = pytest.importorskip("torch", reason="torchvision is the reference; install the [train] extra")
    from torchvision.ops import batched_nms

    rng = np.random.default_rng(seed)
    boxes = random_boxes(rng, 400)
    scores = rng.uniform(0, 1, 400).astype(np.float32)
    classes = rng.integers(0, 3, 400)
    ours = non_max_suppression(boxes, scores, classes, 0.5, max_det=1000)
    theirs = batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(classes), 0.5)
    assert ours.tolist() == theirs.tolist()


def test_non_max_suppression_stops_at_max_det():
    rng = np.random.default_rng(0)
    boxes = random_boxes(rng, 50) * 10
    kept = non_max_suppression(boxes, rng.uniform(0, 1, 50).astype(np.float32), np.zeros(50, np.int64), 0.9, 7)
    assert len(kept) == 7


def test_one_box_per_object_resolves_exclusive_classes_and_duplicates():
    from hazardvision.boxes import one_box_per_object

    xyxy = np.asarray([[0, 0, 10, 10], [1, 0, 11, 10], [0, 1, 10, 11], [50, 50, 60, 60], [0, 0, 10, 10]], np.float32)
    scores = np.asarray([0.6, 0.5, 0.4, 0.3, 0.9], np.float32)
    classes = np.asarray([0, 1, 0, 0, 2], np.int64)  # helmet, no_helmet, helmet, helmet, vest
    groups = np.asarray([0, 0, 2, 3], np.int64)  # helmet and no_helmet exclude each other
    kept = one_box_per_object(xyxy, scores, classes, groups, 0.5)
    assert sorted(kept.tolist()) == [0, 3, 4]  # one box on the head, the far helmet, the vest on the same spot


def test_one_box_per_object_merges_a_box_lying_inside_another_of_its_group():
    from hazardvision.boxes import one_box_per_object

    xyxy = np.asarray([[355, 173, 416, 286], [342, 174, 415, 361], [0, 0, 50, 100]], np.float32)  # torso, body
    kept = one_box_per_object(xyxy, np.asarray([0.29, 0.27, 0.5], np.float32), np.zeros(3, np.int64),
                              np.asarray([0]), 0.5)
    assert kept.tolist() == [2, 0]
