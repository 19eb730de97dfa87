"""Packaging real trained weights: ONNX float32 and int8, metrics through our runtime, speed, card."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hazardvision.packs.evaluation import evaluate_dataset
from hazardvision.packs.model_pack import Precision, active_version, default_models_dir, load_pack
from hazardvision.training.packaging import card_markdown, scratch_pack
from hazardvision.training.recipe import load_recipe, recipe_path
from tests.conftest import DATASETS

SCRIPT = Path(sys.executable).with_name("hazardvision")


@pytest.fixture(scope="module")
def built(datasets, tmp_path_factory) -> tuple[Path, dict]:
    pytest.importorskip("ultralytics", reason="packaging needs the [train] extra")
    bundled = fire_smoke()
    models = tmp_path_factory.mktemp("models")
    done = subprocess.run(
        [str(SCRIPT), "models", "build", "--weights", str(bundled.folder / "weights.pt"), "--recipe", "fire-smoke",
         "--version", "9.9.9", "--models", str(models), "--datasets", str(datasets)],
        capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    folder = models / "fire-smoke" / "9.9.9"
    return folder, json.loads((bundled.folder / "card.json").read_text())


def fire_smoke():
    """The bundled fire-smoke pack (retired in favour of the site pack, kept for its weights), at float32."""
    return load_pack(active_version(default_models_dir() / "fire-smoke"), Precision.FLOAT32)


def test_build_pack_writes_both_precisions_and_a_card(built):
    folder, _ = built
    for name in ("model.onnx", "model-int8.onnx", "weights.pt", "card.json", "README.md"):
        assert (folder / name).is_file(), name
    assert (folder.parent / "ACTIVE").read_text().strip() == "9.9.9"  # first version of the pack
    pack = load_pack(folder)
    assert pack.card.classes == ("fire", "smoke")
    card = json.loads((folder / "card.json").read_text())
    assert card["data_sources"][0]["licence"] == "CC BY 4.0"
    assert set(card["speed"]["images_per_second"]) == {"float32", "int8"}
    assert card["evaluation_sets"][0]["split_id"]
    assert card["plots"]["fire-smoke"] == {"confusion": "plots/fire-smoke-confusion.png",
                                           "pr": "plots/fire-smoke-pr.png"}
    for relative in card["plots"]["fire-smoke"].values():
        assert (folder / relative).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"({relative})" in (folder / "README.md").read_text()


def test_build_pack_metrics_equal_a_fresh_evaluation_and_int8_serves_only_when_close(built):
    folder, _ = built
    card = json.loads((folder / "card.json").read_text())
    ours = card["metrics"]["datasets"]["fire-smoke"]["map50"]
    fresh = evaluate_dataset(fire_smoke(), DATASETS / "fire-smoke" / "data.yaml", drop=["default"])
    assert abs(ours - fresh.map50) <= 0.01  # the same weights, scored through the same runtime
    # int8 is the default precision only where it keeps within 1.5 points (on this onnxruntime, fire-smoke's
    # int8 model loses 0.11, so float32 serves)
    int8 = card["metrics"]["int8"]["fire-smoke"]["map50"]
    assert card["default_precision"] == ("int8" if int8 >= ours - 0.015 else "float32")


def test_build_pack_refuses_to_overwrite_a_version(built, datasets):
    folder, _ = built
    done = subprocess.run(
        [str(SCRIPT), "models", "build", "--weights", str(folder / "weights.pt"), "--recipe", "fire-smoke",
         "--version", "9.9.9", "--models", str(folder.parent.parent), "--datasets", str(datasets)],
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 2 and "versions are never overwritten" in done.stderr


def test_card_page_shows_both_precisions_per_class_and_how_to_reproduce():
    bundled = fire_smoke()
    card = json.loads((bundled.folder / "card.json").read_text())
    page = card_markdown(card)
    smoke = card["metrics"]["int8"]["fire-smoke"]["per_class"]["smoke"]["map50"]
    assert "| class | boxes | mAP50 | mAP50-95 | precision | recall | int8 mAP50 |" in page
    assert any(line.startswith("| smoke |") and line.endswith(f"| {smoke:.3f} |") for line in page.splitlines())
    assert f"Code version {card['code_version']}" in page and "CC BY 4.0" in page
    if card["training"].get("snapshot_id"):
        assert f"hazardvision train --recipe fire-smoke --version {card['version']}" in page


def test_scratch_pack_exports_weights_at_the_serving_size(tmp_path):
    pytest.importorskip("ultralytics", reason="packaging needs the [train] extra")
    bundled = fire_smoke()
    recipe = load_recipe(recipe_path("fire-smoke"))
    pack = scratch_pack(bundled.folder / "weights.pt", recipe, tmp_path / "pack", imgsz=416)
    assert (pack.detector.info.input_height, pack.detector.info.input_width) == (416, 416)
    assert pack.card.classes == ("fire", "smoke")
