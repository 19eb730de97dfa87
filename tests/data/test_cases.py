"""`Cases`: the one crash-safe way a case enters the bank, and the bank's case queries."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest

from hazardvision.data.bank_records import PendingImage
from hazardvision.data.cases import Cases, NewAnnotation, NewCase
from hazardvision.data.database import Database
from hazardvision.data.image_store import ImageStore
from hazardvision.errors import BankError, UnknownCase
from hazardvision.home import Home
from tests.data.builders import case, open_cases, photo


@pytest.fixture
def cases(tmp_path, database_url) -> Cases:
    return open_cases(tmp_path / "home", database_url)


def add(cases: Cases, *new: NewCase, source: str = "ds", site: str | None = None,
        enterprise: str | None = None) -> dict[str, int]:
    provenance = cases.provenance(source=source, kind="dataset", licence="CC BY 4.0", site=site, enterprise=enterprise)
    with cases.database.writer():
        return cases.add(cases=list(new), provenance=provenance)


class _DyingStore(ImageStore):
    """A store whose process dies right after a photo is written, before the cases commit."""

    def put(self, sha256: str, image_format: str, data: bytes) -> Path:
        path = super().put(sha256, image_format, data)
        os._exit(9)
        return path


def _add_then_die(home: Path, url: str) -> None:
    layout = Home.at(home)
    dying = Cases(Database(url, layout), _DyingStore(layout.images))
    add(dying, case(1, "helmet"))


def test_cases_add_keeps_photo_case_and_annotations(cases):
    added = add(cases, case(1, "helmet", "no_helmet"), site="Dock 3", enterprise="Acme")
    found = cases.get(case_id=added[photo(1).sha256])
    assert found is not None
    assert (found.source.name, found.source_file, found.site.name, found.enterprise.name) == (
        "ds", "photo1.jpg", "Dock 3", "Acme")
    assert [a.class_name for a in found.annotations] == ["helmet", "no_helmet"]
    assert cases.store.path(photo(1).sha256, "JPEG").read_bytes() == photo(1).data
    assert cases.case_of_photo(sha256=photo(1).sha256) == found.id
    assert cases.verify() == []


def test_cases_add_a_photo_already_in_the_bank_adds_nothing(cases):
    first = add(cases, case(1, "helmet"), case(1, "helmet"))
    again = add(cases, case(1, "no_helmet"), case(2))
    assert len(first) == 1 and list(again) == [photo(2).sha256]
    assert cases.counts().cases == 2 and cases.counts().annotations == {"helmet": 1}
    assert cases.known_photos(hashes=[photo(1).sha256, photo(3).sha256]) == {photo(1).sha256}


def test_cases_crash_between_store_write_and_commit_leaves_no_orphan(tmp_path, database_url):
    home = tmp_path / "home"
    open_cases(home, database_url).database.dispose()
    child = multiprocessing.get_context("fork").Process(target=_add_then_die, args=(home, database_url))
    child.start()
    child.join(60)
    assert child.exitcode == 9
    store = ImageStore(Home.at(home).images)
    assert [sha for sha, _ in store.files()] == [photo(1).sha256]  # written, never committed

    reopened = open_cases(home, database_url)
    assert list(reopened.store.files()) == []
    assert reopened.verify() == [] and reopened.counts().cases == 0
    assert list(add(reopened, case(1, "helmet"))) == [photo(1).sha256]  # and the photo can come in again
    assert reopened.verify() == []


def test_cases_recover_leaves_pending_photos_alone_while_a_writer_works(cases):
    with cases.database.session() as session:
        session.add(PendingImage(sha256=photo(1).sha256))
    cases.store.put(photo(1).sha256, "JPEG", photo(1).data)
    with cases.database.writer():
        assert cases.recover() == 0
    assert cases.recover() == 1
    assert list(cases.store.files()) == [] and cases.verify() == []


def test_cases_add_refuses_a_site_of_another_enterprise(cases):
    add(cases, case(1), site="Dock 3", enterprise="Acme")
    with pytest.raises(BankError, match="belongs to another enterprise"):
        cases.provenance(source="ds", kind="dataset", site="Dock 3", enterprise="Other Co")
    assert cases.enterprise_of_site(site="Dock 3") == "Acme"
    assert cases.enterprise_of_site(site="Dock 4") is None


def test_cases_provenance_names_each_source_once(cases):
    first = cases.provenance(source="ds", kind="dataset")
    again = cases.provenance(source="ds", kind="dataset", site="Dock 3")
    assert again.source_id == first.source_id and first.site_id is None and again.site_id is not None
    assert [source.name for source in cases.sources()] == ["ds"]


def test_cases_list_filters_by_source_split_class_and_place(cases):
    add(cases, case(1, "helmet"), case(2, "no_helmet", split="val"), site="Dock 3", enterprise="Acme")
    add(cases, case(3, "helmet"), source="other")
    ids = lambda **filters: [c.source_file for c in cases.list(**filters)]  # noqa: E731
    assert ids() == ["photo1.jpg", "photo2.jpg", "photo3.jpg"]
    assert ids(class_name="helmet") == ["photo1.jpg", "photo3.jpg"]
    assert ids(split="val") == ["photo2.jpg"]
    assert ids(source="other") == ["photo3.jpg"]
    assert ids(site="Dock 3", class_name="helmet") == ["photo1.jpg"]
    assert ids(enterprise="Acme", limit=1, offset=1) == ["photo2.jpg"]
    assert [c.source_file for c in cases.of_sources(names=["other"])] == ["photo3.jpg"]


def test_cases_counts_per_source_and_split(cases):
    add(cases, case(1, "helmet", "helmet"), case(2), case(3, "no_helmet", split="val"))
    counts = cases.counts()
    assert (counts.cases, counts.images, counts.annotations) == (3, 3, {"helmet": 2, "no_helmet": 1})
    (source,) = counts.sources
    assert (source.name, source.licence) == ("ds", "CC BY 4.0")
    assert source.cases == {"train": 2, "val": 1} and source.backgrounds == {"train": 1}
    assert source.boxes == {"train": {"helmet": 2}, "val": {"no_helmet": 1}}


def test_cases_regroup_gives_each_photo_its_group(cases):
    add(cases, case(1), case(2), case(3))
    groups = cases.regroup(assign=lambda photos: {p.sha256: "a" if p.dhash < 3 else "b" for p in photos})
    assert groups == 2 and cases.counts().groups == 2
    assert {c.image.group_id for c in cases.list()} == {"a", "b"}


def test_cases_delete_removes_cases_photos_and_boxes(cases):
    added = add(cases, case(1, "helmet"), case(2, "helmet"))
    assert cases.delete(case_ids=[added[photo(1).sha256]]) == 1
    assert [c.source_file for c in cases.list()] == ["photo2.jpg"]
    assert not cases.store.path(photo(1).sha256, "JPEG").exists()
    assert cases.verify() == [] and cases.counts().annotations == {"helmet": 1}


def test_cases_delete_of_an_unknown_case_deletes_nothing(cases):
    added = add(cases, case(1))
    with pytest.raises(UnknownCase, match="no case 999 "):
        cases.delete(case_ids=[added[photo(1).sha256], 999])
    assert cases.counts().cases == 1


def test_cases_verify_finds_boxes_outside_their_photo(cases):
    outside = NewCase(photo=photo(1), source_file="x.jpg",
                      annotations=(NewAnnotation(class_name="helmet", box=(0, 0, 100, 10), origin="imported"),))
    add(cases, outside)
    assert cases.verify() == ["1 annotation(s) lie outside their photo"]
