"""Packaging real trained weights: ONNX float32 and int8, metrics through our runtime, speed, card."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hazardvision.packs.card import ModelCard, Plots, Precision
from hazardvision.packs.evaluation import evaluate_dataset
from hazardvision.packs.integrity import hash_files
from hazardvision.training.packaging import card_markdown, scratch_pack
from hazardvision.training.recipe import load_recipe, recipe_path
from tests.conftest import DATASETS, bundled_registry

SCRIPT = Path(sys.executable).with_name("hazardvision")


@pytest.fixture(scope="module")
def built(datasets, tmp_path_factory) -> tuple[Path, Path]:
    """fire-smoke's bundled weights packaged as 9.9.9 into a fresh home, over an empty bundled folder."""
    pytest.importorskip("ultralytics", reason="packaging needs the [train] extra")
    bundled = fire_smoke()
    home, models = tmp_path_factory.mktemp("home"), tmp_path_factory.mktemp("models")
    done = subprocess.run(
        [str(SCRIPT), "models", "build", "--weights", str(bundled.folder / "weights.pt"), "--recipe", "fire-smoke",
         "--version", "9.9.9", "--home", str(home), "--models", str(models), "--datasets", str(datasets)],
        capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return home / "models" / "fire-smoke" / "9.9.9", models


def fire_smoke():
    """The bundled fire-smoke pack (retired in favour of the site pack, kept for its weights), at float32."""
    return bundled_registry().active("fire-smoke").load(Precision.FLOAT32)


def test_build_pack_writes_both_precisions_and_a_card_into_the_home(built):
    folder, models = built
    for name in ("model.onnx", "model-int8.onnx", "weights.pt", "card.json", "README.md"):
        assert (folder / name).is_file(), name
    assert list(models.iterdir()) == []  # nothing in the bundled folder
    assert (folder.parent / "ACTIVE").read_text().strip() == "9.9.9"  # first version of the pack
    card = ModelCard.read(folder / "card.json")
    assert card.classes == ("fire", "smoke")
    assert card.data_sources[0].licence == "CC BY 4.0"
    assert card.speed is not None and set(card.speed.images_per_second) == {"float32", "int8"}
    assert card.evaluation_sets[0].split_id
    assert card.file_sha256 == hash_files(folder, card) and len(card.file_sha256) == 3  # checked on every load
    assert card.plots["fire-smoke"] == Plots(confusion="plots/fire-smoke-confusion.png", pr="plots/fire-smoke-pr.png")
    for relative in (card.plots["fire-smoke"].confusion, card.plots["fire-smoke"].pr):
        assert (folder / relative).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"({relative})" in (folder / "README.md").read_text()


def test_build_pack_metrics_equal_a_fresh_evaluation_and_int8_serves_only_when_close(built):
    folder, _ = built
    metrics = ModelCard.read(folder / "card.json").metrics
    assert metrics is not None
    ours = metrics.datasets["fire-smoke"].map50
    fresh = evaluate_dataset(fire_smoke(), DATASETS / "fire-smoke" / "data.yaml", drop=["default"])
    assert abs(ours - fresh.map50) <= 0.01  # the same weights, scored through the same runtime
    # int8 is the default precision only where it keeps within 1.5 points (on this onnxruntime, fire-smoke's
    # int8 model loses 0.11, so float32 serves)
    int8 = metrics.int8["fire-smoke"].map50
    expected = Precision.INT8 if int8 >= ours - 0.015 else Precision.FLOAT32
    assert ModelCard.read(folder / "card.json").default_precision == expected


def test_build_pack_refuses_to_overwrite_a_version(built, datasets):
    folder, models = built
    done = subprocess.run(
        [str(SCRIPT), "models", "build", "--weights", str(folder / "weights.pt"), "--recipe", "fire-smoke",
         "--version", "9.9.9", "--home", str(folder.parents[2]), "--models", str(models), "--datasets",
         str(datasets)], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 2 and "versions are never overwritten" in done.stderr


def test_card_page_shows_both_precisions_per_class_and_how_to_reproduce():
    card = fire_smoke().card
    page = card_markdown(card)
    assert card.metrics is not None and card.training is not None
    smoke = card.metrics.int8["fire-smoke"].per_class["smoke"].map50
    assert "| class | boxes | mAP50 | mAP50-95 | precision | recall | int8 mAP50 |" in page
    assert any(line.startswith("| smoke |") and line.endswith(f"| {smoke:.3f} |") for line in page.splitlines())
    assert f"Code version {card.code_version}" in page and "CC BY 4.0" in page
    if card.training.snapshot_id:
        assert f"hazardvision train --recipe fire-smoke --version {card.version}" in page


@pytest.mark.parametrize("card_path", sorted(Path(bundled_registry().bundled).glob("*/*/card.json")),
                         ids=lambda path: f"{path.parent.parent.name}-{path.parent.name}")
def test_card_page_of_each_bundled_card_is_the_page_beside_it(card_path):
    """The page is a function of the card: every bundled page is what card_markdown makes of its card."""
    if card_path.parent.name == "0.2.0" and card_path.parent.parent.name == "ppe":
        pytest.skip("ppe 0.2.0's page was written by an older card_markdown (it listed unlabelled classes)")
    assert card_markdown(ModelCard.read(card_path)) == (card_path.parent / "README.md").read_text()
def test_scratch_pack_exports_weights_at_the_serving_size(tmp_path):
    pytest.importorskip("ultralytics", reason="packaging needs the [train] extra")
    bundled = fire_smoke()
    recipe = load_recipe(recipe_path("fire-smoke"))
    pack = scratch_pack(bundled.folder / "weights.pt", recipe, tmp_path / "pack", imgsz=416)
    assert (pack.detector.info.input_height, pack.detector.info.input_width) == (416, 416)
    assert pack.card.classes == ("fire", "smoke")
