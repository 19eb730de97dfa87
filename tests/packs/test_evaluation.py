from __future__ import annotations

import numpy as np
import pytest

from hazardvision.detections import Detections
from hazardvision.packs.evaluation import (
    Accumulator,
    GroundTruth,
    average_precision,
    confusion_matrix,
    evaluate_dataset,
    match,
    normalise_rows,
)
from tests.conftest import DATASETS, shipped_packs, test_photos

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


def confusion_case() -> tuple[Detections, GroundTruth]:
    """Two fires and two smokes; one of each class is found, a fire is taken for smoke, a smoke is missed."""
    gt = truth([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50], [60, 60, 70, 70]],
               ["fire", "fire", "smoke", "smoke"])
    found = detections(
        [[0, 0, 10, 10],  # fire found
         [20, 20, 30, 30],  # the second fire, called smoke
         [40, 40, 50, 61],  # smoke found at IoU 0.48: paired at 0.45
         [100, 100, 110, 110],  # a fire where there is none
         [60, 60, 70, 70],  # the second smoke, below the operating confidence: a miss
         [0, 0, 10, 10]],  # a second fire on the first one, which is taken: a false alarm
        [0.9, 0.8, 0.7, 0.6, 0.1, 0.5], [0, 1, 1, 0, 1, 0])
    return found, gt


def test_confusion_matrix_counts_pairs_misses_and_false_alarms():
    matrix = confusion_matrix(*confusion_case(), NAMES, confidence=0.25)
    #                        predicted: fire, smoke, background
    assert matrix.tolist() == [[1, 1, 0],  # true fire
                               [0, 1, 1],  # true smoke
                               [2, 0, 0]]  # background


def test_confusion_matrix_pairs_the_highest_iou_first_whatever_the_class():
    gt = truth([[0, 0, 10, 10]], ["fire"])
    found = detections([[0, 0, 10, 8], [0, 0, 10, 10]], [0.9, 0.3], [0, 1])  # IoU 0.8 (fire), 1.0 (smoke)
    assert confusion_matrix(found, gt, NAMES, confidence=0.25).tolist() == [[0, 1, 0], [0, 0, 0], [1, 0, 0]]


def test_accumulator_confusion_sums_photos_and_rows_normalise():
    accumulator = Accumulator(NAMES)
    accumulator.add(*confusion_case())
    accumulator.add(*confusion_case())
    matrix = accumulator.confusion(0.25)
    assert matrix.tolist() == [[2, 2, 0], [0, 2, 2], [4, 0, 0]]
    assert normalise_rows(matrix).tolist() == [[0.5, 0.5, 0.0], [0.0, 0.5, 0.5], [1.0, 0.0, 0.0]]
    assert normalise_rows(np.zeros((2, 2), np.int64)).tolist() == [[0.0, 0.0], [0.0, 0.0]]


def test_accumulator_curves_carry_the_ap50_of_the_metrics():
    accumulator = Accumulator(NAMES)
    accumulator.add(*confusion_case())
    curves, result = accumulator.curves(), accumulator.result(0.25)
    for name in NAMES:
        assert round(curves[name].ap50, 4) == result.per_class[name].map50
        assert len(curves[name].recall) == len(curves[name].precision) == len(curves[name].confidence)
    assert curves["fire"].instances == 2 and (np.diff(curves["fire"].confidence) <= 0).all()


def bundled_evaluation_sets():
    for pack in shipped_packs():
        metrics = pack.card.metrics.int8 if pack.precision.value == "int8" else pack.card.metrics.datasets
        for spec in pack.card.evaluation_sets:
            yield pytest.param(pack, spec, metrics[spec.dataset], id=f"{pack.name}-{pack.version}-{spec.dataset}")


# Floors of test-split mAP50 of the site detector (issue 11): the mean AP50 over the named classes at
# the default serving settings (the pack's default precision), and recall at the operating
# thresholds. A floor the trained pack still misses is listed in MISSED with its figures, as the
# issue asks (never chased by tuning on a test split): strict, so that reaching it fails here until
# the entry is removed.
FLOOR_PACK = "site"
FLOORS = {"ppe-vest": (("helmet", "no_helmet", "vest", "no_vest"), 0.80),
          "hardhat-head": (("helmet", "no_helmet"), 0.60),
          "fire-smoke": (("fire", "smoke"), 0.60),
          "forklift-person": (("forklift", "person"), 0.80)}
RECALL_FLOOR = 0.5
RECALL_CLASSES = ("fire", "smoke", "no_helmet", "no_vest")
MISSED = {  # site 0.4.0 at its default precision, float32
    ("0.4.0", "hardhat-head"): "site 0.4.0: helmet 0.527, no_helmet 0.537 (mean 0.53); no_helmet recall 0.47",
    ("0.4.0", "forklift-person"): "site 0.4.0: forklift 0.700, person 0.266 (mean 0.48)",
}


@pytest.mark.parametrize(("pack", "spec", "reported"), list(bundled_evaluation_sets()))
def test_bundled_pack_metrics_match_its_card(datasets, pack, spec, reported):
    result = evaluate_dataset(pack, DATASETS / spec.dataset / "data.yaml", split=spec.split, mapping=spec.map,
                              drop=spec.drop)
    assert abs(result.map50 - reported.map50) <= 0.01
    for name, metrics in reported.per_class.items():
        assert abs(result.per_class[name].map50 - metrics.map50) <= 0.01
        assert abs(result.per_class[name].recall - metrics.recall) <= 0.02


def floor_cases():
    for param in bundled_evaluation_sets():
        pack, spec, reported = param.values
        if pack.name == FLOOR_PACK and spec.dataset in FLOORS:
            missed = MISSED.get((pack.version, spec.dataset))
            marks = [pytest.mark.xfail(strict=True, reason=missed)] if missed else []
            yield pytest.param(spec.dataset, reported, id=param.id, marks=marks)


@pytest.mark.parametrize(("dataset", "reported"), list(floor_cases()))
def test_site_pack_reaches_the_floors(dataset, reported):
    """The card's figures (checked against a fresh evaluation above) reach the issue's floors."""
    classes, floor = FLOORS[dataset]
    assert sum(reported.per_class[c].map50 for c in classes) / len(classes) >= floor
    for name in RECALL_CLASSES:
        metrics = reported.per_class.get(name)
        if metrics and metrics.instances:
            assert metrics.recall >= RECALL_FLOOR, f"{name} recall at its operating threshold"


def test_site_pack_raises_no_fire_or_smoke_on_ppe_photos(datasets):
    """At most 2 false fire or smoke boxes per 100 PPE test photos (31 per 100 with the ppe and fire-smoke packs)."""
    from hazardvision.images import load_image

    site = [pack for pack in shipped_packs() if pack.name == FLOOR_PACK]
    assert site, "the site pack is missing from models/"
    photos = [load_image(p).pixels for name in ("ppe-vest", "hardhat-head") for p in test_photos(name)]
    for pack in site:
        found = pack.detect(photos)
        false_alarms = sum(int(np.isin(d.class_name, ["fire", "smoke"]).sum()) for d in found)
        assert false_alarms <= 0.02 * len(photos), f"{pack.version}: {false_alarms} in {len(photos)} photos"
