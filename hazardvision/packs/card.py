"""`ModelCard`: the typed `card.json` of a pack version, written by packaging and read by everything else.

A card records what the pack runs (classes, thresholds, files, tiling) and how it came about (training,
starting weights, data and their credits, test metrics per precision, dataset and class, speed,
quantisation). Cards of older versions lack the sections added since; those sections are optional, and
`to_json` writes back only what a card holds, so an old card reads and writes back unchanged.
"""

from __future__ import annotations

import json
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hazardvision.errors import InvalidModel, UnknownModel
from hazardvision.packs.tiling import Tiling

CARD_FILE = "card.json"
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class Precision(StrEnum):
    """Which of a pack's ONNX files to run."""

    FLOAT32 = "float32"
    INT8 = "int8"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataSource(_Section):
    """A dataset a pack was trained on, with the credit its licence asks for."""

    name: str = Field(description="Dataset name, e.g. 'ppe-vest'.")
    origin: str = Field(description="Where the data comes from (URL of the publisher).")
    licence: str = Field(description="Licence of the data, e.g. 'CC BY 4.0'.")
    credit: str = Field(description="Attribution text the licence requires.")


class PretrainedStart(_Section):
    """The weights a run started from, and how much of them the architecture took."""

    weights: str = Field(description="Starting weights, relative to the pretrained root.")
    sha256: str = Field(description="SHA-256 of the weights file.")
    credit: str = Field(description="Credit and licence of the weights.")
    tensors: int = Field(ge=0, description="Tensors transferred into the architecture.")
    of_tensors: int = Field(ge=0, description="Tensors of the architecture.")
    parameters: int | None = Field(default=None, ge=0, description="Parameters transferred.")
    of_parameters: int | None = Field(default=None, ge=0, description="Parameters of the architecture.")


class RecordedRecipe(BaseModel):
    """The training recipe as it was when the pack was trained. Recipe fields come and go with the code version,
    so only the lasting ones are typed; the others are kept as they were written."""

    model_config = ConfigDict(extra="allow")

    pack: str = Field(description="Pack name.")
    classes: list[str] = Field(description="Catalogue classes, in model class order.")
    architecture: str = Field(description="ultralytics architecture file.")
    imgsz: int | None = Field(default=None, description="Training input size in pixels.")
    epochs: int | None = Field(default=None, description="Epochs planned.")
    batch: int | None = Field(default=None, description="Photos per batch.")


class Training(_Section):
    """The ultralytics run that produced the weights."""

    epochs: int | None = Field(default=None, description="Epochs trained.")
    imgsz: int | None = Field(default=None, description="Training input size in pixels.")
    batch: int | None = Field(default=None, description="Photos per batch.")
    data: str = Field(default="", description="The data.yaml trained on (a bank snapshot's, as a path on the "
                      "machine that trained).")
    snapshot_id: str | None = Field(default=None, description="Id of the bank snapshot trained on, when it was one.")
    recipe: RecordedRecipe | None = Field(default=None, description="The training recipe as it was then.")
    pretrained: PretrainedStart | None = Field(default=None, description="Starting weights; None: random weights.")


class ThresholdSelection(_Section):
    """How the per-class operating thresholds were chosen."""

    split: str = Field(description="Split they were chosen on, e.g. 'val'.")
    method: str = Field(description="The rule, e.g. maximum F1 at IoU 0.5.")
    f1: dict[str, float] = Field(default_factory=dict, description="F1 reached at each class's threshold.")


class Quantization(_Section):
    """How the int8 model was made."""

    calibration_dataset: str | None = Field(description="Dataset(s) whose training photos calibrated it.")
    photos: int = Field(ge=0, description="Calibration photos.")
    method: str = Field(description="Calibration method: minmax or percentile.")
    float_modules: list[int] = Field(default_factory=list, description="Modules kept in float32 besides the head.")


class ClassMetrics(_Section):
    """Test metrics of one class on one dataset."""

    instances: int = Field(description="Ground-truth boxes of the class.")
    map50: float = Field(description="AP at IoU 0.5.")
    map50_95: float = Field(description="AP averaged over IoU 0.50:0.95.")
    precision: float = Field(description="Precision at the operating confidence, IoU 0.5.")
    recall: float = Field(description="Recall at the operating confidence, IoU 0.5.")


class Evaluation(_Section):
    """Metrics of one precision of a pack on one dataset's split."""

    images: int = Field(description="Photos evaluated.")
    operating_confidence: float = Field(description="Threshold for precision and recall (of classes without one).")
    class_thresholds: dict[str, float] = Field(default_factory=dict,
                                               description="Per-class thresholds of precision and recall.")
    map50: float = Field(description="Mean AP at IoU 0.5 over classes with ground truth.")
    map50_95: float = Field(description="Mean AP at IoU 0.50:0.95 over classes with ground truth.")
    per_class: dict[str, ClassMetrics] = Field(description="Metrics per class.")


class Metrics(_Section):
    """Test-split metrics per precision and dataset."""

    split: str = Field(default="test", description="Split scored.")
    evaluator: str = Field(default="", description="How the metrics were computed.")
    datasets: dict[str, Evaluation] = Field(default_factory=dict, description="float32 metrics per dataset.")
    int8: dict[str, Evaluation] = Field(default_factory=dict, description="int8 metrics per dataset.")
    unlabelled_per_100_photos: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="Per dataset, reported boxes per 100 photos of each class it does not "
        "label (false alarms where the class is known absent).")


class Speed(_Section):
    """Images per second of each precision, measured where the pack was built."""

    images_per_second: dict[str, float] = Field(default_factory=dict, description="Median images/s per precision.")
    photos: int = Field(default=0, ge=0, description="Photos timed.")
    note: str = Field(default="", description="How it was timed.")


class EvaluatedSet(_Section):
    """A dataset split the pack was scored on, with its class map and its content id (for the promotion gate)."""

    dataset: str = Field(description="Dataset folder name under the datasets root.")
    split: str = Field(default="test", description="Split scored.")
    map: dict[str, str] = Field(default_factory=dict, description="Dataset class to catalogue class.")
    drop: list[str] = Field(default_factory=list, description="Dataset classes ignored.")
    train: bool = Field(default=True, description="Whether the pack also trained on the dataset.")
    absent: list[str] = Field(default_factory=list, description="Pack classes the dataset knows to be absent.")
    split_id: str | None = Field(default=None, description="Content id of the split (photos and labels).")


class Plots(_Section):
    """Evaluation plots of one dataset, relative to the card."""

    confusion: str = Field(description="Confusion matrix PNG.")
    pr: str = Field(description="Precision-recall curves PNG.")


class ModelCard(_Section):
    """Machine-readable model card (the Markdown page beside it is for people)."""

    pack: str = Field(pattern=r"^[a-z][a-z0-9-]*$", description="Pack name, e.g. 'ppe'.")
    version: str = Field(min_length=1, description="Version of this pack.")
    architecture: str = Field(description="Detector architecture, e.g. 'yolo26n'.")
    classes: tuple[str, ...] = Field(min_length=1, description="Catalogue classes, in model class order.")
    operating_confidence: float = Field(
        default=0.25, ge=0.0, le=1.0, description="Confidence at which the pack reports findings.")
    exclusive_classes: tuple[tuple[str, ...], ...] = Field(
        default=(), description="Groups of classes that exclude each other on one object (helmet, no_helmet): "
        "of two overlapping boxes of one group only the more confident is reported.")
    tiling: Tiling = Field(default_factory=Tiling, description="Tiled inference of large frames (small, distant "
                           "workers): tile size, overlap, and whether it is on by default.")
    class_thresholds: dict[str, float] = Field(
        default_factory=dict, description="Operating confidence per class, chosen on validation splits by maximum "
        "F1 when the pack was built (never hand-edited); a class not listed uses operating_confidence.")
    model_file: str = Field(default="model.onnx", description="Float32 ONNX file, relative to the card.")
    model_file_int8: str | None = Field(default=None, description="Int8 ONNX file, if the pack has one.")
    default_precision: Precision = Field(
        default=Precision.FLOAT32, description="Precision run when none is asked for: int8 where its test mAP50 is "
        "within 1.5 points of float32 on every split (decided when the pack was built).")
    overlap_iou: float = Field(
        default=0.5, gt=0, le=1, description="IoU above which two boxes of one class or one exclusive group are "
        "taken for one object, and only the more confident is kept (so is a box lying almost wholly in another).")
    weights_file: str | None = Field(default=None, description="The trained ultralytics weights, relative to the "
                                     "card.")
    file_sha256: dict[str, Sha256] = Field(
        default_factory=dict, description="SHA-256 (64 lowercase hex digits) of each model file (model.onnx, "
        "model-int8.onnx, weights.pt), by its name relative to the card: written by packaging and checked when the "
        "pack loads (a file that differs is refused). Empty on cards from before hashes were recorded: they load "
        "with a warning unless HAZARDVISION_REQUIRE_MODEL_HASHES is set.")
    imgsz: int | None = Field(default=None, description="Input size the ONNX models run at, in pixels.")
    status: str | None = Field(default=None, description="How the weights were made.")
    training: Training | None = Field(default=None, description="The training run.")
    threshold_selection: ThresholdSelection | None = Field(default=None, description="How class_thresholds were "
                                                           "chosen; None without per-class thresholds.")
    quantization: Quantization | None = Field(default=None, description="How the int8 model was made; None "
                                              "without one.")
    metrics: Metrics | None = Field(default=None, description="Test-split metrics.")
    speed: Speed | None = Field(default=None, description="Images per second where the pack was built.")
    evaluation_sets: tuple[EvaluatedSet, ...] = Field(default=(), description="The splits the metrics are on.")
    plots: dict[str, Plots] = Field(default_factory=dict, description="float32 evaluation plots per dataset.")
    data_sources: tuple[DataSource, ...] = Field(default=(), description="Training data and credits.")
    held_out: tuple[str, ...] = Field(default=(), description="Datasets scored but kept out of training.")
    code_version: str | None = Field(default=None, description="`git describe` of the code that built the pack "
                                     "('-dirty': uncommitted changes).")
    created: str | None = Field(default=None, description="When the pack was built, UTC, ISO 8601.")

    def threshold(self, class_name: str) -> float:
        """The operating confidence of one class."""
        return self.class_thresholds.get(class_name, self.operating_confidence)

    @classmethod
    def read(cls, path: Path) -> Self:
        """The card at `path`; UnknownModel when it is missing, InvalidModel naming the field when it is bad."""
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise UnknownModel(f"no model pack at {path.parent}: cannot read {path.name}") from error
        try:
            return cls.model_validate(json.loads(text))
        except json.JSONDecodeError as error:
            raise InvalidModel(f"the model card {path} is invalid: not JSON ({error})") from error
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'the card'}: {e['msg']}" for e in error.errors())
            raise InvalidModel(f"the model card {path} is invalid: {problems}") from error

    def to_json(self) -> dict[str, Any]:
        """The card as JSON data: the fields it was made or read with (an older card keeps its shape)."""
        data: dict[str, Any] = self.model_dump(mode="json", exclude_unset=True)
        return data

    def write(self, path: Path) -> None:
        """Write the card atomically: a reloading service never reads half a card."""
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        temporary.write_text(json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(temporary, path)
