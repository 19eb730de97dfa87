"""The typed model card: every bundled card reads and writes back unchanged; a bad card says where it is bad."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hazardvision.errors import InvalidModel, UnknownModel
from hazardvision.packs.card import ModelCard, Precision
from hazardvision.packs.registry import default_models_dir

BUNDLED_CARDS = sorted(default_models_dir().glob("*/*/card.json"))


def card_id(path: Path) -> str:
    return f"{path.parent.parent.name}-{path.parent.name}"


def test_card_bundled_cards_are_all_found():
    assert {card_id(p) for p in BUNDLED_CARDS} >= {"ppe-0.2.0", "ppe-0.2.1", "fire-smoke-0.2.0", "fire-smoke-0.2.1",
                                                   "site-0.4.0"}


@pytest.mark.parametrize("path", BUNDLED_CARDS, ids=card_id)
def test_card_round_trip_of_a_bundled_card_loses_nothing(path, tmp_path):
    written = json.loads(path.read_text(encoding="utf-8"))
    card = ModelCard.read(path)
    assert card.to_json() == written
    card.write(tmp_path / "card.json")
    assert json.loads((tmp_path / "card.json").read_text(encoding="utf-8")) == written
    assert ModelCard.read(tmp_path / "card.json") == card


@pytest.mark.parametrize("path", BUNDLED_CARDS, ids=card_id)
def test_card_sections_of_a_bundled_card_are_typed(path):
    card = ModelCard.read(path)
    assert card.metrics is not None and card.training is not None and card.speed is not None
    for precision in (card.metrics.datasets, card.metrics.int8):
        for evaluation in precision.values():
            assert set(evaluation.per_class) == set(card.classes)
    assert {s.dataset for s in card.evaluation_sets} == set(card.metrics.datasets) == set(card.plots)
    assert all(s.split_id for s in card.evaluation_sets)
    assert card.default_precision in tuple(Precision)


def test_card_built_in_code_writes_only_what_it_was_given(tmp_path):
    card = ModelCard(pack="ladders", version="1.0.0", architecture="yolo26n", classes=("ladder",))
    card.write(tmp_path / "card.json")
    assert json.loads((tmp_path / "card.json").read_text()) == {
        "pack": "ladders", "version": "1.0.0", "architecture": "yolo26n", "classes": ["ladder"]}
    assert ModelCard.read(tmp_path / "card.json").threshold("ladder") == 0.25


def bad(tmp_path: Path, change: dict[str, object]) -> Path:
    card = json.loads(BUNDLED_CARDS[0].read_text()) | change
    (tmp_path / "card.json").write_text(json.dumps(card))
    return tmp_path / "card.json"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"operating_confidence": 2.0}, "operating_confidence"),
        ({"colour": "red"}, "colour: Extra inputs are not permitted"),
        ({"speed": {"images_per_second": {"float32": "fast"}}}, "speed.images_per_second.float32"),
        ({"metrics": {"datasets": {"fire-smoke": {"map50": 0.5}}}}, "metrics.datasets.fire-smoke.images"),
        ({"training": {"pretrained": {"weights": "x.pt"}}}, "training.pretrained.sha256"),
    ],
)
def test_card_read_of_a_bad_card_names_the_file_and_the_field(tmp_path, change, field):
    path = bad(tmp_path, change)
    with pytest.raises(InvalidModel) as error:
        ModelCard.read(path)
    assert str(path) in str(error.value) and field in str(error.value)


def test_card_read_of_broken_json_or_a_missing_file(tmp_path):
    (tmp_path / "card.json").write_text("{not json")
    with pytest.raises(InvalidModel, match=r"card\.json is invalid: not JSON"):
        ModelCard.read(tmp_path / "card.json")
    with pytest.raises(UnknownModel, match="no model pack at"):
        ModelCard.read(tmp_path / "missing" / "card.json")
