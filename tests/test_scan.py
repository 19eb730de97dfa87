from __future__ import annotations

import json

import numpy as np
import pytest

from hazardvision.annotate import HazardAnnotator
from hazardvision.catalogue import load_catalogue
from hazardvision.errors import UnknownClass
from hazardvision.images import load_image
from hazardvision.packs.card import ModelCard
from hazardvision.packs.model_pack import ModelPack
from hazardvision.results import ScanResult
from hazardvision.scan import SEVERITY_RANK, Scanner, result_detections
from tests.conftest import bundled_packs, test_photos


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return Scanner(bundled_packs(), load_catalogue())


@pytest.fixture(scope="module")
def fire_photos(datasets):
    return [load_image(p) for p in test_photos("fire-smoke")[:8]]


def test_scanner_findings_are_the_hazard_objects_explained(scanner, fire_photos):
    results = scanner.scan(fire_photos, [f"p{i}" for i in range(len(fire_photos))], confidence=0.05)
    assert [r.source for r in results] == [f"p{i}" for i in range(len(fire_photos))]
    assert sum(len(r.findings) for r in results) > 0
    for result in results:
        hazards = [o for o in result.objects if o.is_hazard]
        assert len(hazards) == len(result.findings)
        assert all(o.confidence >= 0.05 for o in result.objects)
        ranks = [(-SEVERITY_RANK[f.hazard.severity], -f.confidence) for f in result.findings]
        assert ranks == sorted(ranks)
        for finding in result.findings:
            assert finding.hazard.rules and finding.hazard.advice.en and finding.hazard.name.zh
            assert finding.similar_cases == []
        assert {m.pack for m in result.models} == {p.name for p in scanner.packs}
        assert result.timings_ms["total"] > 0


def test_scanner_lower_confidence_gives_more_objects(scanner, fire_photos):
    few = scanner.scan(fire_photos[:2], ["a", "b"], confidence=0.5)
    many = scanner.scan(fire_photos[:2], ["a", "b"], confidence=0.001)
    for low, high in zip(many, few, strict=True):
        assert len(low.objects) >= len(high.objects)
    assert sum(len(r.objects) for r in many) > sum(len(r.objects) for r in few)


def test_scan_result_json_round_trip(scanner, fire_photos):
    result = scanner.scan(fire_photos[:1], ["a"], confidence=0.05)[0]
    again = ScanResult.model_validate(json.loads(result.model_dump_json()))
    assert again == result


def test_scanner_refuses_a_pack_with_classes_outside_the_catalogue(scanner):
    pack = scanner.packs[0]
    card = ModelCard(**{**pack.card.model_dump(), "classes": ("ladder",) * len(pack.card.classes)})
    with pytest.raises(UnknownClass, match="ladder"):
        Scanner([ModelPack(pack.folder, card)], load_catalogue())


def test_result_detections_and_annotation_draw_every_object(scanner, fire_photos):
    photo = fire_photos[0]
    result = scanner.scan([photo], ["a"], confidence=0.01)[0]
    detections = result_detections(result)
    assert len(detections) == len(result.objects)
    drawn = HazardAnnotator(load_catalogue()).annotate(photo.pixels, detections)
    assert drawn.shape == photo.pixels.shape
    assert not np.array_equal(drawn, photo.pixels) or len(detections) == 0


EXCLUSIVE = ({"helmet", "no_helmet"}, {"vest", "no_vest"})


def test_scanner_reports_one_box_per_object_on_real_photos(scanner, datasets):
    from hazardvision.boxes import box_iou

    photos = [load_image(p) for name in ("ppe-vest", "hardhat-head") for p in test_photos(name)[:30]]
    for result in scanner.scan(photos, ["photo"] * len(photos)):
        objects = result.objects
        boxes = np.asarray([[o.box.x1, o.box.y1, o.box.x2, o.box.y2] for o in objects], np.float32).reshape(-1, 4)
        iou = box_iou(boxes, boxes)
        for i in range(len(objects)):
            for j in range(i + 1, len(objects)):
                a, b = objects[i].class_name, objects[j].class_name
                one_object = a == b or any({a, b} <= group for group in EXCLUSIVE)
                assert not (one_object and iou[i, j] > 0.5), (a, b, float(iou[i, j]))
