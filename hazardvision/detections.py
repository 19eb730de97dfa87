"""`Detections`: the one type that carries boxes from the detector to the response.

Boxes are `xyxy` in pixels of the original image. `class_id` indexes `class_names`, the
catalogue classes of the vocabulary the detections were made with, so that detections of
several model packs can be merged without confusing their class ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hazardvision.boxes import FloatArray, IntArray, non_max_suppression

Index = int | slice | NDArray[np.bool_] | NDArray[np.integer[Any]] | Sequence[int]


class _UltralyticsBoxes(Protocol):
    xyxy: Any
    conf: Any
    cls: Any
    id: Any


class UltralyticsResult(Protocol):
    """The part of `ultralytics.engine.results.Results` that the adapter reads."""

    boxes: _UltralyticsBoxes | None
    names: dict[int, str]


def _numpy(value: Any) -> NDArray[Any]:
    """Turn a torch tensor or array-like into a numpy array without importing torch."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


@dataclass
class Detections:
    """Detected objects of one image.

    Attributes:
        xyxy: `(n, 4)` float32 boxes in original-image pixels.
        confidence: `(n,)` float32 scores in 0..1.
        class_id: `(n,)` int64 indices into `class_names`.
        class_names: the vocabulary (catalogue class names) that `class_id` indexes.
        tracker_id: optional `(n,)` int64 track ids, set by a tracker.
        data: extra per-detection arrays of length n (for example `pack`).
    """

    xyxy: FloatArray
    confidence: FloatArray
    class_id: IntArray
    class_names: tuple[str, ...]
    tracker_id: IntArray | None = None
    data: dict[str, NDArray[Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        self.confidence = np.asarray(self.confidence, dtype=np.float32).reshape(-1)
        self.class_id = np.asarray(self.class_id, dtype=np.int64).reshape(-1)
        self.class_names = tuple(self.class_names)
        n = len(self.xyxy)
        if self.confidence.shape != (n,) or self.class_id.shape != (n,):
            raise ValueError(
                f"Detections needs one confidence and one class_id per box: got {n} boxes, "
                f"{self.confidence.shape[0]} confidences, {self.class_id.shape[0]} class ids"
            )
        if n and (self.class_id.min() < 0 or self.class_id.max() >= len(self.class_names)):
            raise ValueError(
                f"class_id must index class_names ({len(self.class_names)} names); got ids "
                f"{self.class_id.min()}..{self.class_id.max()}"
            )
        if not np.isfinite(self.xyxy).all() or not np.isfinite(self.confidence).all():
            raise ValueError("boxes and confidences must be finite numbers")
        if n and ((self.xyxy[:, 2] < self.xyxy[:, 0]).any() or (self.xyxy[:, 3] < self.xyxy[:, 1]).any()):
            raise ValueError("boxes must be x1, y1, x2, y2 with x2 >= x1 and y2 >= y1")
        if self.tracker_id is not None:
            self.tracker_id = np.asarray(self.tracker_id, dtype=np.int64).reshape(-1)
            if self.tracker_id.shape != (n,):
                raise ValueError(f"tracker_id needs {n} entries, got {self.tracker_id.shape[0]}")
        self.data = {key: np.asarray(value) for key, value in self.data.items()}
        for key, value in self.data.items():
            if len(value) != n:
                raise ValueError(f"data[{key!r}] needs {n} entries, got {len(value)}")

    @classmethod
    def of(
        cls,
        xyxy: ArrayLike,
        confidence: ArrayLike,
        class_id: ArrayLike,
        class_names: Sequence[str],
        *,
        tracker_id: ArrayLike | None = None,
        data: Mapping[str, ArrayLike] | None = None,
    ) -> Detections:
        """Build from plain lists or any array-likes; they are converted and validated."""
        return cls(
            xyxy=np.asarray(xyxy, dtype=np.float32),
            confidence=np.asarray(confidence, dtype=np.float32),
            class_id=np.asarray(class_id, dtype=np.int64),
            class_names=tuple(class_names),
            tracker_id=None if tracker_id is None else np.asarray(tracker_id, dtype=np.int64),
            data={key: np.asarray(value) for key, value in (data or {}).items()},
        )

    @classmethod
    def empty(cls, class_names: Sequence[str] = ()) -> Detections:
        """No detections, over the given vocabulary."""
        return cls.of(np.zeros((0, 4)), [], [], class_names)

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: Index) -> Detections:
        """Select rows by boolean mask, integer indices, a slice or one integer."""
        if isinstance(index, int):
            index = [index]
        return Detections(
            xyxy=self.xyxy[index],
            confidence=self.confidence[index],
            class_id=self.class_id[index],
            class_names=self.class_names,
            tracker_id=None if self.tracker_id is None else self.tracker_id[index],
            data={key: value[index] for key, value in self.data.items()},
        )

    @property
    def class_name(self) -> NDArray[np.str_]:
        """The catalogue class name of each detection."""
        names = np.asarray((*self.class_names, ""), dtype=np.str_)
        return names[self.class_id]

    def with_class_names(self, class_names: Sequence[str]) -> Detections:
        """The same detections re-indexed into a vocabulary that contains all their classes."""
        vocabulary = tuple(class_names)
        missing = sorted(set(self.class_name.tolist()) - set(vocabulary))
        if missing:
            raise ValueError(f"vocabulary lacks the classes {missing}")
        lookup = np.asarray([vocabulary.index(name) for name in self.class_names], dtype=np.int64)
        new_ids = lookup[self.class_id] if len(self) else self.class_id
        return Detections(self.xyxy, self.confidence, new_ids, vocabulary, self.tracker_id, self.data)

    @classmethod
    def merge(cls, parts: Iterable[Detections]) -> Detections:
        """Concatenate detections, uniting their vocabularies in order of first appearance.

        Per-detection `data` keys must be present in every part; tracker ids are kept only
        when every part has them.
        """
        parts = list(parts)
        if not parts:
            return cls.empty()
        vocabulary: list[str] = []
        for part in parts:
            vocabulary.extend(name for name in part.class_names if name not in vocabulary)
        aligned = [part.with_class_names(vocabulary) for part in parts]
        keys = set(aligned[0].data)
        if any(set(part.data) != keys for part in aligned):
            raise ValueError("cannot merge detections whose data keys differ")
        trackers = [part.tracker_id for part in aligned]
        return cls(
            xyxy=np.concatenate([part.xyxy for part in aligned]),
            confidence=np.concatenate([part.confidence for part in aligned]),
            class_id=np.concatenate([part.class_id for part in aligned]),
            class_names=tuple(vocabulary),
            tracker_id=None if any(t is None for t in trackers) else np.concatenate(trackers),  # type: ignore[arg-type]
            data={key: np.concatenate([part.data[key] for part in aligned]) for key in keys},
        )

    @classmethod
    def from_ultralytics(cls, result: UltralyticsResult) -> Detections:
        """Adapt one ultralytics `Results` object (boxes already in original-image pixels)."""
        names = tuple(result.names[i] for i in range(len(result.names)))
        boxes = result.boxes
        if boxes is None:
            return cls.empty(names)
        tracker = None if getattr(boxes, "id", None) is None else _numpy(boxes.id)
        return cls.of(
            xyxy=_numpy(boxes.xyxy),
            confidence=_numpy(boxes.conf),
            class_id=_numpy(boxes.cls),
            class_names=names,
            tracker_id=tracker,
        )

    @classmethod
    def from_onnx_output(
        cls,
        output: NDArray[np.float32],
        class_names: Sequence[str],
        *,
        confidence_threshold: float,
        iou_threshold: float,
        max_det: int = 300,
    ) -> Detections:
        """Adapt one image's output of an ultralytics ONNX export, in model-input pixels.

        Two layouts exist: `(k, 6)` rows of x1, y1, x2, y2, score, class from graphs that select
        boxes themselves (end-to-end YOLO26 heads, or exports with NMS in the graph), and
        `(4 + nc, anchors)` raw predictions (cx, cy, w, h, one score per class) that still need
        class-aware NMS, which this applies.
        """
        names = tuple(class_names)
        if output.ndim != 2:
            raise ValueError(f"expected one image's 2-D output, got shape {output.shape}")
        if output.shape[1] == 6 and output.shape[0] != 4 + len(names):
            rows = output[output[:, 4] > confidence_threshold][:max_det]
            return cls(rows[:, :4], rows[:, 4], rows[:, 5].astype(np.int64), names)
        if output.shape[0] != 4 + len(names):
            raise ValueError(
                f"output shape {output.shape} fits neither (k, 6) rows "
                f"nor (4 + {len(names)} classes, anchors)"
            )
        scores_all = output[4:]
        class_id = scores_all.argmax(axis=0)
        scores = scores_all[class_id, np.arange(scores_all.shape[1])]
        keep = scores > confidence_threshold
        cx, cy, w, h = output[:4, keep]
        xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        scores, class_id = scores[keep], class_id[keep].astype(np.int64)
        kept = non_max_suppression(xyxy, scores, class_id, iou_threshold, max_det)
        return cls(xyxy[kept], scores[kept], class_id[kept], names)
