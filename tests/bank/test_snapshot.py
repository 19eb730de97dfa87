from __future__ import annotations

import json

import pytest

from hazardvision.bank.bank import SampleBank
from hazardvision.bank.snapshot import SplitRule, make_snapshot
from hazardvision.data.bank_records import Annotation
from hazardvision.errors import BankError
from tests.bank.conftest import import_path, make_yolo


@pytest.fixture
def small_bank(sample_photos, tmp_path, database_url) -> SampleBank:
    """Four photos of two classes, on SQLite and on PostgreSQL (`database_url` sets HAZARDVISION_DATABASE_URL)."""
    labels = ["0 0.5 0.5 0.2 0.2\n1 0.2 0.2 0.1 0.1\n", "1 0.4 0.4 0.2 0.2\n", "", "0 0.6 0.6 0.2 0.3\n"]
    data = make_yolo(tmp_path / "ds", sample_photos[:4], labels, ["helmet", "no_helmet"], split="val")
    bank = SampleBank(tmp_path / "bank")
    import_path(bank, data, name="small")
    return bank


def test_snapshot_writes_a_yolo_folder_with_a_manifest(small_bank, tmp_path):
    manifest = make_snapshot(small_bank, classes=["no_helmet", "helmet"], out=tmp_path / "snaps")
    folder = tmp_path / "snaps" / manifest.id
    assert manifest.counts["val"].images == 4 and manifest.counts["val"].backgrounds == 1
    assert manifest.counts["val"].boxes == {"no_helmet": 2, "helmet": 2}
    assert manifest.sources[0].name == "small" and manifest.sources[0].images == 4
    assert len(list((folder / "images" / "val").iterdir())) == 4
    first = manifest.files[0]
    label = (folder / "labels" / "val" / f"{first.sha256}.txt").read_text()
    assert all(line.split()[0] in {"0", "1"} for line in label.splitlines())
    assert "names: [\"no_helmet\", \"helmet\"]" in (folder / "data.yaml").read_text()
    assert json.loads((folder / "manifest.json").read_text())["id"] == manifest.id


def test_snapshot_id_is_stable_and_changes_with_a_label(small_bank, tmp_path):
    first = make_snapshot(small_bank, classes=["helmet", "no_helmet"], out=tmp_path / "a")
    again = make_snapshot(small_bank, classes=["helmet", "no_helmet"], out=tmp_path / "b")
    assert first.id == again.id
    assert make_snapshot(small_bank, classes=["helmet"], out=tmp_path / "c").id != first.id
    with small_bank.database.session() as session:
        annotation = session.query(Annotation).first()
        assert annotation is not None
        annotation.x2 += 1
    assert make_snapshot(small_bank, classes=["helmet", "no_helmet"], out=tmp_path / "d").id != first.id


def test_snapshot_group_split_is_seeded(small_bank, tmp_path):
    one = make_snapshot(small_bank, classes=["helmet"], split_rule=SplitRule.GROUP, seed=1, out=tmp_path / "a")
    same = make_snapshot(small_bank, classes=["helmet"], split_rule=SplitRule.GROUP, seed=1, out=tmp_path / "b")
    assert one.id == same.id and [f.split for f in one.files] == [f.split for f in same.files]
    assert sum(c.images for c in one.counts.values()) == 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"classes": []}, "at least one class"),
        ({"classes": ["helmet"], "sources": ["nope"]}, "unknown sources"),
        ({"classes": ["helmet"], "split_rule": SplitRule.GROUP, "ratios": [0.5, 0.5, 0.5]}, "--ratios"),
    ],
)
def test_snapshot_bad_arguments(small_bank, kwargs, message):
    with pytest.raises(BankError, match=message):
        make_snapshot(small_bank, **kwargs)


def test_snapshot_originals_only_keeps_one_training_photo_per_original(tmp_path, real_bank):
    from hazardvision.bank.groups import original_name

    bank, _ = real_bank
    every = make_snapshot(bank, classes=["forklift", "person"], sources=["forklift-person"], out=tmp_path)
    originals = make_snapshot(bank, classes=["forklift", "person"], sources=["forklift-person"], out=tmp_path,
                              originals_only=True)
    train = [f for f in originals.files if f.split == "train"]
    assert len({original_name(f.source_file) for f in train}) == len(train) < every.counts["train"].images
    assert originals.counts["val"] == every.counts["val"] and originals.id != every.id and originals.originals_only
