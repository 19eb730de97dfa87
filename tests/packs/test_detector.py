"""The ONNX detector: parity with ultralytics on real photos, and clear errors for bad models.

Parity runs every bundled pack's own weights through several ONNX exports (fixed batch 1,
fixed batch 4, dynamic shape; YOLO26's end-to-end head, or NMS in the graph for other heads) and compares
our detections with `ultralytics.YOLO(same_onnx).predict` one to one at confidence 0.001.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from hazardvision.boxes import box_area, box_iou
from hazardvision.detections import Detections
from hazardvision.errors import InvalidModel
from hazardvision.images import load_image
from hazardvision.packs.card import ModelCard
from hazardvision.packs.detector import OnnxDetector
from hazardvision.packs.registry import default_models_dir
from tests.conftest import DATASET_NAMES, test_photos

PARITY_CONF = 0.001
PARITY_IOU = 0.7
# Every n-th test photo per dataset; 1 checks them all (HAZARDVISION_PARITY_EVERY=1 pytest ...).
EVERY = int(os.environ.get("HAZARDVISION_PARITY_EVERY", "16"))


def bundled_weights() -> list[tuple[str, Path]]:
    """(architecture, weights.pt) of the newest bundled pack version of each architecture that ships its weights:
    parity depends on the architecture's head (NMS-free or not), not on the pack."""
    found: dict[str, Path] = {}
    for card_path in sorted(default_models_dir().glob("*/*/card.json")):
        card = ModelCard.read(card_path)
        if card.weights_file:
            found[card.architecture] = card_path.parent / card.weights_file
    return sorted(found.items())


@dataclass(frozen=True)
class Export:
    path: Path
    batch: int
    label: str


@pytest.fixture(scope="module", params=bundled_weights(), ids=lambda p: p[0])
def exports(request, tmp_path_factory) -> Iterator[list[Export]]:
    pytest.importorskip("ultralytics", reason="parity needs ultralytics: install the [train] extra")
    from ultralytics import YOLO

    architecture, weights = request.param
    folder = tmp_path_factory.mktemp(architecture)
    local = folder / "weights.pt"
    shutil.copy(weights, local)
    imgsz = YOLO(str(local)).ckpt["train_args"]["imgsz"]
    variants = [("fixed-b1", {"batch": 1}, 1), ("fixed-b4", {"batch": 4}, 4), ("dynamic", {"dynamic": True}, 4)]
    if architecture.startswith("yolo26"):
        # YOLO26's NMS-free head: the graph itself picks its top 300 boxes.
        variants.append(("end2end-b4", {"batch": 4, "end2end": True}, 4))
    else:
        # The graph's own NMS keeps boxes above the export-time conf; keep it at the parity level.
        variants.append(("nms-in-graph-b4", {"batch": 4, "nms": True, "conf": PARITY_CONF}, 4))
    made = []
    for label, options, batch in variants:
        out = Path(YOLO(str(local)).export(format="onnx", imgsz=imgsz, simplify=True, **options))
        target = folder / f"{label}.onnx"
        out.rename(target)
        made.append(Export(target, batch, f"{architecture}-{label}"))
    yield made


def photo_variants() -> dict[str, list[np.ndarray]]:
    """Real test photos as published (square), stretched to 1280x720, and padded to 720x1280."""
    photos = [load_image(p).pixels for name in DATASET_NAMES for p in test_photos(name)[::EVERY]]
    landscape = [cv2.resize(p, (1280, 720), interpolation=cv2.INTER_AREA) for p in photos]
    portrait = []
    for p in photos:
        scaled = cv2.resize(p, (720, round(p.shape[0] * 720 / p.shape[1])), interpolation=cv2.INTER_AREA)
        canvas = np.zeros((1280, 720, 3), np.uint8)
        top = (1280 - scaled.shape[0]) // 2
        canvas[top : top + scaled.shape[0]] = scaled
        portrait.append(canvas)
    return {"square": photos, "1280x720": landscape, "720x1280": portrait}


def match(ours: Detections, theirs: Detections) -> tuple[int, list[str]]:
    """Match boxes one to one (same class, IoU >= 0.99, score within 1e-3); list the problems."""
    problems = []
    iou = box_iou(ours.xyxy, theirs.xyxy) if len(ours) and len(theirs) else np.zeros((len(ours), len(theirs)))
    same_class = ours.class_id[:, None] == theirs.class_id[None, :]
    close = np.abs(ours.confidence[:, None] - theirs.confidence[None, :]) <= 1e-3
    candidates = (iou >= 0.99) & same_class & close
    used = np.zeros(len(theirs), bool)
    matched = 0
    for i in np.argsort(-ours.confidence, kind="stable"):
        options = np.flatnonzero(candidates[i] & ~used)
        if len(options):
            used[options[np.argmax(iou[i, options])]] = True
            matched += 1
        elif ours.confidence[i] >= 0.01:
            problems.append(f"ours unmatched: {ours.class_name[i]} {ours.confidence[i]:.4f} {ours.xyxy[i]}")
    for j in np.flatnonzero(~used):
        if theirs.confidence[j] >= 0.01:
            problems.append(f"theirs unmatched: {theirs.class_name[j]} {theirs.confidence[j]:.4f} {theirs.xyxy[j]}")
    return matched, problems


@pytest.fixture(scope="module")
def photos(datasets) -> dict[str, list[np.ndarray]]:
    return photo_variants()


def test_detector_matches_ultralytics_on_real_photos(exports, photos):
    from ultralytics import YOLO

    for export in exports:
        ours_model = OnnxDetector(export.path)
        reference = YOLO(str(export.path), task="detect")
        for variant, images in photos.items():
            matched_total, problems = 0, []
            for start in range(0, len(images), export.batch):
                batch = images[start : start + export.batch]
                ours = ours_model.detect(batch, confidence=PARITY_CONF, iou=PARITY_IOU)
                # ultralytics predicts dynamic-shape exports at 640 unless told; ours reads the
                # trained size from the metadata, so give ultralytics the same size.
                results = reference.predict(batch, conf=PARITY_CONF, iou=PARITY_IOU, verbose=False,
                                            imgsz=ours_model.info.input_height)
                for k, (mine, result) in enumerate(zip(ours, results, strict=True)):
                    theirs = Detections.from_ultralytics(result)
                    # We drop boxes that lie wholly in the padding (no area inside the photo);
                    # ultralytics keeps them clipped to zero area. Everything else must match.
                    matched, issues = match(mine, theirs[box_area(theirs.xyxy) > 0])
                    matched_total += matched
                    problems += [f"image {start + k}: {issue}" for issue in issues]
            label = f"{export.label} on {variant} photos"
            per_image = matched_total / len(images)
            assert not problems, f"{label}: {len(problems)} mismatches, first: {problems[:5]}"
            assert per_image >= 5, f"{label}: only {per_image:.1f} matched boxes per image"


def test_detector_reads_names_and_input_size(exports):
    detector = OnnxDetector(exports[0].path)
    assert detector.info.batch_size == 1
    assert detector.info.input_height == detector.info.input_width
    assert len(detector.class_names) >= 1


def test_detector_dynamic_export_pads_minimally(exports):
    dynamic = next(e for e in exports if e.label.endswith("dynamic"))
    detector = OnnxDetector(dynamic.path)
    size = detector.info.input_height
    batch = detector.preprocess([np.zeros((720, 1280, 3), np.uint8)])
    assert batch.tensor.shape[2:] == (round(720 * size / 1280 / 32 + 0.49) * 32, size)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "not a loadable ONNX model"), (b"not onnx at all" * 10, "not a loadable ONNX model")],
)
def test_detector_bad_model_file_raises_invalid_model(tmp_path, content, message):
    path = tmp_path / "model.onnx"
    path.write_bytes(content)
    with pytest.raises(InvalidModel, match=message):
        OnnxDetector(path)


def test_detector_missing_model_file_raises_invalid_model(tmp_path):
    with pytest.raises(InvalidModel, match="not found"):
        OnnxDetector(tmp_path / "missing.onnx")


def test_detector_loads_a_yolov8_export(tmp_path, real_photo):
    """YOLOv8 exports share YOLO11's raw layout; an untrained one checks loading and shapes only."""
    ultralytics = pytest.importorskip("ultralytics", reason="needs ultralytics: install the [train] extra")
    model = ultralytics.YOLO("yolov8n.yaml")  # an architecture, built locally: nothing is downloaded
    model.save(tmp_path / "yolov8n.pt")  # export writes beside the weights, so keep them in tmp_path
    exported = ultralytics.YOLO(tmp_path / "yolov8n.pt").export(format="onnx", imgsz=160, dynamic=True, simplify=False)
    path = Path(exported)
    assert path.parent == tmp_path
    detector = OnnxDetector(path)
    assert detector.info.dynamic_shape and detector.info.batch_size is None
    assert len(detector.class_names) == 80
    photo = load_image(real_photo).pixels
    found = detector.detect([photo, photo[:200]], confidence=0.0)
    assert [len(d) > 0 for d in found] == [True, True]
    for detections, image in zip(found, [photo, photo[:200]], strict=True):
        assert (detections.xyxy[:, [2]] <= image.shape[1]).all() and (detections.xyxy[:, [3]] <= image.shape[0]).all()
