"""`hazardvision train` on a few real photos: a tiny run, interrupted after its first epoch, resumes."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hazardvision.training.recipe import RecipeError, load_recipe, recipe_path
from hazardvision.training.trainer import epochs_logged
from tests.conftest import DATASETS, test_photos

SCRIPT = Path(sys.executable).with_name("hazardvision")
TINY_RECIPE = """
pack: tiny
classes: [helmet, vest, no_helmet, no_vest]
architecture: yolo26n.yaml
imgsz: 96
epochs: 5
batch: 4
workers: 0
cache: false
augmentation: {mosaic: 0.0, close_mosaic: 0}
"""


@pytest.fixture
def tiny_data(datasets, tmp_path) -> Path:
    """Twelve real ppe-vest photos with their labels, as train and val."""
    root = tmp_path / "tiny"
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for photo in test_photos("ppe-vest")[:12]:
            shutil.copy(photo, root / "images" / split / photo.name)
            shutil.copy(DATASETS / "ppe-vest" / "labels" / "test" / f"{photo.stem}.txt", root / "labels" / split)
    (root / "data.yaml").write_text(f"path: {root}\ntrain: images/train\nval: images/val\n"
                                    "names: [helmet, vest, no_helmet, no_vest]\n")
    (tmp_path / "tiny.yaml").write_text(TINY_RECIPE)
    return root


def test_train_interrupted_after_first_epoch_resumes_to_the_end(tiny_data, tmp_path):
    pytest.importorskip("ultralytics", reason="training needs the [train] extra")
    run = tmp_path / "run"
    command = [str(SCRIPT), "train", "--recipe", str(tmp_path / "tiny.yaml"), "--data", str(tiny_data),
               "--run-dir", str(run)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    # best.pt is written right after last.pt at the end of an epoch, so once it exists the
    # checkpoint is complete and the kill lands in a later epoch.
    best = run / "weights" / "best.pt"
    while not best.is_file() and process.poll() is None:
        assert time.monotonic() < deadline, "the first epoch never finished"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert 1 <= epochs_logged(run) < 5, "the kill must land after epoch 1 and before the end"

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed and finished 5 epochs" in resumed.stdout
    assert epochs_logged(run) == 5 and (run / "weights" / "best.pt").is_file()

    again = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert again.returncode == 0 and "finished 5 epochs" in again.stdout  # a finished run is not retrained


def test_train_refuses_data_whose_classes_differ_from_the_recipe(tiny_data, tmp_path):
    (tmp_path / "fire.yaml").write_text(TINY_RECIPE.replace("[helmet, vest, no_helmet, no_vest]", "[fire, smoke]"))
    done = subprocess.run([str(SCRIPT), "train", "--recipe", str(tmp_path / "fire.yaml"), "--data", str(tiny_data),
                           "--run-dir", str(tmp_path / "run")], capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "make the snapshot with --classes fire,smoke" in done.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [("pack: x\nclasses: [a]\narchitecture: yolo26n.pt\n", "architecture"),
     ("pack: x\nclasses: [a]\narchitecture: yolo26n.yaml\nlearning_rate: 3\n", "learning_rate"),
     ("pack: [", "not valid YAML")],
)
def test_load_recipe_rejects_bad_recipes(tmp_path, text, message):
    (tmp_path / "r.yaml").write_text(text)
    with pytest.raises(RecipeError, match=message):
        load_recipe(tmp_path / "r.yaml")


def test_bundled_recipes_are_valid():
    for path in sorted((Path(__file__).resolve().parents[2] / "training" / "recipes").glob("*.yaml")):
        recipe = load_recipe(path)
        assert recipe.pack == path.stem and recipe.architecture.endswith(".yaml")
    for path in sorted((Path(__file__).resolve().parents[2] / "training" / "experiments").glob("*.yaml")):
        assert load_recipe(path).evaluation  # an experiment is scored on test splits too


def test_serving_size_is_packaging_only_and_does_not_change_the_run():
    recipe = load_recipe(recipe_path("ppe"))
    assert recipe.with_overrides(serve_imgsz=416).run_key() == recipe.run_key()
    assert recipe.with_overrides(epochs=recipe.epochs + 1).run_key() != recipe.run_key()
    with pytest.raises(RecipeError, match="serve_imgsz"):
        recipe.with_overrides(serve_imgsz=0)


def test_class_repeats_list_each_photo_as_often_as_its_rarest_class_asks(tmp_path):
    from hazardvision.training.trainer import _repeated

    snapshot = tmp_path / "snapshot"
    for split in ("images/train", "labels/train", "images/val"):
        (snapshot / split).mkdir(parents=True)
    rows = {"fire": "6 0.5 0.5 0.1 0.1\n", "helmet": "0 0.5 0.5 0.1 0.1\n",
            "both": "0 0.1 0.1 0.1 0.1\n6 0.5 0.5 0.1 0.1\n", "background": ""}
    for stem, label in rows.items():
        (snapshot / "images" / "train" / f"{stem}.jpg").write_bytes(b"jpeg")
        (snapshot / "labels" / "train" / f"{stem}.txt").write_text(label)
    data = snapshot / "data.yaml"
    data.write_text(f"path: {snapshot}\ntrain: images/train\nval: images/val\nnames: {CLASSES!r}\n")
    recipe = load_recipe(recipe_path("site")).with_overrides(repeat={"fire": 3})
    run = tmp_path / "run"
    run.mkdir()
    messages: list[str] = []
    repeated = _repeated(data, recipe, run, messages.append)
    listed = [Path(line).stem for line in (run / "train.txt").read_text().splitlines()]
    assert sorted(listed) == sorted(["fire"] * 3 + ["both"] * 3 + ["helmet", "background"])
    assert messages == ["class repeats {'fire': 3}: 8 training photos per epoch (4 repeats of 4)"]
    spec = repeated.read_text()
    assert "train.txt" in spec and "images/val" in spec  # val is never repeated


CLASSES = ["helmet", "no_helmet", "vest", "no_vest", "person", "forklift", "fire", "smoke"]
