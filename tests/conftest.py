"""Shared fixtures: where the real photos are, and skipping cleanly when they are absent."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from hazardvision.packs.model_pack import ModelPack
from hazardvision.packs.registry import PackRegistry, default_models_dir
from tests.browsers import browser  # noqa: F401  (one headless Chromium per test process, for every page test)

os.environ.setdefault("YOLO_OFFLINE", "1")  # before any test imports ultralytics

# The `database_url` fixture (SQLite and PostgreSQL) and the per-database count at the end of the run.
pytest_plugins = ("tests.databases",)

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("HAZARDVISION_DATASETS", REPO.parent / "shared" / "datasets"))
DATASET_NAMES = ("ppe-vest", "fire-smoke", "forklift-person", "hardhat-head")


def test_photos(dataset: str) -> list[Path]:
    """Sorted test-split photos of a shared dataset (empty when absent)."""
    folder = DATASETS / dataset / "images" / "test"
    return sorted(folder.iterdir()) if folder.is_dir() else []


test_photos.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def bundled_registry() -> PackRegistry:
    """The bundled packs alone: tests never see a pack the user trained or activated in a home."""
    return PackRegistry(default_models_dir())


def bundled_packs() -> list[ModelPack]:
    """The bundled packs that serve, at their active versions."""
    return bundled_registry().active_packs()


def bundled_version(pack: str) -> str:
    """The active version of a bundled model pack, e.g. the one the service reports."""
    return bundled_registry().active(pack).version


def served_versions() -> dict[str, str]:
    """Pack -> active version of every bundled pack that serves: what scans and alerts report."""
    return {version.pack: version.version for version in bundled_registry().serving()}


def shipped_packs() -> list[ModelPack]:
    """Every bundled pack version a user gets: the serving packs' active versions and staged packs' versions."""
    registry = bundled_registry()
    staged = [version.load() for pack in registry.packs() if registry.staged(pack)
              and registry.replaced_by(pack) is None for version in registry.versions(pack)]
    return [*bundled_packs(), *staged]


def pack_name_for(class_name: str) -> str:
    """The bundled serving pack that detects `class_name` (one merged pack, or one of several)."""
    return pack_for(class_name).name


def pack_for(class_name: str, packs: Sequence[ModelPack] | None = None) -> ModelPack:
    """Of `packs` (default: the bundled serving packs), the one that detects `class_name`."""
    return next(p for p in (packs or bundled_packs()) if class_name in p.card.classes)


@pytest.fixture(scope="session")
def packs() -> list[ModelPack]:
    """The packs the service serves by default."""
    return bundled_packs()


@pytest.fixture(scope="session")
def datasets() -> Path:
    """The shared datasets folder; tests that need real photos skip when it is absent."""
    if not all((DATASETS / name / "images" / "test").is_dir() for name in DATASET_NAMES):
        pytest.skip(f"real photos not found: {DATASETS} needs {', '.join(DATASET_NAMES)} (../shared/datasets)")
    return DATASETS


@pytest.fixture(scope="session")
def real_photo(datasets: Path) -> Path:
    """One real site photo (a JPEG from ppe-vest's test split)."""
    return test_photos("ppe-vest")[0]


@pytest.fixture
def sample_photos(datasets: Path) -> list[Path]:
    """Six real site photos (ppe-vest test split) to build small datasets from."""
    return test_photos("ppe-vest")[:6]
