"""Evaluation plots: PNGs drawn offline from our own runtime's predictions, and linked from the pack's page."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from hazardvision.detections import Detections
from hazardvision.packs.evaluation import Accumulator, GroundTruth
from hazardvision.packs.promotion import split_id
from tests.conftest import DATASETS, bundled_registry, test_photos

pytest.importorskip("matplotlib", reason="plots need matplotlib (the [train] extra)")

from hazardvision.packs.evaluation_plots import write_evaluation_plots

SCRIPT = Path(sys.executable).with_name("hazardvision")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path, min_width: int = 400) -> None:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = cv2.imread(str(path))
    assert image is not None and image.shape[1] >= min_width and image.shape[0] >= 300
    assert image.std() > 10, f"{path} is blank"


@pytest.fixture
def fire_pack(datasets, tmp_path) -> Path:
    """A copy of the bundled fire-smoke pack, scored on a datasets root of six real test photos."""
    bundled = bundled_registry().active("fire-smoke").folder  # retired, kept: a two-class pack to plot
    root = tmp_path / "datasets" / "fire-smoke"
    for kind in ("images", "labels"):
        (root / kind / "test").mkdir(parents=True)
    for photo in test_photos("fire-smoke")[:6]:
        shutil.copy(photo, root / "images" / "test")
        shutil.copy(DATASETS / "fire-smoke" / "labels" / "test" / f"{photo.stem}.txt", root / "labels" / "test")
    shutil.copy(DATASETS / "fire-smoke" / "data.yaml", root)
    folder = tmp_path / "models" / "fire-smoke" / "0.1.0"
    folder.mkdir(parents=True)
    for name in ("model.onnx", "card.json"):
        shutil.copy(bundled / name, folder)
    card = json.loads((folder / "card.json").read_text())
    card["version"] = "0.1.0"
    card["evaluation_sets"] = [{"dataset": "fire-smoke", "split": "test", "map": {}, "drop": ["default"],
                                "split_id": split_id(root / "data.yaml", "test")}]
    (folder / "card.json").write_text(json.dumps(card))
    return folder


def plots_command(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), "models", "plots", "fire-smoke", "0.1.0", "--models",
                           str(folder.parent.parent), "--datasets", str(folder.parent.parent.parent / "datasets")],
                          capture_output=True, text=True, timeout=300, check=False)


def test_models_plots_writes_readable_pngs_and_links_them(fire_pack):
    done = plots_command(fire_pack)
    assert done.returncode == 0, done.stderr
    assert "fire-smoke: mAP50" in done.stdout
    confusion, pr = fire_pack / "plots" / "fire-smoke-confusion.png", fire_pack / "plots" / "fire-smoke-pr.png"
    assert_png(confusion, min_width=800)  # counts and shares side by side
    assert_png(pr)
    card = json.loads((fire_pack / "card.json").read_text())
    assert card["plots"] == {"fire-smoke": {"confusion": "plots/fire-smoke-confusion.png",
                                            "pr": "plots/fire-smoke-pr.png"}}
    page = (fire_pack / "README.md").read_text()
    assert "(plots/fire-smoke-confusion.png)" in page and "(plots/fire-smoke-pr.png)" in page


def test_models_plots_refuses_a_test_split_that_changed_since_the_card(fire_pack):
    photos = fire_pack.parents[2] / "datasets" / "fire-smoke" / "images" / "test"
    next(photos.iterdir()).unlink()
    done = plots_command(fire_pack)
    assert done.returncode == 2 and "differs from the one fire-smoke 0.1.0 was scored on" in done.stderr
    assert not (fire_pack / "plots").exists()


def test_write_evaluation_plots_draws_a_class_without_boxes_and_an_empty_split(tmp_path):
    accumulator = Accumulator(("fire", "smoke"))
    accumulator.add(Detections.of([[0, 0, 10, 10]], [0.9], [0], ("fire", "smoke")),
                    GroundTruth(np.asarray([[0, 0, 10, 10]], np.float32), np.asarray(["fire"], np.str_)))
    accumulator.add(Detections.empty(("fire", "smoke")), GroundTruth(np.zeros((0, 4), np.float32),
                                                                       np.zeros(0, np.str_)))
    written = write_evaluation_plots(accumulator, tmp_path, "tiny", operating_confidence=0.25, label="test")
    for relative in written.values():
        assert_png(tmp_path / relative)
