"""A recipe's own datasets as training data: imported once into the bank, then one snapshot; and
`hazardvision train` without --data, end to end on a few real photos."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from hazardvision.bank.bank import SampleBank
from hazardvision.bank.importer import import_dataset
from hazardvision.catalogue import load_catalogue
from hazardvision.datasets.classmap import build_class_map
from hazardvision.datasets.readers import Dataset, read_dataset
from hazardvision.errors import DatasetError
from hazardvision.training.data import build_training_data, bundled_mapping, import_class_map
from hazardvision.training.recipe import EvaluationSet, Recipe, load_recipe
from tests.conftest import DATASETS
from tests.training.test_trainer import SCRIPT, TINY_RECIPE

HARDHAT = {"dataset": "hardhat-head", "map": {"hard_hat": "helmet", "no_hard_hat": "no_helmet",
                                              "no_head_wear": "no_helmet"}, "drop": ["person"]}
RECIPE = TINY_RECIPE + """evaluation:
  - dataset: ppe-vest
  - dataset: hardhat-head
    map: {hard_hat: helmet, no_hard_hat: no_helmet, no_head_wear: no_helmet}
    drop: [person]
"""
PHOTOS = {"train": 6, "val": 3, "test": 2}


@pytest.fixture
def tiny_datasets(datasets, tmp_path) -> Path:
    """A datasets root holding a few real photos of each split of ppe-vest and hardhat-head."""
    root = tmp_path / "datasets"
    for name in ("ppe-vest", "hardhat-head"):
        for split, count in PHOTOS.items():
            (root / name / "images" / split).mkdir(parents=True)
            (root / name / "labels" / split).mkdir(parents=True)
            for photo in sorted((DATASETS / name / "images" / split).iterdir())[:count]:
                shutil.copy(photo, root / name / "images" / split)
                shutil.copy(DATASETS / name / "labels" / split / f"{photo.stem}.txt", root / name / "labels" / split)
        for file in ("data.yaml", "SOURCE.md"):
            shutil.copy(DATASETS / name / file, root / name)
    (tmp_path / "tiny.yaml").write_text(RECIPE)
    return root


@pytest.fixture
def recipe(tiny_datasets) -> Recipe:
    return load_recipe(tiny_datasets.parent / "tiny.yaml")


def test_build_training_data_snapshots_the_recipe_datasets_with_their_own_splits(tiny_datasets, recipe, tmp_path):
    built = build_training_data(recipe, SampleBank(tmp_path / "home"), tiny_datasets)
    assert [r.imported for r in built.imports] == [11, 11] and not built.warnings
    assert built.manifest.classes == recipe.classes
    assert {split: c.images for split, c in built.manifest.counts.items()} == {"train": 12, "val": 6, "test": 4}
    assert built.data_yaml.is_file() and built.manifest.counts["train"].boxes["no_helmet"] > 0


def test_build_training_data_again_adds_nothing_and_gives_the_same_snapshot(tiny_datasets, recipe, tmp_path):
    bank = SampleBank(tmp_path / "home")
    first = build_training_data(recipe, bank, tiny_datasets)
    again = build_training_data(recipe, bank, tiny_datasets)
    assert [(r.imported, r.already_in_bank) for r in again.imports] == [(0, 11), (0, 11)]
    assert again.manifest.id == first.manifest.id and bank.stats().cases == 22


@pytest.mark.parametrize("person", ["kept", "dropped"])
def test_build_training_data_snapshot_does_not_depend_on_an_earlier_import(tiny_datasets, recipe, tmp_path, person):
    fresh = build_training_data(recipe, SampleBank(tmp_path / "fresh"), tiny_datasets).manifest.id
    bank = SampleBank(tmp_path / "home")
    dataset = read_dataset(tiny_datasets / "hardhat-head")
    import_dataset(bank, dataset, build_class_map(dataset.classes, load_catalogue(), HARDHAT["map"],
                                                  ["person"] if person == "dropped" else []))
    built = build_training_data(recipe, bank, tiny_datasets)
    assert built.imports[1].already_in_bank == 11 and built.manifest.id == fresh


def test_build_training_data_keeps_person_boxes_in_the_bank_but_not_in_the_snapshot(tiny_datasets, recipe,
                                                                                      tmp_path):
    bank = SampleBank(tmp_path / "home")
    built = build_training_data(recipe, bank, tiny_datasets)
    assert bank.cases(source="hardhat-head", class_name="person")
    rows = [(folder.parent.parent.name, line.split()[0]) for folder in tiny_datasets.glob("*/labels/*")
            for label in folder.iterdir() for line in label.read_text().splitlines() if line.strip()]
    not_person = sum(not (name == "hardhat-head" and index == "3") for name, index in rows)
    assert sum(sum(c.boxes.values()) for c in built.manifest.counts.values()) == not_person < len(rows)


@pytest.mark.parametrize(
    ("classes", "spec", "expected"),
    [(("hard_hat", "no_hard_hat", "no_head_wear", "person"), HARDHAT,
      {"hard_hat": "helmet", "no_hard_hat": "no_helmet", "no_head_wear": "no_helmet", "person": "person"}),
     (("fire", "default", "smoke"), {"dataset": "fire-smoke", "drop": ["default"]},
      {"fire": "fire", "default": None, "smoke": "smoke"}),
     (("helmet", "vest"), {"dataset": "x", "drop": ["vest"]}, {"helmet": "helmet", "vest": None})],
    ids=["catalogue-class-kept", "unknown-class-dropped", "trained-class-dropped"],
)
def test_import_class_map_drops_only_unknown_or_trained_classes(recipe, classes, spec, expected):
    dataset = Dataset("x", Path("."), classes, [])
    assert import_class_map(EvaluationSet.model_validate(spec), dataset, load_catalogue(), recipe).targets == expected


def test_build_training_data_names_the_missing_dataset_folders(tiny_datasets, recipe, tmp_path):
    shutil.rmtree(tiny_datasets / "hardhat-head")
    with pytest.raises(DatasetError, match=r"\['hardhat-head'\].*--datasets"):
        build_training_data(recipe, SampleBank(tmp_path / "home"), tiny_datasets)


def test_train_without_data_reports_a_missing_datasets_root(tiny_datasets, tmp_path):
    done = subprocess.run([str(SCRIPT), "train", "--recipe", str(tmp_path / "tiny.yaml"), "--home",
                           str(tmp_path / "home"), "--datasets", str(tmp_path / "nowhere")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "does not exist" in done.stderr and "--datasets" in done.stderr


def test_train_without_data_builds_the_snapshot_trains_and_resumes(tiny_datasets, tmp_path):
    pytest.importorskip("ultralytics", reason="training needs the [train] extra")
    home = tmp_path / "home"
    command = [str(SCRIPT), "train", "--recipe", str(tmp_path / "tiny.yaml"), "--home", str(home),
               "--datasets", str(tiny_datasets), "--epochs", "1", "--imgsz", "64"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    snapshot = next(line.split()[1] for line in done.stdout.splitlines() if line.startswith("snapshot "))
    assert (home / "snapshots" / snapshot / "manifest.json").is_file()
    assert "finished 1 epochs" in done.stdout
    assert len(list(home.glob("runs/tiny-*/weights/best.pt"))) == 1

    again = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"snapshot {snapshot}" in again.stdout and "0 imported, 11 already in the bank" in again.stdout
    assert "finished 1 epochs" in again.stdout and len(list(home.glob("runs/tiny-*"))) == 1


def test_bundled_mapping_reads_the_recipes_and_keeps_catalogue_classes():
    assert bundled_mapping("hardhat-head") == (
        {"hard_hat": "helmet", "no_hard_hat": "no_helmet", "no_head_wear": "no_helmet"}, [])  # person is kept
    assert bundled_mapping("fire-smoke") == ({}, ["default"])
    assert bundled_mapping("forklift-person") == ({}, [])


def test_build_training_data_scopes_each_dataset_to_the_classes_it_labels(tiny_datasets, tmp_path):
    recipe = load_recipe(tiny_datasets.parent / "tiny.yaml").with_overrides(
        classes=["helmet", "vest", "no_helmet", "no_vest", "person", "fire"],
        evaluation=[{"dataset": "ppe-vest", "absent": ["fire"]},
                    {"dataset": "hardhat-head", "map": HARDHAT["map"], "absent": ["fire"]}])
    built = build_training_data(recipe, SampleBank(tmp_path / "home"), tiny_datasets)
    assert built.scope is not None
    assert built.scope.describe() == {"hardhat-head": ["helmet", "no_helmet", "person", "fire"],
                                      "ppe-vest": ["helmet", "vest", "no_helmet", "no_vest", "fire"]}
    ppe_photo = next(f.sha256 for f in built.manifest.files if f.source == "ppe-vest")
    assert built.scope.mask(ppe_photo) == [1.0, 1.0, 1.0, 1.0, 0.0, 1.0]  # people in ppe-vest are unlabelled
    naive = build_training_data(recipe.with_overrides(partial_labels="naive"), SampleBank(tmp_path / "home"),
                                tiny_datasets)
    assert naive.scope is None and naive.manifest.id == built.manifest.id


def test_build_training_data_leaves_held_out_datasets_out_of_the_snapshot(tiny_datasets, tmp_path):
    recipe = load_recipe(tiny_datasets.parent / "tiny.yaml").with_overrides(
        evaluation=[{"dataset": "ppe-vest"}, {**HARDHAT, "train": False}])
    built = build_training_data(recipe, SampleBank(tmp_path / "home"), tiny_datasets)
    assert {f.source for f in built.manifest.files} == {"ppe-vest"}


def test_recipe_refuses_absent_or_exclusive_classes_it_does_not_train(tiny_datasets):
    from hazardvision.training.recipe import RecipeError

    recipe = load_recipe(tiny_datasets.parent / "tiny.yaml")
    with pytest.raises(RecipeError, match=r"absent of ppe-vest names \['smoke'\]"):
        recipe.with_overrides(evaluation=[{"dataset": "ppe-vest", "absent": ["smoke"]}])
    with pytest.raises(RecipeError, match="exclusive_classes"):
        recipe.with_overrides(exclusive_classes=[["helmet", "hat"]])
