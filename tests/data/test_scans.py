"""`Scans` and `Reviews`: a scan with its findings, and the final verdict on each finding."""

from __future__ import annotations

import datetime as dt

import pytest

from hazardvision.data.cases import Cases
from hazardvision.data.reviews import Reviews
from hazardvision.data.scans import NewFinding, NewScan, Scans
from hazardvision.errors import DuplicateIdempotencyKey, ReviewConflict
from tests.data.builders import case, open_cases, photo

AT = dt.datetime(2026, 4, 2, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def cases(tmp_path, database_url) -> Cases:
    return open_cases(tmp_path / "home", database_url)


def record_scan(scans: Scans, scan_id: str, *, site: str | None = "dock-9", findings: int = 2) -> None:
    scan = NewScan(id=scan_id, created_at=AT, actor="li.wei", source="site.jpg", image_sha256=photo(1).sha256,
                   image_format="JPEG", result={"image": {"width": 64, "height": 48}}, model_versions={"ppe": "0.2.1"},
                   site=site, enterprise="acme")
    with scans.record(scan=scan, findings=[
        NewFinding(id=f"{scan_id}-{i}", class_name="no_helmet", box=(1, 2, 30, 40), confidence=0.9, pack="ppe")
        for i in range(findings)
    ]):
        pass


def review(reviews: Reviews, finding_id: str, case_id: int, *, confirmed: bool = True) -> int:
    with reviews.record(finding_id=finding_id, scan_id=finding_id.split("-", 1)[0], case_id=case_id,
                        confirmed=confirmed, decision="confirm" if confirmed else "reject", reviewer="li.wei",
                        actor="inspector-key", note=None, class_name="helmet", box=(2, 3, 30, 40), corrected=True,
                        at=AT) as row:
        return row.id


def test_scans_record_keeps_findings_in_order(cases):
    scans = Scans(cases.database)
    record_scan(scans, "s1", findings=3)
    found = scans.get(scan_id="s1")
    assert found is not None and found.site == "dock-9" and found.model_versions == {"ppe": "0.2.1"}
    assert [f.id for f in found.findings] == ["s1-0", "s1-1", "s1-2"]
    assert [f.status for f in found.findings] == ["pending"] * 3
    assert scans.get(scan_id="nope") is None


def test_scans_record_is_undone_when_the_work_inside_fails(cases):
    scans = Scans(cases.database)
    scan = NewScan(id="s1", created_at=AT, actor="li.wei", source="x.jpg", image_sha256="0" * 64, image_format="JPEG",
                   result={}, model_versions={})
    with pytest.raises(RuntimeError), scans.record(scan=scan, findings=[]):
        raise RuntimeError("the audit log cannot be written")
    assert scans.get(scan_id="s1") is None


def test_reviews_record_annotates_the_case_and_is_final(cases):
    scans, reviews = Scans(cases.database), Reviews(cases.database)
    record_scan(scans, "s1")
    provenance = cases.provenance(source="service-scans", kind="scan")
    with cases.database.writer():
        case_id = cases.add(cases=[case(1)], provenance=provenance)[photo(1).sha256]
    review(reviews, "s1-0", case_id)
    review(reviews, "s1-1", case_id, confirmed=False)
    annotations = cases.get(case_id=case_id).annotations
    assert [(a.origin, a.class_name, a.source_class) for a in annotations] == [
        ("confirmed", "helmet", "no_helmet"), ("rejected", "helmet", "no_helmet")]
    finding = reviews.finding(finding_id="s1-0")
    assert finding is not None and finding.status == "confirmed" and finding.scan.id == "s1"
    with pytest.raises(ReviewConflict, match="a review is final"):
        review(reviews, "s1-0", case_id)
    assert len(cases.get(case_id=case_id).annotations) == 2


def test_reviews_list_newest_first_by_scan_and_site(cases):
    scans, reviews = Scans(cases.database), Reviews(cases.database)
    record_scan(scans, "s1", findings=1)
    record_scan(scans, "s2", site="dock-4", findings=1)
    provenance = cases.provenance(source="service-scans", kind="scan")
    with cases.database.writer():
        case_id = cases.add(cases=[case(1)], provenance=provenance)[photo(1).sha256]
    first, second = review(reviews, "s1-0", case_id), review(reviews, "s2-0", case_id)
    assert [r.id for r in reviews.list()] == [second, first]
    assert [r.id for r in reviews.list(scan_id="s1")] == [first]
    assert [r.id for r in reviews.list(site="dock-4", enterprise="acme")] == [second]
    assert reviews.list(site="dock-1") == []


def test_scans_one_idempotency_key_per_actor_names_one_scan(cases):
    scans = Scans(cases.database)

    def keyed(scan_id: str, actor: str = "li.wei") -> NewScan:
        return NewScan(id=scan_id, created_at=AT, actor=actor, source="site.jpg", image_sha256=photo(1).sha256,
                       image_format="JPEG", result={}, model_versions={}, idempotency_key="retry-7f3a")

    with scans.record(scan=keyed("first"), findings=[]):
        pass
    with pytest.raises(DuplicateIdempotencyKey, match="retry-7f3a"), scans.record(scan=keyed("second"), findings=[]):
        pass
    assert scans.get(scan_id="second") is None  # the retry stored nothing
    found = scans.by_idempotency_key(actor="li.wei", key="retry-7f3a")
    assert found is not None and found.id == "first"
    with scans.record(scan=keyed("other-actor", actor="dock-3"), findings=[]):  # keys are per actor
        pass
    record_scan(scans, "unkeyed-1")
    record_scan(scans, "unkeyed-2")  # scans without a key never collide
    assert scans.get(scan_id="unkeyed-2") is not None


def test_reviews_confirming_an_object_the_case_has_already_adds_no_second_box(cases):
    scans, reviews = Scans(cases.database), Reviews(cases.database)
    record_scan(scans, "s1", findings=3)
    with cases.database.writer():  # the photo was imported with a helmet box at (1, 2, 10, 20)
        case_id = cases.add(cases=[case(1, "helmet")], provenance=cases.provenance(source="ppe", kind="dataset"))[
            photo(1).sha256]
    imported = cases.get(case_id=case_id).annotations[0].id

    def verdict(finding: str, box: tuple[float, float, float, float], *, confirmed: bool = True) -> int:
        with reviews.record(finding_id=finding, scan_id="s1", case_id=case_id, confirmed=confirmed,
                            decision="confirm" if confirmed else "reject", reviewer="li.wei", actor="k", note=None,
                            class_name="helmet", box=box, corrected=False, at=AT) as row:
            return row.annotation_id

    assert verdict("s1-0", (1.5, 2, 10.5, 20)) == imported  # the same helmet: the review points at its box
    elsewhere = verdict("s1-1", (30, 30, 40, 44))  # another helmet on the photo: a new box
    rejected = verdict("s1-2", (1, 2, 10, 20), confirmed=False)  # a verdict of the other kind is its own box
    boxes = cases.get(case_id=case_id).annotations
    assert sorted(a.id for a in boxes) == sorted({imported, elsewhere, rejected}) and len(boxes) == 3
