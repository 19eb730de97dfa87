"""`ModelPack`: one version of a pack (an ONNX detector and its card), ready to detect.

Which packs and versions exist, and which version of each is active, is the registry's business
(`hazardvision.packs.registry`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np

from hazardvision.boxes import one_box_per_object
from hazardvision.detections import Detections
from hazardvision.errors import InvalidModel, UnknownModel
from hazardvision.images import BGRImage
from hazardvision.packs.card import CARD_FILE, ModelCard, Precision
from hazardvision.packs.detector import OnnxDetector
from hazardvision.packs.embedding import FeatureMaps, split_batch
from hazardvision.packs.integrity import verify_files
from hazardvision.packs.tiling import TilingMode, crops, merge_tiles


class ModelPack:
    """One version of a pack, ready to detect; the ONNX session loads on first use."""

    def __init__(self, folder: Path, card: ModelCard, precision: Precision = Precision.FLOAT32, *,
                 threads: int | None = None) -> None:
        """`threads`: onnxruntime's threads per model run (None: its default, every core)."""
        self.folder = folder
        self.card = card
        self.precision = precision
        self.threads = threads
        chosen = card.model_file if precision is Precision.FLOAT32 else card.model_file_int8
        if chosen is None:
            raise UnknownModel(f"pack {card.pack} {card.version} has no {precision.value} model; "
                               f"use --precision {Precision.FLOAT32.value}")
        self.model_path = folder / chosen

    @property
    def name(self) -> str:
        return self.card.pack

    @property
    def version(self) -> str:
        return self.card.version

    @cached_property
    def detector(self) -> OnnxDetector:
        detector = OnnxDetector(self.model_path, threads=self.threads)
        if len(detector.class_names) != len(self.card.classes):
            raise InvalidModel(
                f"{detector.path} has {len(detector.class_names)} classes but its card lists "
                f"{len(self.card.classes)}: {list(self.card.classes)}"
            )
        return detector

    @cached_property
    def feature_detector(self) -> OnnxDetector:
        """The same model, also returning the feature maps that similar-case embeddings pool from."""
        return OnnxDetector(self.model_path, threads=self.threads, features=True)

    @cached_property
    def sha256(self) -> str:
        """SHA-256 of the ONNX file that runs: it names the embedding model of a similar-case index."""
        return hashlib.sha256(self.model_path.read_bytes()).hexdigest()

    def detect(
        self, images: Sequence[BGRImage], *, confidence: float | None = None, weak: float | None = None,
        tiling: TilingMode | None = None,
    ) -> list[Detections]:
        """Detections over catalogue class names at each class's operating confidence (or `confidence` for
        all), one box per object, tagged with this pack's name and their class's threshold (`data["threshold"]`).

        `weak` also keeps detections from that confidence up, below their class's threshold (still tagged
        with it): the weak detections that a tracker's second stage keeps tracks alive with. `tiling`: also
        look at large frames in tiles (auto: frames of the card's auto_min_side and more; None: the card's
        default).
        """
        floor = self._floor(confidence, weak)
        whole = self.detector.detect(images, confidence=floor)
        return [self.select(d, confidence, weak) for d in self._with_tiles(images, whole, floor, tiling)]

    def detect_with_features(
        self, images: Sequence[BGRImage], *, confidence: float | None = None, tiling: TilingMode | None = None,
    ) -> list[tuple[Detections, FeatureMaps]]:
        """Detections (as `detect`) and the feature maps of each photo, from one forward pass (plus the tiles')."""
        detector = self.feature_detector
        floor = self._floor(confidence)
        whole: list[Detections] = []
        features: list[FeatureMaps] = []
        for batch, (output, *maps) in detector.runs(images):
            whole += detector.postprocess(output, batch.letterboxes, confidence=floor)
            height, width = batch.tensor.shape[2:]
            features += split_batch(maps, batch.letterboxes, height, width)
        found = self._with_tiles(images, whole, floor, tiling)
        return [(self.select(d, confidence), f) for d, f in zip(found, features, strict=True)]

    def _with_tiles(self, images: Sequence[BGRImage], whole: list[Detections], floor: float,
                    mode: TilingMode | None) -> list[Detections]:
        """Each photo's whole-frame detections, joined by those of its tiles where tiling applies."""
        plan = [self.card.tiling.windows(*image.shape[:2]) if self.card.tiling.applies(mode, *image.shape[:2])
                else [] for image in images]
        pieces = [piece for image, windows in zip(images, plan, strict=True) for piece in crops(image, windows)]
        if not pieces:
            return whole
        found = iter(self.detector.detect(pieces, confidence=floor))
        return [merge_tiles(d, [next(found) for _ in windows], windows, *image.shape[:2]) if windows else d
                for image, d, windows in zip(images, whole, plan, strict=True)]

    def _floor(self, confidence: float | None, weak: float | None = None) -> float:
        """The lowest threshold any class reports at: the detector's own cut-off."""
        if weak is not None:
            return weak
        if confidence is not None:
            return confidence
        return min([self.card.operating_confidence, *self.card.class_thresholds.values()])

    @cached_property
    def _thresholds(self) -> np.ndarray:
        return np.asarray([self.card.threshold(name) for name in self.card.classes], np.float32)

    @cached_property
    def _groups(self) -> np.ndarray:
        group = list(range(len(self.card.classes)))
        for members in self.card.exclusive_classes:
            indices = [self.card.classes.index(name) for name in members if name in self.card.classes]
            for index in indices:
                group[index] = indices[0]
        return np.asarray(group, np.int64)

    def select(self, found: Detections, confidence: float | None = None, weak: float | None = None) -> Detections:
        """Raw detections of this pack's model: per-class thresholds, one box per object, tags.

        Boxes are merged into one per object among those that reach their class's own threshold,
        the boxes a scan reports; a box under it (kept by a lower `confidence` or by `weak`) is
        left alone, so that an evaluation at confidence 0.001 still sees the detector's other
        guesses (a no_helmet under a surer helmet) and its AP measures the detector.
        """
        own = self._thresholds[found.class_id]
        thresholds = own if confidence is None else np.full(len(found), confidence, np.float32)
        passed = found.confidence >= (thresholds if weak is None else np.minimum(thresholds, weak))
        found, thresholds, own = found[passed], thresholds[passed], own[passed]
        reportable = np.flatnonzero(found.confidence >= own)
        merged = reportable[one_box_per_object(found.xyxy[reportable], found.confidence[reportable],
                                               found.class_id[reportable], self._groups, self.card.overlap_iou)]
        kept = np.concatenate([merged, np.flatnonzero(found.confidence < own)])
        kept = kept[np.argsort(-found.confidence[kept], kind="stable")]
        return Detections(found.xyxy[kept], found.confidence[kept], found.class_id[kept], self.card.classes,
                          data={"pack": np.full(len(kept), self.name), "threshold": thresholds[kept]})

    def feature_maps(self, images: Sequence[BGRImage]) -> list[FeatureMaps]:
        """The feature maps of each photo (for indexing the bank)."""
        return [maps for _, maps in self.detect_with_features(images)]

    @cached_property
    def embedding_dim(self) -> int:
        """Length of this pack's instance vectors."""
        return self.feature_maps([np.zeros((64, 64, 3), np.uint8)])[0].dim


def load_pack(folder: str | Path, precision: Precision | None = None, *,
              require_hashes: bool | None = None, threads: int | None = None) -> ModelPack:
    """Load a pack version folder (the one holding `card.json`), at `precision` or the card's default, its model
    runs on `threads` threads each (None: onnxruntime's default).

    The ONNX file that will run is checked against its card's sha256 (ModelIntegrityError when it differs;
    `require_hashes`, default $HAZARDVISION_REQUIRE_MODEL_HASHES, refuses a card without one)."""
    folder = Path(folder)
    card = ModelCard.read(folder / CARD_FILE)
    pack = ModelPack(folder, card, precision or card.default_precision, threads=threads)
    verify_files(folder, card, [str(pack.model_path.relative_to(folder))], require=require_hashes)
    return pack


def detect_with_packs(
    packs: Sequence[ModelPack], images: Sequence[BGRImage], *, weak: float | None = None,
    tiling: TilingMode | None = None,
) -> list[Detections]:
    """Detections of every pack merged per image (each pack batched over the images), down to `weak` confidence
    for a tracker's second stage; see `ModelPack.detect`."""
    per_pack = [pack.detect(images, weak=weak, tiling=tiling) for pack in packs]
    return [Detections.merge(found) for found in zip(*per_pack, strict=True)]
