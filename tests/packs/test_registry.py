from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hazardvision.errors import PromotionRefused
from hazardvision.packs.model_pack import active_packs, active_version
from hazardvision.packs.registry import promote, split_id
from tests.conftest import DATASETS


@pytest.fixture
def registry(tmp_path) -> Path:
    """A models folder with the fire-smoke pack as v1 (active) and a copy as v2 whose scores we set."""
    source = active_version(Path(active_packs()[0].folder).parent)
    for version in ("v1", "v2"):
        target = tmp_path / "fire-smoke" / version
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.pt"))
        card = json.loads((target / "card.json").read_text())
        card.update(pack="fire-smoke", version=version, evaluation_sets=[
            {"dataset": "fire-smoke", "split": "test", "split_id": "abc", "map": {}, "drop": ["default"]}])
        card["metrics"] = {"datasets": {"fire-smoke": {"map50": 0.50}}}
        (target / "card.json").write_text(json.dumps(card))
    (tmp_path / "fire-smoke" / "ACTIVE").write_text("v1\n")
    return tmp_path


def set_score(registry: Path, version: str, map50: float, split: str = "abc") -> None:
    path = registry / "fire-smoke" / version / "card.json"
    card = json.loads(path.read_text())
    card["metrics"]["datasets"]["fire-smoke"]["map50"] = map50
    card["evaluation_sets"][0]["split_id"] = split
    path.write_text(json.dumps(card))


def test_promote_refuses_a_worse_candidate(registry):
    set_score(registry, "v2", 0.45)
    with pytest.raises(PromotionRefused, match=r"mAP50 0.450 vs 0.500"):
        promote(registry, "fire-smoke", "v2")
    assert active_version(registry / "fire-smoke").name == "v1"


def test_promote_accepts_a_better_or_equal_within_tolerance(registry):
    set_score(registry, "v2", 0.495)
    comparisons = promote(registry, "fire-smoke", "v2")
    assert active_version(registry / "fire-smoke").name == "v2"
    assert comparisons[0].delta == pytest.approx(-0.005)


def test_promote_refuses_cards_without_a_shared_split_unless_forced(registry):
    set_score(registry, "v2", 0.9, split="other")
    with pytest.raises(PromotionRefused, match="share no evaluated test split"):
        promote(registry, "fire-smoke", "v2")
    promote(registry, "fire-smoke", "v2", force=True)
    assert active_version(registry / "fire-smoke").name == "v2"


def test_split_id_changes_with_the_split_content(datasets, tmp_path):
    first = split_id(DATASETS / "fire-smoke" / "data.yaml", "test")
    assert first == split_id(DATASETS / "fire-smoke" / "data.yaml", "test")
    assert first != split_id(DATASETS / "fire-smoke" / "data.yaml", "val")


def test_bundled_cards_record_split_ids_of_the_shared_test_splits(datasets):
    for pack in active_packs():
        card = json.loads((pack.folder / "card.json").read_text())
        for spec in card["evaluation_sets"]:
            assert spec["split_id"] == split_id(DATASETS / spec["dataset"] / "data.yaml", spec["split"])


@pytest.fixture
def replacing(tmp_path) -> Path:
    """A models folder with the bundled fire-smoke 0.2.0 active and two candidates of a pack `merged`."""
    from hazardvision.packs.model_pack import default_models_dir

    source = default_models_dir() / "fire-smoke" / "0.2.0"
    shutil.copytree(source, tmp_path / "fire-smoke" / "0.2.0", ignore=shutil.ignore_patterns("*.pt"))
    (tmp_path / "fire-smoke" / "ACTIVE").write_text("0.2.0\n")
    for version, model in (("same", "model.onnx"), ("worse", "model-int8.onnx")):
        target = tmp_path / "merged" / version
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.pt"))
        card = json.loads((target / "card.json").read_text())
        card.update(pack="merged", version=version, model_file=model, metrics={"datasets": {}})  # no numbers to read
        (target / "card.json").write_text(json.dumps(card))
    (tmp_path / "merged" / "ACTIVE").write_text("")  # staged
    return tmp_path


def test_promote_replacing_scores_both_afresh_and_retires_the_replaced_pack(replacing, datasets):
    from hazardvision.packs.model_pack import serving_pack_folders
    from hazardvision.packs.registry import promote_replacing

    assert [p.name for p in serving_pack_folders(replacing)] == ["fire-smoke"]  # a staged pack does not serve
    with pytest.raises(PromotionRefused, match="worse than the packs it would replace"):
        promote_replacing(replacing, "merged", "worse", ["fire-smoke"], datasets, tolerance=0.0)
    assert [p.name for p in serving_pack_folders(replacing)] == ["fire-smoke"]
    rows = promote_replacing(replacing, "merged", "same", ["fire-smoke"], datasets)
    assert {(r.dataset, r.class_name) for r in rows} == {("fire-smoke", "fire"), ("fire-smoke", "smoke")}
    assert all(r.delta == 0 for r in rows)
    assert [p.name for p in serving_pack_folders(replacing)] == ["merged"]
    assert (replacing / "fire-smoke" / "REPLACED_BY").read_text() == "merged same\n"


def test_promote_replacing_refuses_a_pack_without_the_replaced_classes(replacing, datasets, tmp_path):
    from hazardvision.packs.model_pack import default_models_dir
    from hazardvision.packs.registry import promote_replacing

    shutil.copytree(default_models_dir() / "ppe" / "0.2.0", replacing / "ppe" / "0.2.0",
                    ignore=shutil.ignore_patterns("*.pt"))
    with pytest.raises(PromotionRefused, match=r"lacks the classes \['helmet'"):
        promote_replacing(replacing, "merged", "same", ["ppe"], datasets)


def test_promote_of_a_staged_pack_needs_replaces_or_force(replacing):
    with pytest.raises(PromotionRefused, match="--replaces"):
        promote(replacing, "merged", "same")
