"""Labels that can be corrected: a re-import says when its labels differ, `--update-labels` and `relabel`
make a new label version with provenance, snapshots take the latest version and name it."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from hazardvision.bank.bank import SampleBank
from hazardvision.bank.labels import compare_labels, label_history, relabel
from hazardvision.bank.snapshot import make_snapshot, reproduce_snapshot
from hazardvision.catalogue import load_catalogue
from hazardvision.data.labels import Label
from hazardvision.data.reviews import Reviews
from hazardvision.data.scans import NewFinding, NewScan, Scans
from hazardvision.errors import BankError, InvalidLabels, UnknownCase
from hazardvision.similar.case_index import CaseIndex
from hazardvision.similar.maintenance import sync_indexes, verify_indexes
from tests.bank.conftest import import_path, make_yolo
from tests.conftest import pack_for
from tests.similar.conftest import copy_labelled

ON_BOTH = pytest.mark.usefixtures("database_url")  # on SQLite and on PostgreSQL

NAMES = ["helmet", "vest", "no_helmet", "no_vest"]
FIRST = ["0 0.5 0.5 0.2 0.2\n2 0.2 0.2 0.1 0.1\n", "1 0.4 0.4 0.2 0.2\n"]


@pytest.fixture
def site_photos(sample_photos, tmp_path) -> Path:
    return make_yolo(tmp_path / "site-photos", sample_photos[:2], FIRST, NAMES)


def write_labels(data_yaml: Path, texts: list[str]) -> None:
    for i, text in enumerate(texts):
        (data_yaml.parent / "labels" / "train" / f"photo{i:03d}.txt").write_text(text)


def boxes(bank: SampleBank, case_id: int) -> list[tuple[str, str]]:
    return sorted((a.class_name, a.origin) for a in bank.case(case_id).annotations)


def case_of(bank: SampleBank, file: str) -> int:
    return next(c.id for c in bank.cases() if c.source_file == f"images/train/{file}")


@ON_BOTH
def test_reimport_with_different_labels_reports_them_and_changes_nothing(site_photos, tmp_path):
    bank = SampleBank(tmp_path / "home")
    import_path(bank, site_photos)
    # photo000: the no_helmet box becomes helmet and a vest is added; photo001: its vest is removed
    write_labels(site_photos, ["0 0.5 0.5 0.2 0.2\n0 0.2 0.2 0.1 0.1\n1 0.8 0.8 0.1 0.1\n", ""])

    report = import_path(bank, site_photos)

    assert (report.imported, report.already_in_bank, report.labels_differ, report.labels_updated) == (0, 2, 2, 0)
    first, second = sorted(report.label_differences, key=lambda d: d.file)
    assert first.file == "images/train/photo000.jpg" and first.version == 1 and first.updated_to is None
    assert [(c.before, c.after) for c in first.class_changed] == [("no_helmet", "helmet")]
    assert [b.class_name for b in first.added] == ["vest"] and first.removed == []
    assert [b.class_name for b in second.removed] == ["vest"] and second.added == []
    assert first.summary() == "1 box added (vest), 1 box class changed (no_helmet -> helmet)"
    assert boxes(bank, first.case_id) == [("helmet", "imported"), ("no_helmet", "imported")]  # left as it was
    assert [v.version for v in label_history(bank, first.case_id)] == [1]


@ON_BOTH
def test_reimport_with_update_labels_makes_a_new_version_that_snapshots_take(site_photos, tmp_path):
    bank = SampleBank(tmp_path / "home")
    import_path(bank, site_photos)
    before = make_snapshot(bank, classes=NAMES, out=tmp_path / "snaps")
    write_labels(site_photos, ["0 0.5 0.5 0.2 0.2\n", FIRST[1]])

    report = import_path(bank, site_photos, update_labels=True)

    assert (report.labels_differ, report.labels_updated) == (1, 1)
    (difference,) = report.label_differences
    assert difference.updated_to == 2 and [b.class_name for b in difference.removed] == ["no_helmet"]
    assert boxes(bank, difference.case_id) == [("helmet", "imported")]
    old, new = label_history(bank, difference.case_id)
    assert (old.version, old.via, old.current, sorted(b.class_name for b in old.labels)) == (
        1, "recorded", False, ["helmet", "no_helmet"])
    assert (new.version, new.via, new.author, new.current) == (2, "import", "import of site-photos", True)
    assert "re-import of" in (new.reason or "")
    assert import_path(bank, site_photos).labels_differ == 0  # the bank holds the dataset's labels now

    after = make_snapshot(bank, classes=NAMES, out=tmp_path / "snaps")
    assert after.id != before.id
    versions = {f.source_file: f.label_version for f in after.files}
    assert versions == {"images/train/photo000.jpg": 2, "images/train/photo001.jpg": 1}
    assert {f.label_version for f in before.files} == {1}  # the old snapshot names the versions it took
    label = Path(after.path) / "labels" / "train" / f"{bank.case(difference.case_id).image_sha256}.txt"
    assert label.read_text().splitlines() == ["0 0.500000 0.500000 0.200000 0.200000"]


@ON_BOTH
def test_relabel_adds_a_version_with_provenance_and_the_old_one_stays(site_photos, tmp_path):
    bank = SampleBank(tmp_path / "home")
    import_path(bank, site_photos)
    case_id = case_of(bank, "photo001.jpg")
    labels = tmp_path / "fixed.txt"
    labels.write_text("3 0.4 0.4 0.2 0.2\n0 0.4 0.15 0.1 0.1\n")  # the vest is no_vest, and a helmet is missed

    result = relabel(bank, case_id, labels, classes=NAMES, catalogue=load_catalogue(),
                     reason="the worker wears no vest", author="li.wei")

    assert (result.changed, result.version) == (True, 2)
    assert result.difference.summary() == "1 box added (helmet), 1 box class changed (vest -> no_vest)"
    assert boxes(bank, case_id) == [("helmet", "corrected"), ("no_vest", "corrected")]
    assert bank.case(case_id).label_version == 2
    history = label_history(bank, case_id)
    assert [(v.version, v.author, v.reason) for v in history] == [
        (1, "dataset site-photos", "the labels as first recorded"), (2, "li.wei", "the worker wears no vest")]
    assert [b.class_name for b in history[0].labels] == ["vest"]
    again = relabel(bank, case_id, labels, classes=NAMES, catalogue=load_catalogue(), reason="again")
    assert (again.changed, again.version) == (False, 2)  # the same labels make no version
    assert bank.stats().sources[0].classes == {"train": {"helmet": 2, "no_helmet": 1, "no_vest": 1}}


@ON_BOTH
@pytest.mark.parametrize(("text", "message"), [
    ("0 0.5 0.5 0.2 0.2\n0 0.5 0.5\n", "line 2: expected 'class cx cy w h' or a polygon, got 2 numbers"),
    ("0 0.5 0.5 0.2 0.2\n\n9 0.5 0.5 0.2 0.2\n", "line 3: class index 9 out of range 0..3"),
    ("helmet 0.5 0.5 0.2 0.2\n", "line 1: not numbers"),
    ("0 1.5 0.5 0.2 0.2\n", "line 1: coordinates outside 0..1"),
])
def test_relabel_a_bad_label_file_says_which_line_and_why_and_changes_nothing(site_photos, tmp_path, text,
                                                                              message):
    bank = SampleBank(tmp_path / "home")
    import_path(bank, site_photos)
    case_id = case_of(bank, "photo000.jpg")
    labels = tmp_path / "bad.txt"
    labels.write_text(text)
    with pytest.raises(InvalidLabels, match="nothing was changed") as raised:
        relabel(bank, case_id, labels, classes=NAMES, catalogue=load_catalogue(), reason="fix")
    assert message in str(raised.value) and "0 helmet, 1 vest" in str(raised.value)
    assert len(label_history(bank, case_id)) == 1


@ON_BOTH
def test_relabel_an_unknown_case_or_class_is_refused(site_photos, tmp_path):
    bank = SampleBank(tmp_path / "home")
    import_path(bank, site_photos)
    labels = tmp_path / "fixed.txt"
    labels.write_text("0 0.5 0.5 0.2 0.2\n")
    with pytest.raises(UnknownCase, match="no case 999 "):
        relabel(bank, 999, labels, classes=NAMES, catalogue=load_catalogue(), reason="fix")
    with pytest.raises(InvalidLabels, match="--classes hard_hat not in the hazard catalogue"):
        relabel(bank, 1, labels, classes=["hard_hat"], catalogue=load_catalogue(), reason="fix")
    with pytest.raises(InvalidLabels, match="--reason"):
        relabel(bank, 1, labels, classes=NAMES, catalogue=load_catalogue(), reason=" ")


def label(name: str, *box: float) -> Label:
    x1, y1, x2, y2 = box
    return Label(name, (x1, y1, x2, y2))


@pytest.mark.parametrize(("new", "expected"), [
    ([label("helmet", 10.4, 10, 50, 50.9)], None),  # within a pixel: the same box
    ([label("helmet", 10, 10, 50, 50), label("vest", 60, 60, 90, 90)], "1 box added (vest)"),
    ([], "1 box removed (helmet)"),
    ([label("no_helmet", 11, 11, 50, 50)], "1 box class changed (helmet -> no_helmet)"),
    ([label("helmet", 15, 15, 55, 55)], "1 box moved (helmet)"),
    ([label("helmet", 200, 200, 240, 240)], "1 box added (helmet), 1 box removed (helmet)"),
])
def test_compare_labels_names_added_removed_changed_and_moved_boxes(new, expected):
    found = compare_labels([label("helmet", 10, 10, 50, 50)], new, file="a.txt", case_id=1, version=1)
    assert (found.summary() if found else None) == expected


def test_relabel_replaces_the_case_s_vectors_in_the_similar_case_index(tmp_path, datasets, packs):
    pack = pack_for("no_helmet", packs)
    photos = copy_labelled(tmp_path / "ppe", "ppe-vest", "test", 2)
    bank = SampleBank(tmp_path / "home")
    import_path(bank, photos, name="ppe-sample")
    sync_indexes(bank, [pack])
    case_id = bank.cases()[0].id
    old = {a.id for a in bank.case(case_id).annotations}
    labels = tmp_path / "fixed.txt"
    labels.write_text("2 0.5 0.5 0.2 0.2\n")

    relabel(bank, case_id, labels, classes=NAMES, catalogue=load_catalogue(), reason="one head, no helmet")
    assert any("missing from the index" in problem for problem in verify_indexes(bank, [pack]))
    report = sync_indexes(bank, [pack])[pack.name]

    (new,) = bank.case(case_id).annotations
    index = CaseIndex(bank.home, pack)
    assert new.id in index["instances"].ids() and not old & index["instances"].ids()
    assert index["instances"].class_of[new.id] == "no_helmet"
    assert (report.added["instances"], report.removed["instances"]) == (1, len(old))
    assert verify_indexes(bank, [pack]) == []


@ON_BOTH
def test_copies_of_one_photo_with_other_labels_do_not_take_turns_at_being_its_labels(sample_photos, tmp_path):
    # the same bytes twice, in batches of one: the first copy gives the case its labels, the second is not compared
    data_yaml = make_yolo(tmp_path / "copies", [sample_photos[0], sample_photos[0]],
                          ["0 0.5 0.5 0.2 0.2\n", "2 0.5 0.5 0.2 0.2\n"], NAMES)
    bank = SampleBank(tmp_path / "home")
    first = import_path(bank, data_yaml, batch_size=1)
    assert (first.imported, first.already_in_bank, first.labels_differ) == (1, 1, 0)
    again = import_path(bank, data_yaml, batch_size=1, update_labels=True)
    assert (again.labels_differ, again.labels_updated) == (0, 0)
    assert boxes(bank, bank.cases()[0].id) == [("helmet", "imported")]


@ON_BOTH
def test_an_old_snapshot_reproduces_after_a_correction_and_later_imports(site_photos, sample_photos, tmp_path):
    bank = SampleBank(tmp_path / "home")
    import_path(bank, site_photos)
    old = make_snapshot(bank, classes=NAMES, out=tmp_path / "snaps")
    old_labels = {p.name: p.read_text() for p in (Path(old.path) / "labels" / "train").iterdir()}
    case_id = case_of(bank, "photo000.jpg")
    fixed = tmp_path / "fixed.txt"
    fixed.write_text("3 0.5 0.5 0.4 0.4\n")
    relabel(bank, case_id, fixed, classes=NAMES, catalogue=load_catalogue(), reason="no vest")
    import_path(bank, make_yolo(tmp_path / "later", sample_photos[2:3], ["0 0.5 0.5 0.2 0.2\n"], NAMES))
    assert make_snapshot(bank, classes=NAMES, out=tmp_path / "snaps").id != old.id

    shutil.rmtree(old.path)
    again = reproduce_snapshot(bank, old.id, out=tmp_path / "snaps")
    assert again.id == old.id and {f.label_version for f in again.files} == {1}
    assert {p.name: p.read_text() for p in (Path(again.path) / "labels" / "train").iterdir()} == old_labels

    shutil.rmtree(again.path)
    bank.delete_cases([case_id])
    with pytest.raises(BankError, match=f"no longer gives snapshot {old.id}"):
        reproduce_snapshot(bank, old.id, out=tmp_path / "snaps")
    assert not Path(again.path).exists()


def snapshot_labels(folder: str) -> dict[str, str]:
    return {p.name: p.read_text() for p in (Path(folder) / "labels" / "train").iterdir()}


def review_finding(bank: SampleBank, case_id: int, scan_id: str, *, confirmed: bool, box: tuple[float, ...]) -> int:
    """A scan with one no_helmet finding, reviewed as the service does (through `Reviews.record`); the review id."""
    scan = NewScan(id=scan_id, created_at=dt.datetime.now(dt.UTC), actor="inspector-key", source="site.jpg",
                   image_sha256=bank.case(case_id).image_sha256, image_format="JPEG", result={}, model_versions={})
    with Scans(bank.database).record(scan=scan, findings=[NewFinding(
            id=f"{scan_id}-0", class_name="no_helmet", box=(1, 2, 30, 40), confidence=0.9, pack="ppe")]):
        pass
    x1, y1, x2, y2 = box
    with bank.writer(), Reviews(bank.database).record(
        finding_id=f"{scan_id}-0", scan_id=scan_id, case_id=case_id, confirmed=confirmed,
        decision="confirm" if confirmed else "reject", reviewer="li.wei", actor="inspector-key", note=None,
        class_name="no_helmet", box=(x1, y1, x2, y2), corrected=False, at=dt.datetime.now(dt.UTC),
    ) as row:
        return row.id


@ON_BOTH
def test_a_review_that_adds_a_box_makes_a_version_that_earlier_snapshots_leave_out(site_photos, tmp_path):
    bank = SampleBank(tmp_path / "home")
    import_path(bank, site_photos)
    case_id = case_of(bank, "photo001.jpg")
    old = make_snapshot(bank, classes=NAMES, out=tmp_path / "snaps")
    old_labels = snapshot_labels(old.path)

    review_finding(bank, case_id, "rejected", confirmed=False, box=(40, 40, 60, 60))
    assert bank.case(case_id).label_version == 1  # a known false alarm is no label
    review_id = review_finding(bank, case_id, "confirmed", confirmed=True, box=(2, 3, 30, 40))

    history = label_history(bank, case_id)
    assert [(v.version, v.author, v.via) for v in history] == [(1, "dataset site-photos", "recorded"),
                                                               (2, "li.wei", "review")]
    assert history[1].reason is not None and history[1].reason.startswith(f"review {review_id}: no_helmet confirmed")
    assert [b.class_name for b in history[0].labels] == ["vest"]
    assert sorted(b.class_name for b in history[1].labels) == ["no_helmet", "vest"]
    new = make_snapshot(bank, classes=NAMES, out=tmp_path / "snaps")
    assert new.id != old.id
    assert {f.case_id: f.label_version for f in new.files}[case_id] == 2
    new_labels = snapshot_labels(new.path)
    label_file = f"{bank.case(case_id).image_sha256}.txt"
    assert new_labels[label_file].count("\n") == 2 and old_labels[label_file].count("\n") == 1

    fixed = tmp_path / "fixed.txt"  # a later correction does not make the reviewed box part of older versions
    fixed.write_text("3 0.4 0.4 0.2 0.2\n")
    relabel(bank, case_id, fixed, classes=NAMES, catalogue=load_catalogue(), reason="no vest, no head")
    for made, labels, version in ((old, old_labels, 1), (new, new_labels, 2)):
        shutil.rmtree(made.path)
        again = reproduce_snapshot(bank, made.id, out=tmp_path / "snaps")
        assert again.id == made.id and {f.case_id: f.label_version for f in again.files}[case_id] == version
        assert snapshot_labels(again.path) == labels
