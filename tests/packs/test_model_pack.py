from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from hazardvision.errors import InvalidModel, UnknownModel
from hazardvision.packs.model_pack import load_pack
from hazardvision.packs.registry import resolve_model
from tests.conftest import bundled_packs, bundled_registry


@pytest.fixture(scope="module")
def bundled() -> Path:
    """The first bundled pack's active version folder."""
    registry = bundled_registry()
    return registry.active(registry.packs()[0]).folder


def copy_pack(source: Path, root: Path, version: str = "v1") -> Path:
    target = root / "mypack" / version
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.pt"))
    card = json.loads((target / "card.json").read_text())
    card.update(pack="mypack", version=version)
    (target / "card.json").write_text(json.dumps(card))
    return target


def test_active_packs_loads_every_bundled_pack():
    packs = bundled_packs()
    assert {p.name for p in packs} >= {"site"} and not {p.name for p in packs} & {"ppe", "fire-smoke"}  # retired
    for pack in packs:
        assert pack.detector.class_names and len(pack.card.classes) == len(pack.detector.class_names)
        assert pack.card.data_sources, f"{pack.name} must credit its training data"


@pytest.mark.parametrize(
    ("card", "error", "message"),
    [
        ("{not json", InvalidModel, "card .* is invalid"),
        ('{"pack": "x"}', InvalidModel, "card .* is invalid"),
    ],
)
def test_load_pack_bad_card(tmp_path, card, error, message):
    (tmp_path / "card.json").write_text(card)
    with pytest.raises(error, match=message):
        load_pack(tmp_path)


def test_load_pack_missing_folder(tmp_path):
    with pytest.raises(UnknownModel, match="no model pack"):
        load_pack(tmp_path / "nothing")


def test_model_pack_card_class_count_must_match_the_model(bundled, tmp_path):
    target = copy_pack(bundled, tmp_path)
    card = json.loads((target / "card.json").read_text())
    card["classes"] = [*card["classes"], "extra"]
    (target / "card.json").write_text(json.dumps(card))
    with pytest.raises(InvalidModel, match="classes but its card lists"):
        _ = load_pack(target).detector


def test_resolve_model_accepts_onnx_file_pack_and_version_folders(bundled):
    by_file = resolve_model(bundled / "model.onnx")
    assert by_file.card.classes == by_file.detector.class_names
    assert resolve_model(bundled).version == resolve_model(bundled.parent).version


def test_resolve_model_unknown_path(tmp_path):
    with pytest.raises(UnknownModel, match="no such ONNX file"):
        resolve_model(tmp_path / "missing")


def with_card(source: Path, root: Path, **changes) -> Path:
    target = copy_pack(source, root)
    card = json.loads((target / "card.json").read_text())
    card.update(changes)
    (target / "card.json").write_text(json.dumps(card))
    return target


def test_model_pack_reports_each_class_at_its_own_threshold(bundled, tmp_path, real_photo):
    from hazardvision.images import load_image

    pixels = load_image(real_photo).pixels
    low = load_pack(with_card(bundled, tmp_path / "a", operating_confidence=0.05)).detect([pixels])[0]
    classes = load_pack(bundled).card.classes
    thresholds = {name: (0.9 if i % 2 else 0.05) for i, name in enumerate(classes)}
    pack = load_pack(with_card(bundled, tmp_path / "b", class_thresholds=thresholds, operating_confidence=0.05))
    found = pack.detect([pixels])[0]
    assert len(found) < len(low)
    for name, score, tag in zip(found.class_name, found.confidence, found.data["threshold"], strict=True):
        assert score >= thresholds[str(name)] and tag == pytest.approx(thresholds[str(name)])
    weak = pack.detect([pixels], weak=0.05)[0]
    assert len(weak) >= len(found)
    assert {round(t, 4) for t in weak.data["threshold"].tolist()} <= set(thresholds.values())


def test_model_pack_keeps_one_box_per_object(bundled, tmp_path, real_photo):
    from hazardvision.boxes import box_iou
    from hazardvision.images import load_image

    classes = load_pack(bundled).card.classes
    pack = load_pack(with_card(bundled, tmp_path, operating_confidence=0.01, exclusive_classes=[list(classes)]))
    found = pack.detect([load_image(real_photo).pixels])[0]
    iou = box_iou(found.xyxy, found.xyxy)
    np.fill_diagonal(iou, 0)
    assert len(found) and iou.max() <= 0.5


def test_bundled_packs_credit_their_data_and_starting_weights_and_carry_thresholds():
    for pack in bundled_packs():
        card = pack.card
        assert card.data_sources and all("CC BY 4.0" in s.licence for s in card.data_sources)
        start = card.training.pretrained if card.training else None
        if start:  # a pack fine-tuned from pretrained weights names them, their hash and their licence
            assert len(start.sha256) == 64 and "AGPL-3.0" in start.credit and "CC BY 4.0" in start.credit
            assert start.weights in (pack.folder / "README.md").read_text()
        if card.threshold_selection:
            assert set(card.class_thresholds) <= set(card.classes)
            assert card.threshold_selection.split == "val"


def test_load_pack_opens_its_sessions_with_the_threads_asked_for(bundled):
    pack = load_pack(bundled, threads=1)
    assert pack.detector.session.get_session_options().intra_op_num_threads == 1
    assert pack.feature_detector.session.get_session_options().intra_op_num_threads == 1
    assert load_pack(bundled).detector.session.get_session_options().intra_op_num_threads == 0  # every core
