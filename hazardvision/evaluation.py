"""Accuracy of a detector on a labelled split, computed through our own runtime.

COCO-style matching (each detection, in descending confidence, takes the best unclaimed ground
truth box of its class at each IoU threshold 0.50:0.95), AP by 101-point interpolation of the
precision envelope, mAP as the mean over classes present in the ground truth. Precision and
recall are reported at the pack's operating confidence, the threshold users actually see.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, Field

from hazardvision.bank.classmap import ClassMap, build_class_map
from hazardvision.bank.readers import SampleFile, read_yolo
from hazardvision.boxes import box_iou
from hazardvision.catalogue import load_catalogue
from hazardvision.detections import Detections
from hazardvision.errors import DatasetError
from hazardvision.images import load_image
from hazardvision.model_pack import ModelPack

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
EVALUATION_CONFIDENCE = 0.001
_RECALL_POINTS = np.linspace(0, 1, 101)


@dataclass(frozen=True)
class GroundTruth:
    """Labelled boxes of one photo, in pixels, by catalogue class name."""

    xyxy: NDArray[np.float32]
    class_name: NDArray[np.str_]


class ClassMetrics(BaseModel):
    instances: int = Field(description="Ground-truth boxes of the class.")
    map50: float = Field(description="AP at IoU 0.5.")
    map50_95: float = Field(description="AP averaged over IoU 0.50:0.95.")
    precision: float = Field(description="Precision at the operating confidence, IoU 0.5.")
    recall: float = Field(description="Recall at the operating confidence, IoU 0.5.")


class Evaluation(BaseModel):
    images: int = Field(description="Photos evaluated.")
    operating_confidence: float = Field(description="Threshold for precision and recall.")
    map50: float = Field(description="Mean AP at IoU 0.5 over classes with ground truth.")
    map50_95: float = Field(description="Mean AP at IoU 0.50:0.95 over classes with ground truth.")
    per_class: dict[str, ClassMetrics] = Field(description="Metrics per class.")


def match(detections: Detections, truth: GroundTruth) -> NDArray[np.bool_]:
    """(n, 10) correctness of each detection at each IoU threshold; detections in descending confidence."""
    correct = np.zeros((len(detections), len(IOU_THRESHOLDS)), dtype=bool)
    if not len(detections) or not len(truth.xyxy):
        return correct
    iou = box_iou(truth.xyxy, detections.xyxy) * (truth.class_name[:, None] == detections.class_name[None, :])
    claimed = np.zeros((len(truth.xyxy), len(IOU_THRESHOLDS)), dtype=bool)
    columns = np.arange(len(IOU_THRESHOLDS))
    for j in np.flatnonzero((iou >= IOU_THRESHOLDS[0]).any(axis=0)):
        available = np.where(claimed, 0.0, iou[:, j, None])
        best = available.argmax(axis=0)
        correct[j] = available[best, columns] >= IOU_THRESHOLDS
        claimed[best, columns] |= correct[j]
    return correct


def average_precision(recall: NDArray[np.float64], precision: NDArray[np.float64]) -> float:
    """Area under the precision envelope, sampled at 101 recall points."""
    last = recall[-1] if len(recall) else 1.0
    mrec = np.concatenate(([0.0], recall, [last], [1.0]))
    mpre = np.concatenate(([1.0], precision, [0.0], [0.0]))
    envelope = np.flip(np.maximum.accumulate(np.flip(mpre)))
    return float(np.trapezoid(np.interp(_RECALL_POINTS, mrec, envelope), _RECALL_POINTS))


@dataclass
class Accumulator:
    """Collects matches photo by photo; `result` turns them into metrics."""

    class_names: Sequence[str]
    correct: list[NDArray[np.bool_]] = field(default_factory=list)
    confidence: list[NDArray[np.float32]] = field(default_factory=list)
    predicted: list[NDArray[np.str_]] = field(default_factory=list)
    truth: list[NDArray[np.str_]] = field(default_factory=list)
    images: int = 0

    def add(self, detections: Detections, truth: GroundTruth) -> None:
        order = np.argsort(-detections.confidence, kind="stable")
        detections = detections[order]
        self.correct.append(match(detections, truth))
        self.confidence.append(detections.confidence)
        self.predicted.append(detections.class_name)
        self.truth.append(truth.class_name)
        self.images += 1

    def result(self, operating_confidence: float) -> Evaluation:
        correct = np.concatenate(self.correct) if self.correct else np.zeros((0, 10), bool)
        confidence = np.concatenate(self.confidence) if self.confidence else np.zeros(0, np.float32)
        predicted = np.concatenate(self.predicted) if self.predicted else np.zeros(0, np.str_)
        truth = np.concatenate(self.truth) if self.truth else np.zeros(0, np.str_)
        per_class = {}
        for name in self.class_names:
            instances = int((truth == name).sum())
            mine = predicted == name
            order = np.argsort(-confidence[mine], kind="stable")
            hits = correct[mine][order].astype(np.float64)
            true_positives = hits.cumsum(axis=0)
            false_positives = (1 - hits).cumsum(axis=0)
            recall = true_positives / max(instances, 1)
            precision = true_positives / np.maximum(true_positives + false_positives, 1e-16)
            aps = [average_precision(recall[:, t], precision[:, t]) for t in range(len(IOU_THRESHOLDS))]
            if not instances or not len(hits):
                aps = [0.0] * len(IOU_THRESHOLDS)
            shown = confidence[mine] >= operating_confidence
            shown_hits = int(correct[mine][shown, 0].sum())
            per_class[name] = ClassMetrics(
                instances=instances, map50=round(aps[0], 4), map50_95=round(float(np.mean(aps)), 4),
                precision=round(shown_hits / max(int(shown.sum()), 1), 4),
                recall=round(shown_hits / max(instances, 1), 4),
            )
        present = [m for m in per_class.values() if m.instances]
        return Evaluation(
            images=self.images, operating_confidence=operating_confidence,
            map50=round(float(np.mean([m.map50 for m in present])) if present else 0.0, 4),
            map50_95=round(float(np.mean([m.map50_95 for m in present])) if present else 0.0, 4),
            per_class=per_class,
        )


def evaluate_dataset(
    pack: ModelPack,
    data_yaml: Path,
    *,
    split: str = "test",
    mapping: dict[str, str] | None = None,
    drop: Sequence[str] = (),
    batch: int = 8,
) -> Evaluation:
    """Evaluate `pack` on one split of a YOLO dataset whose classes map onto the catalogue.

    Ground-truth classes outside the pack's classes are ignored (a ppe pack is not scored on a
    dataset's `person` boxes); detections are made at confidence 0.001, as mAP needs.
    """
    dataset = read_yolo(data_yaml)
    class_map = build_class_map(dataset.classes, load_catalogue(), mapping or {}, drop)
    files = [f for f in dataset.files if f.split == split and not f.errors]
    if not files:
        raise DatasetError(f"{data_yaml} has no readable {split} images")
    accumulator = Accumulator(pack.card.classes)
    for start in range(0, len(files), batch):
        chunk = files[start : start + batch]
        photos = [load_image(f.image) for f in chunk]
        found = pack.detect([p.pixels for p in photos], confidence=EVALUATION_CONFIDENCE)
        for sample, photo, detections in zip(chunk, photos, found, strict=True):
            accumulator.add(detections, _truth(sample, photo.width, photo.height, class_map, pack.card.classes))
    return accumulator.result(pack.card.operating_confidence)


def _truth(sample: SampleFile, width: int, height: int, class_map: ClassMap, classes: Sequence[str]) -> GroundTruth:
    boxes, names = [], []
    for box in sample.boxes:
        target = class_map.target(box.source_class)
        if target in classes:
            boxes.append(list(box.pixels(width, height)))
            names.append(target)
    return GroundTruth(np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(names, dtype=np.str_))
