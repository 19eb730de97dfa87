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

from hazardvision.detections import Detections
from hazardvision.detector import OnnxDetector
from hazardvision.errors import InvalidModel, UnknownModel
from hazardvision.images import BGRImage
from hazardvision.resources import bundled_path
from hazardvision.similar.embedding import FeatureMaps, split_batch

CARD_FILE = "card.json"
ACTIVE_FILE = "ACTIVE"


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

    def detect(self, images: Sequence[BGRImage], *, confidence: float | None = None) -> list[Detections]:
        """Detections over catalogue class names, tagged with this pack's name."""
        threshold = self.card.operating_confidence if confidence is None else confidence
        return [self._tagged(found) for found in self.detector.detect(images, confidence=threshold)]

    def detect_with_features(
        self, images: Sequence[BGRImage], *, confidence: float | None = None
    ) -> list[tuple[Detections, FeatureMaps]]:
        """Detections and the feature maps of each photo, from one forward pass."""
        threshold = self.card.operating_confidence if confidence is None else confidence
        detector = self.feature_detector
        results: list[tuple[Detections, FeatureMaps]] = []
        for batch, (output, *maps) in detector.runs(images):
            found = detector.postprocess(output, batch.letterboxes, confidence=threshold)
            height, width = batch.tensor.shape[2:]
            features = split_batch(maps, batch.letterboxes, height, width)
            results.extend((self._tagged(d), f) for d, f in zip(found, features, strict=True))
        return results

    def feature_maps(self, images: Sequence[BGRImage]) -> list[FeatureMaps]:
        """The feature maps of each photo (for indexing the bank)."""
        return [maps for _, maps in self.detect_with_features(images)]

    @cached_property
    def embedding_dim(self) -> int:
        """Length of this pack's instance vectors."""
        return self.feature_maps([np.zeros((64, 64, 3), np.uint8)])[0].dim

    def _tagged(self, found: Detections) -> Detections:
        return Detections(found.xyxy, found.confidence, found.class_id, self.card.classes,
                          data={"pack": np.full(len(found), self.name)})


def load_pack(folder: str | Path, precision: Precision = Precision.FLOAT32) -> ModelPack:
    """Load a pack version folder (the one holding `card.json`)."""
    folder = Path(folder)
    card_path = folder / CARD_FILE
    try:
        card = ModelCard.model_validate(json.loads(card_path.read_text(encoding="utf-8")))
    except OSError as error:
        raise UnknownModel(f"no model pack at {folder}: cannot read {CARD_FILE}") from error
    except (json.JSONDecodeError, ValidationError) as error:
        raise InvalidModel(f"the model card {card_path} is invalid: {error}") from error
    return ModelPack(folder, card, precision)


def active_version(pack_folder: Path) -> Path:
    """The version folder of a pack that is in use."""
    marker = pack_folder / ACTIVE_FILE
    if marker.is_file():
        version = pack_folder / marker.read_text(encoding="utf-8").strip()
        if not (version / CARD_FILE).is_file():
            raise InvalidModel(f"{marker} names version {version.name!r}, which has no {CARD_FILE}")
        return version
    versions = sorted(p for p in pack_folder.iterdir() if (p / CARD_FILE).is_file())
    if len(versions) != 1:
        raise InvalidModel(
            f"pack {pack_folder.name} has {len(versions)} versions and no {ACTIVE_FILE} file naming one"
        )
    return versions[0]


def default_models_dir() -> Path:
    """`HAZARDVISION_MODELS` when set, else the bundled packs."""
    override = os.environ.get("HAZARDVISION_MODELS")
    return Path(override) if override else bundled_path("models")


def active_packs(models_dir: Path | None = None, precision: Precision = Precision.FLOAT32) -> list[ModelPack]:
    """The active version of every pack under `models_dir` (the bundled packs by default)."""
    root = models_dir or default_models_dir()
    if not root.is_dir():
        raise UnknownModel(f"no model packs: {root} is not a folder")
    packs = [load_pack(active_version(p), precision) for p in sorted(root.iterdir()) if p.is_dir()]
    if not packs:
        raise UnknownModel(f"no model packs under {root}")
    return packs


def resolve_model(spec: str | Path, precision: Precision = Precision.FLOAT32) -> ModelPack:
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
