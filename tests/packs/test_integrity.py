"""Model integrity: each model file's sha256 is in its card and checked on load; the gate scores a candidate afresh
(a model with zeroed weights is refused however good its card says it is) and refuses what it cannot score."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from hazardvision.errors import ModelIntegrityError, PromotionRefused
from hazardvision.packs.card import CARD_FILE, ModelCard, Precision
from hazardvision.packs.evaluation import LabelledPhoto
from hazardvision.packs.integrity import hash_files
from hazardvision.packs.model_pack import load_pack
from hazardvision.packs.promotion import promote, split_id
from hazardvision.packs.registry import ACTIVE_FILE, PackRegistry
from tests.conftest import bundled_registry

SET = "forklift-person"
"""The site card's test split the synthetic set stands in for (its classes are catalogue classes)."""


def site_source() -> Path:
    return bundled_registry().version("site", "0.4.0").folder


def copy_version(root: Path, version: str, *, pack: str = "site", model: Path | None = None,
                 card_changes: dict[str, object] | None = None, rehash: bool = True) -> Path:
    """`root/pack/version`: the bundled site 0.4.0 as another version, its files linked (`model`: another
    model.onnx, copied in); `rehash`: the card records the new file's sha256 (else the original's: a swap)."""
    source = site_source()
    folder = root / pack / version
    folder.mkdir(parents=True)
    for name in ("model.onnx", "model-int8.onnx", "weights.pt"):
        if name == "model.onnx" and model is not None:
            shutil.copyfile(model, folder / name)
        else:
            (folder / name).symlink_to(source / name)
    card = ModelCard.read(source / CARD_FILE)
    update: dict[str, object] = {"pack": pack, "version": version, "default_precision": Precision.FLOAT32,
                                 **(card_changes or {})}
    card = card.model_copy(update=update)
    if rehash:
        card = card.model_copy(update={"file_sha256": hash_files(folder, card)})
    card.write(folder / CARD_FILE)
    return folder


def zeroed_model(target: Path, source: Path | None = None) -> Path:
    """`source` (default: site 0.4.0's model.onnx) with every weight and bias zeroed (the graph still runs)."""
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    model = onnx.load(str(source or site_source() / "model.onnx"))
    for tensor in model.graph.initializer:
        values = numpy_helper.to_array(tensor)
        if values.dtype.kind == "f" and (values.ndim >= 2 or "bias" in tensor.name):
            tensor.CopyFrom(numpy_helper.from_array(np.zeros_like(values), tensor.name))
    onnx.save(model, str(target))
    return target


def synthetic_set(root: Path, photos: int = 4) -> Path:
    """`root/forklift-person`: striped-noise photos labelled with what site 0.4.0 finds in them (at 0.5 and up),
    so that a working model scores high and a broken one low, without any real photo."""
    folder = root / SET
    (folder / "images" / "test").mkdir(parents=True)
    (folder / "labels" / "test").mkdir(parents=True)
    names = ["forklift", "person"]
    (folder / "data.yaml").write_text(json.dumps({"path": ".", "test": "images/test", "train": "images/test",
                                                  "val": "images/test", "names": names}))
    rng = np.random.default_rng(0)
    images = []
    for _ in range(photos):
        image = (rng.random((320, 320, 3)) * 255).astype(np.uint8)
        image[::2] = np.clip(image[::2].astype(int) + 40, 0, 255)
        images.append(image)
    for i, (image, found) in enumerate(zip(images, load_pack(site_source()).detect(images), strict=True)):
        cv2.imwrite(str(folder / "images" / "test" / f"{i}.png"), image)
        rows = [f"{names.index(str(c))} {(x1 + x2) / 640:.6f} {(y1 + y2) / 640:.6f} {(x2 - x1) / 320:.6f} "
                f"{(y2 - y1) / 320:.6f}" for (x1, y1, x2, y2), c, p in
                zip(found.xyxy.tolist(), found.class_name, found.confidence, strict=True) if p >= 0.5 and c in names]
        (folder / "labels" / "test" / f"{i}.txt").write_text("\n".join(rows) + "\n")
    return root


def labelled_photos(root: Path) -> list[LabelledPhoto]:
    """The synthetic set as bank test-split cases would come."""
    photos = []
    for image in sorted((root / SET / "images" / "test").glob("*.png")):
        boxes = []
        for line in (root / SET / "labels" / "test" / f"{image.stem}.txt").read_text().split("\n"):
            if line.strip():
                c, x, y, w, h = line.split()
                boxes.append((["forklift", "person"][int(c)], (float(x) - float(w) / 2) * 320,
                              (float(y) - float(h) / 2) * 320, (float(x) + float(w) / 2) * 320,
                              (float(y) + float(h) / 2) * 320))
        photos.append(LabelledPhoto(image=image, source=SET, sha256=image.stem, boxes=tuple(boxes)))
    return photos


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    """A stand-in for the forklift-person test split (no real photo needed)."""
    return synthetic_set(tmp_path_factory.mktemp("datasets"))


@pytest.fixture
def registry(tmp_path) -> PackRegistry:
    """Bundled: site 0.4.0 (active). Home: 0.4.1 (the same model), zeroed (zeroed weights, the card's metrics and
    its own file's sha256), swapped (the card of 0.4.0, hashes included, beside the zeroed file)."""
    bundled, home = tmp_path / "bundled", tmp_path / "home" / "models"
    copy_version(bundled, "0.4.0")
    (bundled / "site" / ACTIVE_FILE).write_text("0.4.0\n")
    copy_version(home, "0.4.1")
    zeroed = zeroed_model(tmp_path / "zeroed.onnx")
    copy_version(home, "zeroed", model=zeroed)
    copy_version(home, "swapped", model=zeroed, rehash=False)
    return PackRegistry(bundled, home)


def test_bundled_cards_record_the_sha256_of_every_model_file():
    for pack in bundled_registry().packs():
        for version in bundled_registry().versions(pack):
            card = version.card()
            assert card.file_sha256 == hash_files(version.folder, card)
            assert set(card.file_sha256) == {"model.onnx", "model-int8.onnx", "weights.pt"}


def test_load_refuses_a_model_file_that_differs_from_its_card(registry):
    with pytest.raises(ModelIntegrityError, match=r"^model.onnx of site swapped does not match its card's sha256: "
                       "the file was changed or damaged"):
        registry.version("site", "swapped").load()
    with pytest.raises(ModelIntegrityError, match=r"model\.onnx of site swapped"):  # forced or not
        promote(registry, "site", "swapped", force=True)
    assert registry.active("site").version == "0.4.0"


def test_load_of_a_card_without_hashes_warns_unless_hashes_are_required(tmp_path, caplog, monkeypatch):
    folder = copy_version(tmp_path, "old")
    card = json.loads((folder / CARD_FILE).read_text())
    del card["file_sha256"]
    (folder / CARD_FILE).write_text(json.dumps(card))
    with caplog.at_level(logging.WARNING, logger="hazardvision.packs"):
        assert load_pack(folder).version == "old"
    assert "model.onnx of site old is loaded unchecked" in caplog.text
    with pytest.raises(ModelIntegrityError, match="has no sha256 in its card"):
        load_pack(folder, require_hashes=True)
    monkeypatch.setenv("HAZARDVISION_REQUIRE_MODEL_HASHES", "1")
    with pytest.raises(ModelIntegrityError, match="HAZARDVISION_REQUIRE_MODEL_HASHES"):
        load_pack(folder)


def test_gate_scores_both_afresh_and_refuses_zeroed_weights_unless_forced(registry, synthetic):
    with pytest.raises(PromotionRefused, match=rf"worse than the active 0.4.0 .*{SET}: mAP50 0.000 vs 0.9"):
        promote(registry, "site", "zeroed", datasets=synthetic)
    assert registry.active("site").version == "0.4.0"
    with pytest.raises(PromotionRefused, match="worse than the active"):  # the bank's test-split cases
        promote(registry, "site", "zeroed", datasets=None, test_cases=lambda: labelled_photos(synthetic))
    rows = promote(registry, "site", "0.4.1", datasets=synthetic)
    assert [(r.dataset, r.split_id, r.source, r.delta) for r in rows] == [
        (SET, split_id(synthetic / SET / "data.yaml", "test"), "datasets", 0.0)]
    assert rows[0].active > 0.9
    assert promote(registry, "site", "zeroed", force=True) == []
    assert registry.active("site").version == "zeroed"


def test_gate_with_nothing_to_score_on_refuses_unless_forced(registry, tmp_path):
    with pytest.raises(PromotionRefused, match=r"cannot be scored against the active 0.4.0: none of the test splits "
                       r"\(fire-smoke, forklift-person, hardhat-head, ppe-vest\) is under the datasets root"):
        promote(registry, "site", "0.4.1", datasets=tmp_path / "nothing", test_cases=lambda: [])
    promote(registry, "site", "0.4.1", force=True)
    assert registry.active("site").version == "0.4.1"


@pytest.mark.parametrize("tolerance", [0.021, 0.5, 1.0, -0.01])
def test_gate_refuses_a_tolerance_above_its_limit(registry, synthetic, tolerance):
    with pytest.raises(PromotionRefused, match=r"tolerance of .* is outside 0 to 0.02"):
        promote(registry, "site", "zeroed", datasets=synthetic, tolerance=tolerance)
    assert registry.active("site").version == "0.4.0"


def test_an_activation_whose_record_fails_is_undone(registry):
    def record(rows: object) -> None:
        raise PromotionRefused("the audit log is unavailable")

    with pytest.raises(PromotionRefused, match="audit log is unavailable"):
        promote(registry, "site", "0.4.1", force=True, record=record)
    assert registry.active("site").version == "0.4.0"
    assert not (registry.home / "site" / ACTIVE_FILE).exists()
