"""Reviews through a real server: a confirmed finding becomes a case and a similar case; a rejected one a known
false alarm; a finding is reviewed once."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from hazardvision.bank.bank import SampleBank
from hazardvision.data.audit import AuditLog
from hazardvision.similar.index_files import INDEX_FILE, deltas
from hazardvision.similar.maintenance import sync_indexes
from tests.conftest import bundled_packs, served_versions
from tests.service.conftest import assert_error, eventually, jpeg_bytes, labelled_bank, live_server

CONTEXT = {"site": "dock-9", "enterprise": "acme", "note": "east scaffold", "captured_at": "2026-04-02T10:00:00Z"}


@pytest.fixture(scope="module")
def server(tmp_path_factory, ppe_photos):
    home = tmp_path_factory.mktemp("reviews-home")
    bank = SampleBank(home)
    labelled_bank(bank, tmp_path_factory.mktemp("labelled"), ppe_photos[20:26])
    sync_indexes(bank, bundled_packs())
    bank.engine.dispose()
    with live_server(home) as running:
        yield running


@pytest.fixture(scope="module")
def scanned(inspector, ppe_photos):
    """A photo whose scan has at least two findings, and that scan."""
    for photo in ppe_photos[:10]:
        scan = inspector.post("/v1/scans", files={"image": (photo.name, photo.read_bytes())}, data=CONTEXT).json()
        if len(scan["findings"]) >= 2:
            return photo, scan
    pytest.skip("no photo among the first ten of ppe-vest's test split gives two findings with this model")


def test_review_confirm_makes_a_case_in_the_bank(server, inspector, scanned):
    _, scan = scanned
    finding = scan["findings"][0]
    response = inspector.post(f"/v1/findings/{finding['id']}/review",
                              json={"decision": "confirm", "reviewer": "li.wei", "note": "no vest by the crane"})
    assert response.status_code == 201, response.text
    review = response.json()
    assert (review["decision"], review["class_name"], review["corrected"]) == ("confirm", finding["class_name"], False)
    case = SampleBank(server.home).case(review["case_id"])
    assert (case.source, case.site, case.enterprise, case.description) == ("service-scans", "dock-9", "acme",
                                                                           "east scaffold")
    assert case.captured_at is not None and case.image_sha256 == scan["image"]["sha256"]
    annotation = next(a for a in case.annotations if a.id == review["annotation_id"])
    assert (annotation.origin, annotation.reviewer, annotation.class_name) == ("confirmed", "li.wei",
                                                                               finding["class_name"])
    assert SampleBank(server.home).verify() == []


def test_review_confirmed_case_is_a_similar_case_of_a_later_scan(inspector, scanned):
    photo, scan = scanned
    confirmed = inspector.get("/v1/reviews", params={"scan_id": scan["scan_id"]}).json()["reviews"][0]
    def matches() -> list[dict]:  # the index follows the review in the background
        again = inspector.post("/v1/scans", files={"image": ("again.jpg", jpeg_bytes(photo, quality=75))}).json()
        assert again["image"]["sha256"] != scan["image"]["sha256"]
        similar = [case for finding in again["findings"] if finding["class_name"] == confirmed["class_name"]
                   for case in finding["similar_cases"]]
        return [case for case in similar if case["annotation_id"] == confirmed["annotation_id"]]

    match = eventually(matches)
    assert match[0]["case_id"] == confirmed["case_id"] and match[0]["site"] == "dock-9"
    thumbnail = inspector.get(match[0]["thumbnail"])
    assert thumbnail.status_code == 200 and thumbnail.headers["content-type"] == "image/jpeg"
    assert cv2.imdecode(np.frombuffer(thumbnail.content, np.uint8), cv2.IMREAD_COLOR) is not None


def test_review_site_of_another_enterprise_is_refused_at_scan(inspector, ppe_photos):
    response = inspector.post("/v1/scans", files={"image": ("x.jpg", ppe_photos[5].read_bytes())},
                              data={"site": "dock-9", "enterprise": "another-company"})
    assert "acme" in assert_error(response, 409, "PlaceConflict")["message"]


def test_review_reject_is_kept_as_a_known_false_alarm(server, inspector, scanned):
    _, scan = scanned
    finding = scan["findings"][1]
    response = inspector.post(f"/v1/findings/{finding['id']}/review",
                              json={"decision": "reject", "reviewer": "li.wei", "note": "a shadow"})
    assert response.status_code == 201, response.text
    review = response.json()
    case = SampleBank(server.home).case(review["case_id"])
    annotation = next(a for a in case.annotations if a.id == review["annotation_id"])
    assert annotation.origin == "rejected" and annotation.reviewer == "li.wei"
    assert inspector.get(f"/v1/scans/{scan['scan_id']}").status_code == 200


def test_review_rejected_finding_seen_again_is_flagged_and_the_photo_knows_its_case(server, inspector, scanned):
    photo, scan = scanned
    rejected = next(r for r in inspector.get("/v1/reviews", params={"scan_id": scan["scan_id"]}).json()["reviews"]
                    if r["decision"] == "reject")
    pixels = cv2.imread(str(photo))
    copies = {"same photo": photo.read_bytes(),
              "recompressed": jpeg_bytes(photo, quality=60),
              "rescaled": bytes(cv2.imencode(".jpg", cv2.resize(pixels, None, fx=0.75, fy=0.75))[1]),
              "flipped": bytes(cv2.imencode(".jpg", cv2.flip(pixels, 1))[1])}
    for name, data in copies.items():
        def flagged(data: bytes = data) -> dict | None:  # the index follows the review in the background
            again = inspector.post("/v1/scans", files={"image": ("again.jpg", data)}).json()
            alarms = [f["likely_false_alarm"] for f in again["findings"] if f["likely_false_alarm"]]
            # Named as the false alarm it matches, without its picture (a rejected finding's is never served).
            return again if any(a["annotation_id"] == rejected["annotation_id"] and a["thumbnail"] is None
                                for a in alarms) else None

        again = eventually(flagged)
        if name == "same photo":  # the photo is a case of the bank now: it says so, and is not its own similar case
            assert again["bank_case_id"] == rejected["case_id"]
            assert all(c["case_id"] != rejected["case_id"] for f in again["findings"] for c in f["similar_cases"])
        else:
            assert again["bank_case_id"] is None


def test_review_twice_is_a_conflict(inspector, scanned):
    _, scan = scanned
    response = inspector.post(f"/v1/findings/{scan['findings'][0]['id']}/review",
                              json={"decision": "reject", "reviewer": "someone-else"})
    assert "already confirmed" in assert_error(response, 409, "ReviewConflict")["message"]


def test_review_with_corrections_records_the_corrected_class_and_box(server, inspector, ppe_photos):
    scan = inspector.post("/v1/scans", files={"image": ("c.jpg", ppe_photos[11].read_bytes())}).json()
    if not scan["findings"]:
        pytest.skip("the photo gives no finding with this model")
    finding = scan["findings"][0]
    outside = {"x1": 10, "y1": 10, "x2": 5000, "y2": 40}
    assert_error(inspector.post(f"/v1/findings/{finding['id']}/review",
                                json={"decision": "confirm", "reviewer": "an", "box": outside}), 422, "InvalidReview")
    assert_error(inspector.post(f"/v1/findings/{finding['id']}/review",
                                json={"decision": "confirm", "reviewer": "an", "class_name": "ladder"}), 422,
                 "UnknownClass")
    box = {"x1": 10.0, "y1": 12.0, "x2": 60.0, "y2": 90.0}
    review = inspector.post(f"/v1/findings/{finding['id']}/review",
                            json={"decision": "confirm", "reviewer": "an", "class_name": "no_helmet", "box": box})
    assert review.status_code == 201, review.text
    assert review.json()["corrected"] and review.json()["box"] == box
    case = SampleBank(server.home).case(review.json()["case_id"])
    annotation = next(a for a in case.annotations if a.id == review.json()["annotation_id"])
    assert (annotation.class_name, annotation.box) == ("no_helmet", (10.0, 12.0, 60.0, 90.0))


def test_reviews_list_filters_by_scan_site_and_enterprise(inspector, scanned):
    _, scan = scanned
    by_scan = inspector.get("/v1/reviews", params={"scan_id": scan["scan_id"]}).json()["reviews"]
    assert sorted(r["decision"] for r in by_scan) == ["confirm", "reject"]
    assert len(inspector.get("/v1/reviews", params={"site": "dock-9"}).json()["reviews"]) == 2
    assert inspector.get("/v1/reviews", params={"enterprise": "other"}).json()["reviews"] == []
    assert len(inspector.get("/v1/reviews").json()["reviews"]) == 3


def test_review_every_review_is_audited(server, scanned):
    _, scan = scanned
    log = AuditLog.at(server.home)
    assert log.verify() == []
    confirms, rejects = log.records(action="review.confirm"), log.records(action="review.reject")
    assert len(confirms) == 2 and len(rejects) == 1
    first = confirms[0]
    assert first.actor == "test-inspector" and first.input_sha256 == scan["image"]["sha256"]
    assert first.model_versions == served_versions()
    assert first.details["reviewer"] == "li.wei"


def test_review_enters_the_index_as_a_small_delta_within_seconds(server, inspector, ppe_photos):
    """The review answers at once; its vectors are appended (one delta file), the base is not rewritten."""
    folders = [folder for folder in (server.home / "similar").iterdir() if (folder / INDEX_FILE).is_file()]
    bases = {folder: (folder / INDEX_FILE).stat().st_mtime_ns for folder in folders}
    scans = ((photo, inspector.post("/v1/scans", files={"image": (photo.name, photo.read_bytes())}).json())
             for photo in ppe_photos[10:20])
    found = ((photo, scan) for photo, scan in scans if scan["findings"])
    photo, scan = next(found, (None, None))
    if photo is None:
        pytest.skip("no finding on photos 10 to 19 of ppe-vest's test split with this model")
    before = {folder: len(deltas(folder)) for folder in folders}
    review = inspector.post(f"/v1/findings/{scan['findings'][0]['id']}/review", json={"decision": "confirm"}).json()

    def searchable() -> bool:
        again = inspector.post("/v1/scans", files={"image": ("again.jpg", jpeg_bytes(photo, quality=75))}).json()
        return any(case["annotation_id"] == review["annotation_id"]
                   for finding in again["findings"] for case in finding["similar_cases"])

    eventually(searchable, seconds=5)
    assert any(len(deltas(folder)) > before[folder] for folder in folders)
    assert {folder: (folder / INDEX_FILE).stat().st_mtime_ns for folder in folders} == bases
