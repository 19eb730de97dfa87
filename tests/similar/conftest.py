"""A small bank of real labelled photos with its similar-case indexes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hazardvision.bank.bank import SampleBank
from hazardvision.packs.model_pack import ModelPack
from hazardvision.similar.maintenance import sync_indexes
from tests.bank.conftest import import_path
from tests.conftest import DATASETS

PHOTOS = 10


def copy_labelled(root: Path, dataset: str, split: str, count: int, start: int = 0) -> Path:
    """A YOLO folder holding `count` real photos of a shared dataset's split, with their real labels."""
    source = DATASETS / dataset
    (root / "images" / split).mkdir(parents=True)
    (root / "labels" / split).mkdir(parents=True)
    for photo in sorted((source / "images" / split).iterdir())[start : start + count]:
        shutil.copy(photo, root / "images" / split / photo.name)
        shutil.copy(source / "labels" / split / f"{photo.stem}.txt", root / "labels" / split / f"{photo.stem}.txt")
    shutil.copy(source / "data.yaml", root / "data.yaml")
    return root


@pytest.fixture(scope="session")
def ppe_photos(tmp_path_factory, datasets) -> Path:
    """Ten ppe-vest training photos (Roboflow copies of a few originals) with their labels."""
    return copy_labelled(tmp_path_factory.mktemp("ppe-photos"), "ppe-vest", "train", PHOTOS)


def indexed_bank(home: Path, photos: Path, packs: list[ModelPack]) -> SampleBank:
    bank = SampleBank(home)
    import_path(bank, photos, name="ppe-sample", site="Dock 3", enterprise="Acme Steel")
    sync_indexes(bank, packs)
    return bank


@pytest.fixture(scope="module")
def bank(tmp_path_factory, ppe_photos, packs) -> SampleBank:
    """A bank of the ten photos at site Dock 3 of Acme Steel, indexed by every active pack."""
    return indexed_bank(tmp_path_factory.mktemp("bank"), ppe_photos, packs)
