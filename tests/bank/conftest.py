"""Builders for small labelled datasets made of real photos, and a bank of the four real datasets."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hazardvision.bank.bank import SampleBank
from hazardvision.bank.importer import ImportReport, import_dataset
from hazardvision.catalogue import load_catalogue
from hazardvision.datasets.classmap import build_class_map
from hazardvision.datasets.readers import read_dataset
from hazardvision.training.data import bundled_mapping
from tests.conftest import DATASET_NAMES, DATASETS

# How each shared dataset maps onto the catalogue: as the bundled recipes import it.
MAPPINGS = {name: bundled_mapping(name) for name in DATASET_NAMES}


def import_path(bank: SampleBank, path: Path, name: str | None = None, mapping: dict[str, str] | None = None,
                drop: list[str] | None = None, **kwargs) -> ImportReport:
    dataset = read_dataset(path, name)
    class_map = build_class_map(dataset.classes, load_catalogue(), mapping or {}, drop or [])
    return import_dataset(bank, dataset, class_map, **kwargs)


def make_yolo(root: Path, photos: list[Path], labels: list[str], names: list[str], split: str = "train") -> Path:
    """A YOLO dataset at `root` with the given photos and label file texts."""
    (root / "images" / split).mkdir(parents=True)
    (root / "labels" / split).mkdir(parents=True)
    for i, (photo, label) in enumerate(zip(photos, labels, strict=True)):
        shutil.copy(photo, root / "images" / split / f"photo{i:03d}{photo.suffix}")
        (root / "labels" / split / f"photo{i:03d}.txt").write_text(label)
    (root / "data.yaml").write_text(f"path: .\n{split}: images/{split}\nnames: {names!r}\n")
    return root / "data.yaml"


@pytest.fixture(scope="session")
def real_bank(tmp_path_factory, datasets) -> tuple[SampleBank, dict[str, ImportReport]]:
    """A bank holding the four shared datasets, imported once for the session."""
    bank = SampleBank(tmp_path_factory.mktemp("real-bank"))
    reports = {}
    for name, (mapping, drop) in MAPPINGS.items():
        reports[name] = import_path(bank, DATASETS / name, mapping=mapping, drop=drop)
    return bank, reports

