"""`SimilarCaseRecords` and `Snapshots`: what the similar-case indexes and the snapshots read and keep."""

from __future__ import annotations

import pytest

from hazardvision.data.cases import Cases, NewAnnotation, NewCase
from hazardvision.data.similar_cases import SimilarCaseRecords
from hazardvision.data.snapshots import Snapshots
from tests.data.builders import case, open_cases, photo


@pytest.fixture
def cases(tmp_path, database_url) -> Cases:
    return open_cases(tmp_path / "home", database_url)


def add(cases: Cases, *new: NewCase, site: str | None = None) -> dict[str, int]:
    provenance = cases.provenance(source="ds", kind="dataset", site=site, enterprise="acme" if site else None)
    with cases.database.writer():
        return cases.add(cases=list(new), provenance=provenance)


def test_similar_case_records_contents_of_some_classes(cases):
    rejected = NewCase(photo=photo(2), source_file="b.jpg", annotations=(
        NewAnnotation(class_name="no_helmet", box=(1, 1, 5, 5), origin="rejected"),))
    added = add(cases, case(1, "helmet", "fire"), rejected)
    contents = SimilarCaseRecords(cases.database).contents(classes=["helmet", "no_helmet"])
    assert sorted(contents.case_ids) == sorted(added.values())
    assert sorted((a.class_name, a.origin) for a in contents.annotations) == [("helmet", "imported"),
                                                                              ("no_helmet", "rejected")]


def test_similar_case_records_photos_and_their_boxes(cases):
    added = add(cases, case(1, "helmet", "fire"), case(2, "helmet"))
    first = added[photo(1).sha256]
    photos, boxes = SimilarCaseRecords(cases.database).photos(case_ids=[first])
    assert [(p.case_id, p.sha256, p.format) for p in photos] == [(first, photo(1).sha256, "JPEG")]
    assert sorted(b.box for b in boxes) == [(1, 2, 10, 20), (1, 2, 11, 20)]
    assert {b.case_id for b in boxes} == {first}


def test_similar_case_records_cases_at_a_place_and_their_summaries(cases):
    at_dock = add(cases, case(1, "helmet"), site="Dock 3")[photo(1).sha256]
    elsewhere = add(cases, case(2, "helmet"))[photo(2).sha256]
    records = SimilarCaseRecords(cases.database)
    assert records.case_ids_at(site="Dock 3", enterprise=None) == {at_dock}
    assert records.case_ids_at(site=None, enterprise="acme") == {at_dock}
    assert records.case_ids_at(site="Dock 3", enterprise="other") == set()
    annotation = cases.get(case_id=at_dock).annotations[0]
    summaries, boxes = records.summaries(case_ids={at_dock, elsewhere}, annotation_ids={annotation.id})
    assert (summaries[at_dock].source, summaries[at_dock].site, summaries[at_dock].enterprise) == ("ds", "Dock 3",
                                                                                                   "acme")
    assert summaries[elsewhere].site is None and boxes == {annotation.id: (1, 2, 10, 20)}
    assert records.has_annotation(case_id=at_dock, annotation_id=annotation.id)
    assert not records.has_annotation(case_id=elsewhere, annotation_id=annotation.id)


def test_snapshots_record_each_snapshot_once(cases):
    snapshots = Snapshots(cases.database)
    assert snapshots.record(snapshot_id="abc", path="/tmp/abc", manifest={"classes": ["helmet"]})
    assert not snapshots.record(snapshot_id="abc", path="/elsewhere", manifest={})
    found = snapshots.get(snapshot_id="abc")
    assert found is not None and (found.path, found.manifest) == ("/tmp/abc", {"classes": ["helmet"]})
