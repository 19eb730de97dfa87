"""Client profiles: what a protocol client is sent of a scan (built from plain lists, no model)."""

from __future__ import annotations

import pytest

from hazardvision.catalogue import load_catalogue
from hazardvision.errors import InvalidSetting
from hazardvision.results import Box, DetectedObject, Finding, HazardInfo, ImageInfo, ScanResult
from hazardvision.service.profiles import ClientProfile, client_view

CATALOGUE = load_catalogue()
CLASS_IDS = {"helmet": 0, "no_helmet": 1, "vest": 2, "no_vest": 3, "fire": 4}


def scan_result(*detections: tuple[str, float]) -> ScanResult:
    """A scan of (class, confidence) detections, boxes side by side; hazards are findings."""
    objects, findings = [], []
    for i, (class_name, confidence) in enumerate(detections):
        box = Box(x1=10 * i, y1=0, x2=10 * i + 8, y2=8)
        entry = CATALOGUE.entry(class_name)
        objects.append(DetectedObject(class_name=class_name, confidence=confidence, box=box, pack="ppe",
                                      is_hazard=entry.hazard))
        hazard = HazardInfo.of(entry)
        if hazard is not None:
            findings.append(Finding(id=f"f{i}", class_name=class_name, confidence=confidence, box=box, pack="ppe",
                                    hazard=hazard))
    return ScanResult(source="photo.jpg", image=ImageInfo(width=100, height=100, sha256="0" * 64), models=[],
                      findings=findings, objects=objects, timings_ms={})


RESULT = scan_result(("helmet", 0.5), ("no_helmet", 0.9), ("vest", 0.3), ("no_vest", 0.7), ("fire", 0.45))


@pytest.mark.parametrize(("profile", "sent"), [
    (ClientProfile(), ["no_helmet", "no_vest", "helmet", "fire", "vest"]),
    (ClientProfile(max_predictions=2), ["no_helmet", "no_vest"]),
    (ClientProfile(min_confidence=0.5), ["no_helmet", "no_vest", "helmet"]),
    (ClientProfile(hazards_only=True), ["no_helmet", "no_vest", "fire"]),
    (ClientProfile(labels={"helmet": "hard_hat", "vest": "vest"}), ["hard_hat", "vest"]),
], ids=["default", "capped", "threshold", "hazards-only", "labels"])
def test_client_view_sends_what_the_profile_allows_most_confident_first(profile, sent):
    predictions = client_view(RESULT, profile, CLASS_IDS, stored=True)
    assert [p.label for p in predictions] == sent
    assert [p.confidence for p in predictions] == sorted((p.confidence for p in predictions), reverse=True)


def test_client_view_hazards_keep_their_details_and_finding_ids_only_when_stored():
    stored = {p.class_name: p for p in client_view(RESULT, ClientProfile(), CLASS_IDS, stored=True)}
    assert stored["no_helmet"].hazard is not None and stored["no_helmet"].finding_id == "f1"
    assert stored["helmet"].hazard is None and stored["helmet"].finding_id is None
    assert stored["no_vest"].class_id == CLASS_IDS["no_vest"]
    unstored = client_view(RESULT, ClientProfile(), CLASS_IDS, stored=False)
    assert all(p.finding_id is None for p in unstored)


@pytest.mark.parametrize(("floor", "asked", "used"), [
    (None, None, None), (None, 0.1, 0.1), (0.4, 0.1, 0.4), (0.4, 0.6, 0.6), (0.4, None, None),
])
def test_client_profile_confidence_raises_a_request_to_its_threshold(floor, asked, used):
    assert ClientProfile(min_confidence=floor).confidence(asked) == used


def test_client_profile_check_names_classes_the_catalogue_lacks():
    with pytest.raises(InvalidSetting, match="no_helmut"):
        ClientProfile(labels={"no_helmut": "x"}).check(CATALOGUE, "frigate")
