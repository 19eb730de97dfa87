from __future__ import annotations

import json

import numpy as np
import pytest

from hazardvision.detections import Detections
from hazardvision.evaluation import Accumulator, GroundTruth, average_precision, evaluate_dataset, match
from hazardvision.model_pack import active_packs
from tests.conftest import DATASETS

NAMES = ("fire", "smoke")


def truth(boxes, names) -> GroundTruth:
    return GroundTruth(np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(names, dtype=np.str_))


def detections(boxes, scores, ids) -> Detections:
    return Detections.of(np.asarray(boxes).reshape(-1, 4), scores, ids, NAMES)


def test_match_needs_same_class_and_claims_each_truth_once():
    gt = truth([[0, 0, 10, 10]], ["fire"])
    found = detections([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], [0.9, 0.8, 0.7], [0, 0, 1])
    correct = match(found, gt)
    assert correct[0].all() and not correct[1].any() and not correct[2].any()


def test_match_iou_thresholds():
    gt = truth([[0, 0, 10, 10]], ["fire"])
    correct = match(detections([[0, 0, 10, 8]], [0.9], [0]), gt)  # IoU 0.8
    assert correct[0].tolist() == [True] * 7 + [False] * 3


def test_average_precision_of_a_perfect_ranking():
    # 0.995, not 1: the 101-point rule's last sample falls on the closing sentinel, as in ultralytics.
    assert average_precision(np.array([0.5, 1.0]), np.array([1.0, 1.0])) == pytest.approx(0.995)


def test_class_never_predicted_has_zero_ap():
    accumulator = Accumulator(NAMES)
    accumulator.add(detections([], [], []), truth([[0, 0, 10, 10]], ["smoke"]))
    assert accumulator.result(0.25).per_class["smoke"].map50 == 0.0


def test_accumulator_precision_and_recall_at_operating_confidence():
    accumulator = Accumulator(NAMES)
    found = detections([[0, 0, 10, 10], [50, 50, 60, 60]], [0.9, 0.3], [0, 0])
    accumulator.add(found, truth([[0, 0, 10, 10]], ["fire"]))
    accumulator.add(detections([], [], []), truth([[0, 0, 10, 10]], ["fire"]))
    result = accumulator.result(operating_confidence=0.5)
    fire = result.per_class["fire"]
    assert (fire.instances, fire.precision, fire.recall) == (2, 1.0, 0.5)
    assert fire.map50 == pytest.approx(0.5, abs=0.01)
    assert result.per_class["smoke"].instances == 0 and result.map50 == fire.map50


def bundled_evaluation_sets():
    for pack in active_packs():
        card = json.loads((pack.folder / "card.json").read_text())
        for spec in card.get("evaluation_sets", []):
            yield pytest.param(pack, spec, card["metrics"]["datasets"][spec["dataset"]],
                               id=f"{pack.name}-{spec['dataset']}")


# First floors of test-split mAP50 (issue 4); they will rise.
FLOORS = {("ppe", "ppe-vest"): 0.60, ("fire-smoke", "fire-smoke"): 0.45}


@pytest.mark.parametrize(("pack", "spec", "reported"), list(bundled_evaluation_sets()))
def test_bundled_pack_metrics_match_its_card(datasets, pack, spec, reported):
    result = evaluate_dataset(pack, DATASETS / spec["dataset"] / "data.yaml", split=spec["split"],
                              mapping=spec["map"], drop=spec["drop"])
    assert abs(result.map50 - reported["map50"]) <= 0.01
    assert result.map50 >= FLOORS.get((pack.name, spec["dataset"]), 0.0)
    for name, metrics in reported["per_class"].items():
        assert abs(result.per_class[name].map50 - metrics["map50"]) <= 0.01
