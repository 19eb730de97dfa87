"""Importing: counts equal the published tables, re-imports add nothing, bad files are reported."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import pytest

from hazardvision.bank.bank import SampleBank
from hazardvision.bank.snapshot import SplitRule, make_snapshot
from hazardvision.errors import ClassMappingError, DatasetError
from tests.bank.conftest import import_path, make_yolo
from tests.conftest import DATASETS

# ../shared/datasets/README.md, "Box counts": images (with an empty label file) and boxes per class.
README_TABLE = {
    "ppe-vest": {
        "train": (816, 0, {"helmet": 1457, "vest": 416, "no_helmet": 697, "no_vest": 1683}),
        "val": (113, 0, {"helmet": 269, "vest": 98, "no_helmet": 65, "no_vest": 228}),
        "test": (92, 0, {"helmet": 163, "vest": 28, "no_helmet": 47, "no_vest": 169}),
    },
    "fire-smoke": {
        "train": (775, 1, {"fire": 297, "default": 124, "smoke": 422}),
        "val": (75, 0, {"fire": 30, "default": 9, "smoke": 52}),
        "test": (129, 0, {"fire": 57, "default": 27, "smoke": 59}),
    },
    "forklift-person": {
        "train": (791, 0, {"forklift": 855, "person": 809}),
        "val": (121, 0, {"forklift": 127, "person": 117}),
        "test": (99, 3, {"forklift": 114, "person": 81}),
    },
    "hardhat-head": {
        "train": (675, 1, {"hard_hat": 988, "no_hard_hat": 279, "no_head_wear": 616, "person": 1906}),
        "val": (204, 0, {"hard_hat": 315, "no_hard_hat": 74, "no_head_wear": 207, "person": 599}),
        "test": (75, 0, {"hard_hat": 138, "no_hard_hat": 16, "no_head_wear": 97, "person": 248}),
    },
}


@pytest.mark.parametrize("name", list(README_TABLE))
def test_import_real_dataset_counts_equal_the_published_table(real_bank, name):
    bank, reports = real_bank
    report = reports[name]
    stats = next(s for s in bank.stats().sources if s.name == name)
    assert report.failed == 0 and report.imported == sum(v[0] for v in README_TABLE[name].values())
    for split, (images, empty, boxes) in README_TABLE[name].items():
        assert stats.cases[split] == images
        assert report.empty_label_files.get(split, 0) == empty
        imported = {k: v for k, v in boxes.items() if k != "default"}
        assert stats.boxes.get(split, {}) == {k: v for k, v in imported.items() if v}
        assert report.boxes.get(split, {}) == imported
        if name == "fire-smoke":  # 'default' boxes are dropped; their photos stay as backgrounds
            assert report.dropped[split] == {"default": boxes["default"]}


def test_import_maps_source_classes_onto_the_catalogue(real_bank):
    bank, _ = real_bank
    annotations = bank.stats().annotations
    assert annotations["helmet"] == 1457 + 269 + 163 + 988 + 315 + 138
    assert annotations["no_helmet"] == 697 + 65 + 47 + 279 + 74 + 16 + 616 + 207 + 97
    assert "hard_hat" not in annotations and "default" not in annotations


def test_import_polygon_rows_become_enclosing_boxes_and_are_reported(real_bank):
    _, reports = real_bank
    warnings = [w for p in reports["hardhat-head"].problems for w in p.warnings]
    converted = sum(int(w.split(": ")[1].split()[0]) for w in warnings if "polygon" in w)
    assert converted == 1581 + 493 + 77


def test_reimport_and_renamed_copy_add_nothing(real_bank, tmp_path):
    bank, _ = real_bank
    before = bank.stats().cases
    again = import_path(bank, DATASETS / "fire-smoke", drop=["default"])
    assert (again.imported, again.already_in_bank) == (0, 979)
    # A renamed copy: another folder and other file names, same bytes (symlinks keep it cheap).
    copy = tmp_path / "fire-copy"
    for split in ("train", "val", "test"):
        for kind in ("images", "labels"):
            (copy / kind / split).mkdir(parents=True)
        for photo in sorted((DATASETS / "fire-smoke" / "images" / split).iterdir()):
            renamed = f"copy_{photo.stem[::-1]}"
            os.symlink(photo, copy / "images" / split / f"{renamed}{photo.suffix}")
            os.symlink(DATASETS / "fire-smoke" / "labels" / split / f"{photo.stem}.txt",
                       copy / "labels" / split / f"{renamed}.txt")
    shutil.copy(DATASETS / "fire-smoke" / "data.yaml", copy / "data.yaml")
    renamed_report = import_path(bank, copy, name="fire-renamed", drop=["default"])
    assert (renamed_report.imported, renamed_report.already_in_bank) == (0, 979)
    assert bank.stats().cases == before


def test_group_split_keeps_every_reference_leak_cluster_in_one_split(real_bank):
    bank, _ = real_bank
    manifest = make_snapshot(bank, classes=["helmet", "no_helmet", "vest", "no_vest", "fire", "smoke", "forklift",
                                            "person"], split_rule=SplitRule.GROUP, seed=7)
    split_of = {(f.source, Path(f.source_file).name): f.split for f in manifest.files}
    straddling = []
    clusters = 0
    for name in ("ppe-vest", "fire-smoke", "forklift-person", "hardhat-head"):
        members: dict[str, set[str]] = {}
        for row in csv.DictReader((DATASETS / name / "groups.tsv").open(), delimiter="\t"):
            members.setdefault(row["leak_cluster"], set()).add(split_of[(name, row["file"])])
        clusters += len(members)
        straddling += [cluster for cluster, splits in members.items() if len(splits) > 1]
    assert clusters == 2281
    assert straddling == []
    counts = manifest.counts
    total = sum(c.images for c in counts.values())
    assert abs(counts["train"].images / total - 0.8) < 0.05 and counts["test"].images > 0.05 * total


@pytest.mark.usefixtures("database_url")  # on SQLite and on PostgreSQL
def test_import_malformed_files_are_reported_and_the_rest_imported(sample_photos, tmp_path):
    bad_image = tmp_path / "not-a-photo.jpg"
    bad_image.write_text("this is text")
    data = make_yolo(
        tmp_path / "mixed", [*sample_photos[:4], bad_image, sample_photos[4]],
        [
            "0 0.5 0.5 0.2 0.2\n",
            "0 0.5 0.5 0.2 0.2\nthis is garbage\n",
            "7 0.5 0.5 0.2 0.2\n",
            "1 0.5 0.5 1.8 0.2\n",
            "0 0.5 0.5 0.2 0.2\n",
            "1 0.1 0.1 0.3 0.1 0.3 0.4 0.1 0.4\n",
        ],
        ["helmet", "no_helmet"],
    )
    (tmp_path / "mixed" / "labels" / "train" / "orphan.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    report = import_path(SampleBank(tmp_path / "bank"), data)
    assert (report.imported, report.failed) == (2, 4)
    errors = {p.file: " ".join(p.errors) for p in report.problems if p.errors}
    assert "not numbers" in errors["images/train/photo001.jpg"]
    assert "class index 7 out of range" in errors["images/train/photo002.jpg"]
    assert "outside 0..1" in errors["images/train/photo003.jpg"]
    assert "unreadable image" in errors["images/train/photo004.jpg"]
    assert any("polygon" in w for p in report.problems for w in p.warnings)
    assert report.dataset_problems == ["labels/train/orphan.txt: label file without an image"]


@pytest.mark.usefixtures("database_url")  # on SQLite and on PostgreSQL
def test_import_broken_data_yaml_is_a_dataset_error(tmp_path):
    (tmp_path / "data.yaml").write_text("names: [helmet\n  train: :")
    with pytest.raises(DatasetError, match="not valid YAML"):
        import_path(SampleBank(tmp_path / "bank"), tmp_path / "data.yaml")
    (tmp_path / "data.yaml").write_text("train: images/train\n")
    with pytest.raises(DatasetError, match="'names'"):
        import_path(SampleBank(tmp_path / "bank"), tmp_path / "data.yaml")


@pytest.mark.usefixtures("database_url")  # on SQLite and on PostgreSQL
def test_import_unmapped_classes_are_refused_before_anything_is_written(sample_photos, tmp_path):
    data = make_yolo(tmp_path / "ds", sample_photos[:1], ["0 0.5 0.5 0.2 0.2\n"], ["ladder"])
    bank = SampleBank(tmp_path / "bank")
    with pytest.raises(ClassMappingError, match=r"\['ladder'\] are not catalogue classes"):
        import_path(bank, data)
    assert bank.stats().cases == 0


@pytest.mark.usefixtures("database_url")  # on SQLite and on PostgreSQL
def test_import_coco_reports_box_outside_and_missing_image(sample_photos, tmp_path):
    import json

    images = tmp_path / "coco"
    images.mkdir()
    for i, photo in enumerate(sample_photos[:3]):
        shutil.copy(photo, images / f"p{i}.jpg")
    spec = {
        "categories": [{"id": 1, "name": "helmet"}, {"id": 2, "name": "no_vest"}],
        "images": [{"id": i, "file_name": f"p{i}.jpg", "width": 416, "height": 416} for i in range(4)],
        "annotations": [
            {"id": 1, "image_id": 0, "category_id": 1, "bbox": [10, 10, 50, 60]},
            {"id": 2, "image_id": 1, "category_id": 2, "bbox": [400, 10, 90, 60]},
            {"id": 3, "image_id": 2, "category_id": 2, "bbox": [100, 100, 20, 20]},
            {"id": 4, "image_id": 3, "category_id": 1, "bbox": [1, 1, 5, 5]},
        ],
    }
    (images / "labels.json").write_text(json.dumps(spec))
    bank = SampleBank(tmp_path / "bank")
    report = import_path(bank, images / "labels.json")
    assert (report.imported, report.failed) == (2, 2)
    errors = " ".join(e for p in report.problems for e in p.errors)
    assert "lies outside the 416x416 image" in errors and "p3.jpg does not exist" in errors
    case = bank.cases(source="labels")[0]
    assert case.annotations[0].box == (10, 10, 60, 70)
