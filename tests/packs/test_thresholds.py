from __future__ import annotations

import numpy as np
import pytest

from hazardvision.detections import Detections
from hazardvision.packs.evaluation import Accumulator, GroundTruth
from hazardvision.packs.thresholds import MIN_THRESHOLD, choose_thresholds, max_f1_threshold


@pytest.mark.parametrize(("confidence", "hits", "instances", "expected"), [
    ([0.9, 0.8, 0.7, 0.2], [True, True, False, False], 2, 0.8),  # F1 1.0 at 0.8
    ([0.9, 0.8, 0.7, 0.6], [True, False, True, True], 3, 0.6),  # all three found: F1 0.857 at 0.6
    ([0.9, 0.04], [True, True], 2, MIN_THRESHOLD),  # never below the floor
])
def test_max_f1_threshold_picks_the_best_cut(confidence, hits, instances, expected):
    threshold, _ = max_f1_threshold(np.asarray(confidence), np.asarray(hits), instances)
    assert threshold == pytest.approx(expected)


def test_max_f1_threshold_needs_instances_and_hits():
    assert max_f1_threshold(np.asarray([0.5]), np.asarray([False]), 3) is None
    assert max_f1_threshold(np.asarray([0.5]), np.asarray([False]), 0) is None


def test_choose_thresholds_leaves_out_splits_that_do_not_label_the_class():
    names = ("person", "helmet")
    labelled, unlabelled = Accumulator(names), Accumulator(names)
    truth = GroundTruth(np.asarray([[0, 0, 10, 10]], np.float32), np.asarray(["person"]))
    labelled.add(Detections.of([[0, 0, 10, 10], [50, 50, 60, 60]], [0.7, 0.3], [0, 0], names), truth)
    # Unlabelled people score 0.9 here: counted, they would drag the person threshold up to nothing.
    nobody = GroundTruth(np.zeros((0, 4), np.float32), np.asarray([], dtype=str))
    unlabelled.add(Detections.of([[0, 0, 10, 10]] * 3, [0.9, 0.9, 0.9], [0, 0, 0], names), nobody)
    chosen = choose_thresholds(names, [(labelled, {"person"}), (unlabelled, {"helmet"})])
    assert chosen == {"person": (0.7, 1.0)}
