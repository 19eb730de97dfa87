"""The promotion gate: a worse candidate is refused; what it lets through is written to the home."""

from __future__ import annotations

import pytest

from hazardvision.errors import PromotionRefused, UnknownModel
from hazardvision.packs.card import CARD_FILE, EvaluatedSet, ModelCard
from hazardvision.packs.integrity import hash_files
from hazardvision.packs.promotion import promote, promote_replacing, split_id
from hazardvision.packs.registry import ACTIVE_FILE, PackRegistry
from tests.conftest import DATASETS, bundled_packs
from tests.packs.test_integrity import zeroed_model
from tests.packs.test_registry import add_version, fingerprint, source_card


def scored(map50: float, split: str = "abc") -> dict[str, object]:
    """Card changes: fire-smoke's test split `split` scored at `map50`."""
    card = source_card()
    assert card.metrics is not None
    datasets = {"fire-smoke": card.metrics.datasets["fire-smoke"].model_copy(update={"map50": map50})}
    return {"evaluation_sets": (EvaluatedSet(dataset="fire-smoke", drop=["default"], split_id=split),),
            "metrics": card.metrics.model_copy(update={"datasets": datasets})}


@pytest.fixture
def registry(tmp_path) -> PackRegistry:
    """Bundled: fire-smoke v1 (active, mAP50 0.50 on split abc). Home: v2, whose scores each test sets."""
    bundled, home = tmp_path / "bundled", tmp_path / "home" / "models"
    add_version(bundled, "fire-smoke", "v1", **scored(0.50))
    (bundled / "fire-smoke" / ACTIVE_FILE).write_text("v1\n")
    add_version(home, "fire-smoke", "v2", **scored(0.50))
    return PackRegistry(bundled, home)


def set_score(registry: PackRegistry, version: str, map50: float, split: str = "abc") -> None:
    path = registry.version("fire-smoke", version).folder / CARD_FILE
    ModelCard.read(path).model_copy(update=scored(map50, split)).write(path)


def test_promote_never_trusts_the_figures_of_a_card(registry, tmp_path):
    set_score(registry, "v2", 0.9)  # the card claims better; nothing is there to score both on
    with pytest.raises(PromotionRefused, match="cannot be scored against the active v1"):
        promote(registry, "fire-smoke", "v2", datasets=tmp_path / "none")
    assert registry.active("fire-smoke").version == "v1"


def test_promote_scores_both_afresh_and_writes_the_home(registry, datasets):
    before = fingerprint(registry.bundled)
    set_score(registry, "v2", 0.1, split=split_id(datasets / "fire-smoke" / "data.yaml", "test"))  # card ignored
    comparisons = promote(registry, "fire-smoke", "v2", datasets=datasets)
    assert registry.active("fire-smoke").version == "v2"
    assert [(c.dataset, c.source, c.delta) for c in comparisons] == [("fire-smoke", "datasets", 0.0)]  # same model
    assert (registry.home / "fire-smoke" / ACTIVE_FILE).read_text() == "v2\n"
    assert fingerprint(registry.bundled) == before


def test_promote_with_nothing_to_score_on_refuses_unless_forced(registry, tmp_path):
    with pytest.raises(PromotionRefused, match="the gate does not trust the figures in a card"):
        promote(registry, "fire-smoke", "v2", datasets=tmp_path / "none")
    promote(registry, "fire-smoke", "v2", force=True)
    assert registry.active("fire-smoke").version == "v2"


def test_split_id_changes_with_the_split_content(datasets):
    first = split_id(DATASETS / "fire-smoke" / "data.yaml", "test")
    assert first == split_id(DATASETS / "fire-smoke" / "data.yaml", "test")
    assert first != split_id(DATASETS / "fire-smoke" / "data.yaml", "val")


def test_bundled_cards_record_split_ids_of_the_shared_test_splits(datasets):
    for pack in bundled_packs():
        for spec in pack.card.evaluation_sets:
            assert spec.split_id == split_id(DATASETS / spec.dataset / "data.yaml", spec.split)


@pytest.fixture
def replacing(tmp_path) -> PackRegistry:
    """Bundled: fire-smoke active and ppe. Home: two candidates of a staged pack `merged` (no numbers to read):
    `same` (fire-smoke's model) and `worse` (its weights zeroed; not its int8 model, which on a CPU with VNNI
    scores as well as the float one)."""
    bundled, home = tmp_path / "bundled", tmp_path / "home" / "models"
    add_version(bundled, "fire-smoke", "0.2.1")
    (bundled / "fire-smoke" / ACTIVE_FILE).write_text("0.2.1\n")
    add_version(bundled, "ppe", "0.2.1", classes=("helmet", "no_helmet"))
    add_version(home, "merged", "same", metrics=None)
    worse = add_version(home, "merged", "worse", metrics=None)
    model = worse / "model.onnx"
    source = model.resolve()
    model.unlink()  # a link to fire-smoke's file: the zeroed copy takes its place
    zeroed_model(model, source=source)
    card = ModelCard.read(worse / CARD_FILE)
    card.model_copy(update={"file_sha256": hash_files(worse, card)}).write(worse / CARD_FILE)
    registry = PackRegistry(bundled, home)
    registry.stage("merged")
    return registry


def test_promote_replacing_scores_both_afresh_and_retires_the_replaced_pack(replacing, datasets):
    before = fingerprint(replacing.bundled)
    assert [v.pack for v in replacing.serving()] == ["fire-smoke", "ppe"]  # a staged pack does not serve
    with pytest.raises(PromotionRefused, match="worse than the packs it would replace"):
        promote_replacing(replacing, "merged", "worse", ["fire-smoke"], datasets, tolerance=0.0)
    assert [v.pack for v in replacing.serving()] == ["fire-smoke", "ppe"]
    rows = promote_replacing(replacing, "merged", "same", ["fire-smoke"], datasets)
    assert {(r.dataset, r.class_name) for r in rows} == {("fire-smoke", "fire"), ("fire-smoke", "smoke")}
    assert all(r.delta == 0 for r in rows)
    assert [v.pack for v in replacing.serving()] == ["merged", "ppe"]
    assert replacing.replaced_by("fire-smoke") == "merged same"
    assert fingerprint(replacing.bundled) == before  # retired in the home, not in the release


def test_promote_replacing_refuses_a_pack_without_the_replaced_classes(replacing, datasets):
    with pytest.raises(PromotionRefused, match=r"lacks the classes \['helmet'"):
        promote_replacing(replacing, "merged", "same", ["ppe"], datasets)


def test_promote_of_a_staged_pack_needs_replaces_or_force(replacing):
    with pytest.raises(PromotionRefused, match="--replaces"):
        promote(replacing, "merged", "same")
    promote(replacing, "merged", "same", force=True)
    assert replacing.active("merged").version == "same"


def test_promote_unknown_version_names_the_versions(registry):
    with pytest.raises(UnknownModel, match=r"versions: \['v1', 'v2'\]"):
        promote(registry, "fire-smoke", "v9")
