"""Accuracy of a detector on a labelled split, computed through our own runtime.

COCO-style matching (each detection, in descending confidence, takes the best unclaimed ground
truth box of its class at each IoU threshold 0.50:0.95), AP by 101-point interpolation of the
precision envelope, mAP as the mean over classes present in the ground truth. Precision and
recall are reported at the pack's operating confidence, the threshold users actually see, and so
is the confusion matrix (boxes paired at IoU 0.45 whatever their class, as ultralytics does).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from hazardvision.boxes import box_iou
from hazardvision.catalogue import load_catalogue
from hazardvision.datasets.classmap import ClassMap, build_class_map
from hazardvision.datasets.readers import SampleFile, read_yolo
from hazardvision.detections import Detections
from hazardvision.errors import DatasetError
from hazardvision.images import load_image
from hazardvision.packs.card import ClassMetrics, Evaluation
from hazardvision.packs.model_pack import ModelPack
from hazardvision.packs.tiling import TilingMode

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
EVALUATION_CONFIDENCE = 0.001
CONFUSION_IOU = 0.45
_RECALL_POINTS = np.linspace(0, 1, 101)


@dataclass(frozen=True)
class GroundTruth:
    """Labelled boxes of one photo, in pixels, by catalogue class name."""

    xyxy: NDArray[np.float32]
    class_name: NDArray[np.str_]


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


def confusion_matrix(
    detections: Detections, truth: GroundTruth, class_names: Sequence[str], *, confidence: float,
    iou: float = CONFUSION_IOU,
) -> NDArray[np.int64]:
    """(k + 1, k + 1) box counts of one photo: row the true class, column the predicted one, background last.

    Detections below `confidence` are ignored. The others are paired with truth boxes at IoU >= `iou`
    whatever their classes (so a no_helmet taken for a helmet lands off the diagonal), highest IoU
    first, then highest confidence, each box at most once. An unpaired truth box is a miss
    (background column), an unpaired detection a false alarm (background row). Classes outside
    `class_names` are left out.
    """
    k = len(class_names)
    index = {name: i for i, name in enumerate(class_names)}
    matrix = np.zeros((k + 1, k + 1), np.int64)
    shown = detections[detections.confidence >= confidence]
    shown = shown[np.argsort(-shown.confidence, kind="stable")]  # of equal IoUs, the surer detection pairs
    predicted = np.array([index.get(str(n), -1) for n in shown.class_name], np.int64)
    actual = np.array([index.get(str(n), -1) for n in truth.class_name], np.int64)
    shown, predicted = shown[predicted >= 0], predicted[predicted >= 0]
    boxes, actual = truth.xyxy[actual >= 0], actual[actual >= 0]
    paired_truth = np.zeros(len(actual), bool)
    paired_detection = np.zeros(len(predicted), bool)
    if len(actual) and len(predicted):
        overlap = box_iou(boxes, shown.xyxy)
        candidates = np.argwhere(overlap >= iou)
        for t, d in candidates[np.argsort(-overlap[tuple(candidates.T)], kind="stable")]:
            if not paired_truth[t] and not paired_detection[d]:
                paired_truth[t] = paired_detection[d] = True
                matrix[actual[t], predicted[d]] += 1
    matrix[:k, k] += np.bincount(actual[~paired_truth], minlength=k)
    matrix[k, :k] += np.bincount(predicted[~paired_detection], minlength=k)
    return matrix


def normalise_rows(matrix: NDArray[np.int64]) -> NDArray[np.float64]:
    """Each row as shares of its total (a row without boxes stays zero)."""
    totals = matrix.sum(axis=1, keepdims=True)
    shares: NDArray[np.float64] = np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)
    return shares


def average_precision(recall: NDArray[np.float64], precision: NDArray[np.float64]) -> float:
    """Area under the precision envelope, sampled at 101 recall points."""
    last = recall[-1] if len(recall) else 1.0
    mrec = np.concatenate(([0.0], recall, [last], [1.0]))
    mpre = np.concatenate(([1.0], precision, [0.0], [0.0]))
    envelope = np.flip(np.maximum.accumulate(np.flip(mpre)))
    return float(np.trapezoid(np.interp(_RECALL_POINTS, mrec, envelope), _RECALL_POINTS))


@dataclass(frozen=True)
class PrecisionRecall:
    """One class's precision-recall curve at IoU 0.5: a point per detection, in descending confidence."""

    instances: int
    confidence: NDArray[np.float32]
    recall: NDArray[np.float64]
    precision: NDArray[np.float64]
    ap50: float


@dataclass(frozen=True)
class _Ranked:
    """A class's detections in descending confidence, with their correctness at each IoU threshold."""

    instances: int
    confidence: NDArray[np.float32]
    hits: NDArray[np.bool_]
    recall: NDArray[np.float64]
    precision: NDArray[np.float64]
    aps: list[float]


@dataclass
class Accumulator:
    """Collects matches photo by photo; `result` turns them into metrics."""

    class_names: Sequence[str]
    correct: list[NDArray[np.bool_]] = field(default_factory=list)
    confidence: list[NDArray[np.float32]] = field(default_factory=list)
    predicted: list[NDArray[np.str_]] = field(default_factory=list)
    truth: list[NDArray[np.str_]] = field(default_factory=list)
    photos: list[tuple[Detections, GroundTruth]] = field(default_factory=list)
    """Kept for the confusion matrix, whose threshold is only known when it is asked for."""
    images: int = 0

    def add(self, detections: Detections, truth: GroundTruth) -> None:
        order = np.argsort(-detections.confidence, kind="stable")
        detections = detections[order]
        self.correct.append(match(detections, truth))
        self.confidence.append(detections.confidence)
        self.predicted.append(detections.class_name)
        self.truth.append(truth.class_name)
        self.photos.append((detections, truth))
        self.images += 1

    def confusion(self, confidence: float, iou: float = CONFUSION_IOU) -> NDArray[np.int64]:
        """Confusion matrix summed over the photos (see `confusion_matrix`)."""
        total = np.zeros((len(self.class_names) + 1,) * 2, np.int64)
        for detections, truth in self.photos:
            total += confusion_matrix(detections, truth, self.class_names, confidence=confidence, iou=iou)
        return total

    def curves(self) -> dict[str, PrecisionRecall]:
        """Each class's precision-recall curve at IoU 0.5, with its AP50."""
        return {name: PrecisionRecall(c.instances, c.confidence, c.recall[:, 0], c.precision[:, 0], c.aps[0])
                for name, c in self._ranked().items()}

    def _ranked(self) -> dict[str, _Ranked]:
        correct = np.concatenate(self.correct) if self.correct else np.zeros((0, 10), bool)
        confidence = np.concatenate(self.confidence) if self.confidence else np.zeros(0, np.float32)
        predicted = np.concatenate(self.predicted) if self.predicted else np.zeros(0, np.str_)
        truth = np.concatenate(self.truth) if self.truth else np.zeros(0, np.str_)
        ranked = {}
        for name in self.class_names:
            instances = int((truth == name).sum())
            mine = predicted == name
            order = np.argsort(-confidence[mine], kind="stable")
            hits = correct[mine][order]
            true_positives = hits.cumsum(axis=0, dtype=np.float64)
            false_positives = (~hits).cumsum(axis=0, dtype=np.float64)
            recall = true_positives / max(instances, 1)
            precision = true_positives / np.maximum(true_positives + false_positives, 1e-16)
            aps = [average_precision(recall[:, t], precision[:, t]) for t in range(len(IOU_THRESHOLDS))]
            if not instances or not len(hits):
                aps = [0.0] * len(IOU_THRESHOLDS)
            ranked[name] = _Ranked(instances, confidence[mine][order], hits, recall, precision, aps)
        return ranked

    def hits(self, name: str) -> tuple[NDArray[np.float32], NDArray[np.bool_], int]:
        """One class's detections in descending confidence, whether each is right at IoU 0.5, and its instances."""
        ranked = self._ranked()[name]
        return ranked.confidence, ranked.hits[:, 0], ranked.instances

    def result(self, operating_confidence: float, thresholds: Mapping[str, float] | None = None) -> Evaluation:
        """Metrics; precision and recall at `thresholds[class]` where given, else at `operating_confidence`."""
        per_class = {}
        for name, c in self._ranked().items():
            shown = c.confidence >= (thresholds or {}).get(name, operating_confidence)
            shown_hits = int(c.hits[shown, 0].sum())
            per_class[name] = ClassMetrics(
                instances=c.instances, map50=round(c.aps[0], 4), map50_95=round(float(np.mean(c.aps)), 4),
                precision=round(shown_hits / max(int(shown.sum()), 1), 4),
                recall=round(shown_hits / max(c.instances, 1), 4),
            )
        present = [m for m in per_class.values() if m.instances]
        return Evaluation(
            images=self.images, operating_confidence=operating_confidence, class_thresholds=dict(thresholds or {}),
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
    tiling: TilingMode | None = None,
) -> Evaluation:
    """Evaluate `pack` on one split of a YOLO dataset whose classes map onto the catalogue."""
    accumulator = score_dataset(pack, data_yaml, split=split, mapping=mapping, drop=drop, batch=batch, tiling=tiling)
    return accumulator.result(pack.card.operating_confidence, pack.card.class_thresholds)


def score_dataset(
    pack: ModelPack,
    data_yaml: Path,
    *,
    split: str = "test",
    mapping: dict[str, str] | None = None,
    drop: Sequence[str] = (),
    batch: int = 8,
    tiling: TilingMode | None = None,
) -> Accumulator:
    """Run `pack` over one split and collect its matches (for metrics, curves and the confusion matrix).

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
        found = pack.detect([p.pixels for p in photos], confidence=EVALUATION_CONFIDENCE, tiling=tiling)
        for sample, photo, detections in zip(chunk, photos, found, strict=True):
            accumulator.add(detections, _truth(sample, photo.width, photo.height, class_map, pack.card.classes))
    return accumulator


def _truth(sample: SampleFile, width: int, height: int, class_map: ClassMap, classes: Sequence[str]) -> GroundTruth:
    boxes, names = [], []
    for box in sample.boxes:
        target = class_map.target(box.source_class)
        if target in classes:
            boxes.append(list(box.pixels(width, height)))
            names.append(target)
    return GroundTruth(np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(names, dtype=np.str_))


@dataclass(frozen=True)
class LabelledPhoto:
    """A photo with its labelled boxes in catalogue classes (a test-split case of the bank), to score a pack on."""

    image: Path
    source: str
    """The dataset it came from: photos are scored per source."""
    sha256: str
    """SHA-256 of the photo's bytes: with the boxes, the content id of what was scored."""
    boxes: tuple[tuple[str, float, float, float, float], ...]
    """(class name, x1, y1, x2, y2) in pixels."""


def evaluate_photos(pack: ModelPack, photos: Sequence[LabelledPhoto], *, batch: int = 8) -> Evaluation:
    """Evaluate `pack` on labelled photos (boxes of classes the pack lacks are ignored), as `evaluate_dataset`."""
    accumulator = Accumulator(pack.card.classes)
    for start in range(0, len(photos), batch):
        chunk = photos[start : start + batch]
        images = [load_image(p.image) for p in chunk]
        found = pack.detect([i.pixels for i in images], confidence=EVALUATION_CONFIDENCE)
        for photo, detections in zip(chunk, found, strict=True):
            kept = [box for box in photo.boxes if box[0] in pack.card.classes]
            accumulator.add(detections, GroundTruth(np.asarray([b[1:] for b in kept], np.float32).reshape(-1, 4),
                                                    np.asarray([b[0] for b in kept], dtype=np.str_)))
    return accumulator.result(pack.card.operating_confidence, pack.card.class_thresholds)
