"""The inspection record as PDF: real text in English and Chinese (every finding's id and hazard name, the audit
head hash), one image per photo; rendered from small objects, and exported through a real server."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
import string

import cv2
import numpy as np
import pytest
from pypdf import PdfReader

from hazardvision.access import Role
from hazardvision.catalogue import load_catalogue
from hazardvision.data.audit import AuditLog
from hazardvision.data.inspection_records import RectificationStatus
from hazardvision.results import Box, Finding, HazardInfo, ImageInfo, ModelRef
from hazardvision.service.i18n import LABELS, Language, label
from hazardvision.service.inspection_record import AuditAnchor, render_record
from hazardvision.service.schemas.inspections import InspectionDetail
from hazardvision.service.schemas.rectifications import RectificationView
from hazardvision.service.schemas.reviews import Decision, ReviewResponse
from hazardvision.service.schemas.scans import ScanContext, ScanResponse
from tests.service.conftest import assert_error, live_server

NOW = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)
HEAD = "ab" * 32
CHINESE = re.compile(r"[\u4e00-\u9fff]")


def pdf_text(data: bytes) -> str:
    """The PDF's text, pages joined, every run of white space made one space (wrapped lines join up)."""
    reader = PdfReader(io.BytesIO(data))
    return re.sub(r"\s+", " ", " ".join(page.extract_text() for page in reader.pages))


def pdf_images(data: bytes) -> int:
    return sum(len(page.images) for page in PdfReader(io.BytesIO(data)).pages)


def jpeg(width: int = 640, height: int = 480, shade: int = 90) -> bytes:
    ok, data = cv2.imencode(".jpg", np.full((height, width, 3), shade, np.uint8))
    assert ok
    return data.tobytes()


def finding(class_name: str, confidence: float = 0.8) -> Finding:
    hazard = HazardInfo.of(load_catalogue().entry(class_name))
    assert hazard is not None
    return Finding(id=hashlib.md5(f"{class_name}{confidence}".encode()).hexdigest(), class_name=class_name,
                   confidence=confidence, box=Box(x1=10, y1=20, x2=200, y2=300), pack="ppe", hazard=hazard,
                   similar_cases=[])


def scan(scan_id: str, findings: list[Finding], width: int = 640, height: int = 480) -> ScanResponse:
    return ScanResponse(source=f"{scan_id}.jpg", image=ImageInfo(width=width, height=height, sha256="0" * 64),
                        models=[ModelRef(pack="ppe", version="0.3.0", precision="int8")], findings=findings,
                        objects=[], timings_ms={}, scan_id=scan_id, stored_sha256="0" * 64, created_at=NOW,
                        context=ScanContext(site="dock-9", captured_at=NOW))


def review(item: Finding, decision: Decision) -> ReviewResponse:
    return ReviewResponse(id=1, finding_id=item.id, scan_id="s1", decision=decision, reviewer="li wei",
                          actor="inspector-1", note="checked on site", class_name=item.class_name, box=item.box,
                          corrected=False, created_at=NOW)


def rectification(item: Finding) -> RectificationView:
    return RectificationView(id="r1", finding_id=item.id, scan_id="s1", class_name=item.class_name, site="dock-9",
                             responsible="site contractor", deadline=NOW + dt.timedelta(days=7),
                             status=RectificationStatus.OPEN, overdue=False, assigned_by="inspector-1",
                             assigned_at=NOW)


def inspection(scans: list[ScanResponse], reviews: list[ReviewResponse] = (),
               rectifications: list[RectificationView] = ()) -> InspectionDetail:
    return InspectionDetail(id="i" * 32, site="3号码头", enterprise="acme", inspector="inspector-1", visited_on=NOW,
                            notes="quarterly visit", created_at=NOW, scan_ids=[s.scan_id for s in scans],
                            scans=scans, reviews=list(reviews), rectifications=list(rectifications))


@pytest.fixture(scope="module")
def two_photo_record() -> InspectionDetail:
    """Two photos: one with a confirmed hazard (rectification open) and a rejected one; one portrait, without."""
    helmet, vest = finding("no_helmet", 0.91), finding("no_vest", 0.55)
    return inspection([scan("s1", [helmet, vest]), scan("s2", [], width=480, height=900)],
                      [review(helmet, Decision.CONFIRM), review(vest, Decision.REJECT)], [rectification(helmet)])


def render(record: InspectionDetail, language: Language) -> bytes:
    photos = {s.scan_id: jpeg(s.image.width, s.image.height, 60 + 40 * n) for n, s in enumerate(record.scans)}
    return render_record(record, photos, AuditAnchor(41, HEAD), language, made_at=NOW)


@pytest.fixture(scope="module", params=list(Language), ids=str)
def rendered(request, two_photo_record) -> tuple[Language, bytes]:
    """The two-photo record rendered in each language (once: a render takes a second or two)."""
    return request.param, render(two_photo_record, request.param)


def test_record_holds_every_finding_and_the_audit_head_as_text(two_photo_record, rendered):
    language, data = rendered
    assert data.startswith(b"%PDF-")
    text = pdf_text(data)
    for item in two_photo_record.scans[0].findings:
        assert item.id in text
        assert (item.hazard.name.zh if language is Language.ZH else item.hazard.name.en) in text
        assert item.hazard.rules[0].ref in text
    assert HEAD in text and "3号码头" in text and "ppe 0.3.0 (int8)" in text
    assert "site contractor" in text and "2026-12-07 09:00 UTC" in text  # the rectification's deadline
    for key in ("record.title", "decision.confirm", "decision.reject", "status.open", "record.no_findings"):
        assert re.sub(r"\s+", " ", label(key, language)) in text
    advice = two_photo_record.scans[0].findings[0].hazard.advice
    if language is Language.ZH:
        assert advice.zh[:12] in text
    else:
        assert advice.en[:40] in text and not CHINESE.search(text.replace("3号码头", ""))


def test_record_holds_one_image_per_photo(two_photo_record, rendered):
    assert pdf_images(rendered[1]) == len(two_photo_record.scans) == 2


def test_record_of_many_findings_runs_over_pages_and_keeps_every_id():
    findings = [finding(name, 0.3 + n / 100) for n in range(8) for name in ("no_helmet", "fire")]
    data = render(inspection([scan("s1", findings), scan("s2", findings[:1])]), Language.ZH)
    assert len(PdfReader(io.BytesIO(data)).pages) > 3
    text = pdf_text(data)
    assert all(item.id in text for item in findings)
    assert pdf_images(data) == 2


def test_labels_have_both_languages_with_the_same_placeholders():
    names = string.Formatter()
    for key, (english, chinese) in LABELS.items():
        assert english and chinese, key
        assert CHINESE.search(chinese), key
        assert ({n for _, n, _, _ in names.parse(english) if n} == {n for _, n, _, _ in names.parse(chinese) if n}), key


# ---- through a real server ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with live_server(tmp_path_factory.mktemp("record-home")) as running:
        yield running


@pytest.fixture(scope="module")
def visit(inspector, ppe_photos):
    """An inspection of two photos, one with two findings (one confirmed and assigned, one rejected), and a grey
    frame without any."""
    for photo in ppe_photos[:15]:
        found = inspector.post("/v1/scans", files={"image": (photo.name, photo.read_bytes())},
                               data={"site": "dock-9", "enterprise": "acme"}).json()
        if len(found["findings"]) >= 2:
            break
    else:
        pytest.fail("no photo with two findings among the first 15 of ppe-vest's test split")
    blank = inspector.post("/v1/scans", files={"image": ("grey.jpg", jpeg(shade=128))},
                           data={"site": "dock-9"}).json()
    confirmed, rejected = found["findings"][:2]
    for item, decision in ((confirmed, "confirm"), (rejected, "reject")):
        assert inspector.post(f"/v1/findings/{item['id']}/review",
                              json={"decision": decision, "reviewer": "li wei"}).status_code == 201
    deadline = (NOW + dt.timedelta(days=7)).isoformat()
    assert inspector.post(f"/v1/findings/{confirmed['id']}/rectification",
                          json={"responsible": "site contractor", "deadline": deadline}).status_code == 201
    opened = inspector.post("/v1/inspections", json={"site": "dock-9", "enterprise": "acme",
                                                     "scan_ids": [found["scan_id"], blank["scan_id"]]})
    assert opened.status_code == 201, opened.text
    return opened.json()


@pytest.mark.parametrize("language", list(Language))
def test_record_export_holds_findings_audit_head_and_one_image_per_photo(server, inspector, visit, language):
    response = inspector.get(f"/v1/inspections/{visit['id']}/record.pdf", params={"lang": language.value})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert re.fullmatch(rf'attachment; filename="inspection-\d{{8}}-{visit["id"]}-{language.value}\.pdf"',
                        response.headers["content-disposition"])
    text = pdf_text(response.content)
    for item in visit["scans"][0]["findings"]:
        assert item["id"] in text and item["hazard"]["name"][language.value] in text
    assert pdf_images(response.content) == len(visit["scans"]) == 2

    export = AuditLog.at(server.home).records(action="inspection.export")[-1]
    assert export.subject == visit["id"] and export.actor == "test-inspector"
    assert export.details["sha256"] == hashlib.sha256(response.content).hexdigest()
    assert export.details["language"] == language.value
    assert export.details["audit_head"] in text  # the head when the record was made: the export's predecessor
    assert export.prev == export.details["audit_head"] and export.seq == export.details["audit_count"] + 1


def test_record_export_refuses_unknown_inspections_languages_and_pipeline_keys(server, inspector, visit):
    assert_error(inspector.get("/v1/inspections/nope/record.pdf"), 404, "UnknownInspection")
    assert_error(inspector.get(f"/v1/inspections/{visit['id']}/record.pdf", params={"lang": "fr"}), 422)
    with server.client(Role.PIPELINE) as pipeline:
        assert_error(pipeline.get(f"/v1/inspections/{visit['id']}/record.pdf"), 403, "Forbidden")
