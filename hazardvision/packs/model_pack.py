"""Model packs: an ONNX detector plus its card, kept in `models/<pack>/<version>/`.

A pack folder holds one folder per version; `models/<pack>/ACTIVE` names the version the
scan and the service use (or the only version, when there is one).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from enum import StrEnum
from functools import cached_property
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hazardvision.boxes import one_box_per_object
from hazardvision.detections import Detections
from hazardvision.errors import InvalidModel, UnknownModel
from hazardvision.images import BGRImage
from hazardvision.packs.detector import OnnxDetector
from hazardvision.packs.embedding import FeatureMaps, split_batch
from hazardvision.packs.tiling import Tiling, TilingMode, crops, merge_tiles
from hazardvision.resources import bundled_path

CARD_FILE = "card.json"
ACTIVE_FILE = "ACTIVE"
"""Names the version in use; empty for a pack that is staged (built, not promoted yet)."""
REPLACED_FILE = "REPLACED_BY"
"""Present in a pack retired in favour of another (`models promote --replaces`): it no longer serves."""


class Precision(StrEnum):
    """Which of a pack's ONNX files to run."""

    FLOAT32 = "float32"
    INT8 = "int8"


class DataSource(BaseModel):
    """A dataset a pack was trained on, with the credit its licence asks for."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Dataset name, e.g. 'ppe-vest'.")
    origin: str = Field(description="Where the data comes from (URL of the publisher).")
    licence: str = Field(description="Licence of the data, e.g. 'CC BY 4.0'.")
    credit: str = Field(description="Attribution text the licence requires.")


class ModelCard(BaseModel):
    """Machine-readable model card (the Markdown page beside it is for people)."""

    model_config = ConfigDict(extra="allow")

    pack: str = Field(pattern=r"^[a-z][a-z0-9-]*$", description="Pack name, e.g. 'ppe'.")
    version: str = Field(min_length=1, description="Version of this pack.")
    architecture: str = Field(description="Detector architecture, e.g. 'yolo26n'.")
    model_file: str = Field(default="model.onnx", description="Float32 ONNX file, relative to the card.")
    model_file_int8: str | None = Field(default=None, description="Int8 ONNX file, if the pack has one.")
    classes: tuple[str, ...] = Field(min_length=1, description="Catalogue classes, in model class order.")
    operating_confidence: float = Field(
        default=0.25, ge=0.0, le=1.0, description="Confidence at which the pack reports findings."
    )
    data_sources: tuple[DataSource, ...] = Field(default=(), description="Training data and credits.")
    default_precision: Precision = Field(
        default=Precision.FLOAT32, description="Precision run when none is asked for: int8 where its test mAP50 is "
        "within 1.5 points of float32 on every split (decided when the pack was built).")
    class_thresholds: dict[str, float] = Field(
        default_factory=dict, description="Operating confidence per class, chosen on validation splits by maximum "
        "F1 when the pack was built (never hand-edited); a class not listed uses operating_confidence.")
    exclusive_classes: tuple[tuple[str, ...], ...] = Field(
        default=(), description="Groups of classes that exclude each other on one object (helmet, no_helmet): "
        "of two overlapping boxes of one group only the more confident is reported.")
    tiling: Tiling = Field(default_factory=Tiling, description="Tiled inference of large frames (small, distant "
                           "workers): tile size, overlap, and whether it is on by default.")
    overlap_iou: float = Field(
        default=0.5, gt=0, le=1, description="IoU above which two boxes of one class or one exclusive group are "
        "taken for one object, and only the more confident is kept (so is a box lying almost wholly in another).")

    def threshold(self, class_name: str) -> float:
        """The operating confidence of one class."""
        return self.class_thresholds.get(class_name, self.operating_confidence)


class ModelPack:
    """One version of a pack, ready to detect; the ONNX session loads on first use."""

    def __init__(self, folder: Path, card: ModelCard, precision: Precision = Precision.FLOAT32) -> None:
        self.folder = folder
        self.card = card
        self.precision = precision
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
        detector = OnnxDetector(self.model_path)
        if len(detector.class_names) != len(self.card.classes):
            raise InvalidModel(
                f"{detector.path} has {len(detector.class_names)} classes but its card lists "
                f"{len(self.card.classes)}: {list(self.card.classes)}"
            )
        return detector

    @cached_property
    def feature_detector(self) -> OnnxDetector:
        """The same model, also returning the feature maps that similar-case embeddings pool from."""
        return OnnxDetector(self.model_path, features=True)

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



def load_pack(folder: str | Path, precision: Precision | None = None) -> ModelPack:
    """Load a pack version folder (the one holding `card.json`), at `precision` or the card's default."""
    folder = Path(folder)
    card_path = folder / CARD_FILE
    try:
        card = ModelCard.model_validate(json.loads(card_path.read_text(encoding="utf-8")))
    except OSError as error:
        raise UnknownModel(f"no model pack at {folder}: cannot read {CARD_FILE}") from error
    except (json.JSONDecodeError, ValidationError) as error:
        raise InvalidModel(f"the model card {card_path} is invalid: {error}") from error
    return ModelPack(folder, card, precision or card.default_precision)


def active_version(pack_folder: Path) -> Path:
    """The version folder of a pack that is in use."""
    marker = pack_folder / ACTIVE_FILE
    if marker.is_file():
        name = marker.read_text(encoding="utf-8").strip()
        if not name:
            raise InvalidModel(f"pack {pack_folder.name} is staged (its {ACTIVE_FILE} file is empty): promote a "
                               f"version with `hazardvision models promote {pack_folder.name} VERSION`")
        version = pack_folder / name
        if not (version / CARD_FILE).is_file():
            raise InvalidModel(f"{marker} names version {version.name!r}, which has no {CARD_FILE}")
        return version
    versions = sorted(p for p in pack_folder.iterdir() if (p / CARD_FILE).is_file())
    if len(versions) != 1:
        raise InvalidModel(
            f"pack {pack_folder.name} has {len(versions)} versions and no {ACTIVE_FILE} file naming one"
        )
    return versions[0]


def serves(pack_folder: Path) -> bool:
    """Whether a pack folder takes part in scans: neither staged (empty ACTIVE) nor replaced by another pack."""
    if not pack_folder.is_dir() or (pack_folder / REPLACED_FILE).exists():
        return False
    marker = pack_folder / ACTIVE_FILE
    return not marker.is_file() or bool(marker.read_text(encoding="utf-8").strip())


def serving_pack_folders(models_dir: Path) -> list[Path]:
    """The pack folders under `models_dir` that take part in scans, by name."""
    return [p for p in sorted(models_dir.iterdir()) if serves(p)]


def default_models_dir() -> Path:
    """`HAZARDVISION_MODELS` when set, else the bundled packs."""
    override = os.environ.get("HAZARDVISION_MODELS")
    return Path(override) if override else bundled_path("models")


def active_packs(models_dir: Path | None = None, precision: Precision | None = None) -> list[ModelPack]:
    """The active version of every pack under `models_dir` (the bundled packs by default)."""
    root = models_dir or default_models_dir()
    if not root.is_dir():
        raise UnknownModel(f"no model packs: {root} is not a folder")
    packs = [load_pack(active_version(p), precision) for p in serving_pack_folders(root)]
    if not packs:
        raise UnknownModel(f"no model packs under {root}")
    return packs


def resolve_model(spec: str | Path, precision: Precision | None = None) -> ModelPack:
    """A pack from `--model`: a pack version folder, a pack folder, or a bare ONNX file (run as it is)."""
    path = Path(spec)
    if path.is_file() and path.suffix == ".onnx":
        detector = OnnxDetector(path)
        name = re.sub(r"[^a-z0-9-]+", "-", path.stem.lower()).strip("-")
        card = ModelCard(pack=name if name[:1].isalpha() else f"model-{name}", version="file",
                         architecture="unknown", model_file=path.name, classes=detector.class_names)
        pack = ModelPack(path.parent, card)
        pack.__dict__["detector"] = detector  # reuse the session opened to read the class names
        return pack
    if (path / CARD_FILE).is_file():
        return load_pack(path, precision)
    if path.is_dir():
        return load_pack(active_version(path), precision)
    raise UnknownModel(f"--model {spec}: no such ONNX file, pack folder or pack version folder")
