"""Training recipes: one YAML file per model pack in the repository's `training/` folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hazardvision.errors import HazardVisionError
from hazardvision.packs.tiling import Tiling
from hazardvision.resources import bundled_path
from hazardvision.yaml_files import describe, load_yaml_model


class RecipeError(HazardVisionError):
    """A training recipe cannot be read or fails validation."""


class Augmentation(BaseModel):
    """ultralytics augmentation settings; the defaults are ultralytics' own."""

    model_config = ConfigDict(extra="forbid")

    hsv_h: float = Field(default=0.015, ge=0, le=1, description="Hue jitter (fraction).")
    hsv_s: float = Field(default=0.7, ge=0, le=1, description="Saturation jitter (fraction).")
    hsv_v: float = Field(default=0.4, ge=0, le=1, description="Brightness jitter (fraction).")
    degrees: float = Field(default=0.0, ge=0, le=180, description="Rotation range in degrees.")
    translate: float = Field(default=0.1, ge=0, le=1, description="Translation range (fraction of size).")
    scale: float = Field(default=0.5, ge=0, le=1, description="Scale jitter (gain range).")
    fliplr: float = Field(default=0.5, ge=0, le=1, description="Probability of a horizontal flip.")
    mosaic: float = Field(default=1.0, ge=0, le=1, description="Probability of a 4-photo mosaic.")
    mixup: float = Field(default=0.0, ge=0, le=1, description="Probability of mixup.")
    close_mosaic: int = Field(default=10, ge=0, description="Epochs at the end trained without mosaic.")


PositiveInt = Annotated[int, Field(ge=1)]
PACKAGING_ONLY = {"serve_imgsz", "calibration", "calibration_method", "int8_float_modules", "operating_confidence",
                  "per_class_thresholds", "exclusive_classes", "replaces", "tiling"}
"""Recipe fields that change how a run is packaged, not the run: changing them resumes the same run."""
OPTIONAL_RUN_SETTINGS = ("lr0", "warmup_epochs")
"""Run settings left out of the run key while unset, so that adding them kept every earlier run's key."""


class EvaluationSet(BaseModel):
    """A labelled dataset whose test split scores the pack, with its classes mapped onto the catalogue."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(description="Dataset folder name under the datasets root, e.g. 'hardhat-head'.")
    split: str = Field(default="test", description="Split to score on.")
    map: dict[str, str] = Field(default_factory=dict, description="Dataset class to catalogue class.")
    drop: list[str] = Field(default_factory=list, description="Dataset classes to ignore.")
    train: bool = Field(default=True, description="Train on its train and val splits too; false holds the dataset "
                        "out of training (scored only), e.g. to measure how the pack does on a source it never saw.")
    absent: list[str] = Field(default_factory=list, description="Pack classes this dataset does not label but "
                              "knows to be absent from its photos (fire in a warehouse): they train as background "
                              "for them (hard negatives). Other unlabelled classes are outside the photo's label "
                              "scope and neither reward nor punish a prediction (see partial_labels).")


class Recipe(BaseModel):
    """How to train one model pack."""

    model_config = ConfigDict(extra="forbid")

    pack: str = Field(pattern=r"^[a-z][a-z0-9-]*$", description="Pack name, e.g. 'ppe'.")
    classes: list[str] = Field(min_length=1, description="Catalogue classes, in model class order.")
    architecture: str = Field(
        pattern=r"^[\w.-]+\.yaml$",
        description="ultralytics architecture file, e.g. 'yolo26n.yaml' (built locally; never a hub download).",
    )
    imgsz: PositiveInt = Field(default=320, description="Training and serving input size (pixels, multiple of 32).")
    serve_imgsz: PositiveInt | None = Field(
        default=None, description="Input size the packaged ONNX models run at (pixels, multiple of 32); default "
        "imgsz. Choose it on the validation split (benchmarks/serving_size.py): a detector trained on small inputs "
        "often finds small, distant objects better at a larger size. Packaging only: it does not change the run.")
    pretrained: str | None = Field(
        default=None, description="Starting weights, relative to the pretrained root (--pretrained-root, "
        "$HAZARDVISION_PRETRAINED, else ../shared/pretrained), read in place, e.g. 'yolov5n-coco/yolov5n.pt'; "
        "tensors whose names and shapes match the architecture are transferred. None: from random weights.")
    partial_labels: Literal["scoped", "naive"] = Field(
        default="scoped", description="scoped: a photo's class loss counts only the classes its dataset labels or "
        "lists as absent, and mosaics combine photos of one dataset; naive: every unlabelled object is a negative.")
    originals_only: bool = Field(
        default=False, description="Train on one photo per original (Roboflow's augmented copies '<orig>.rf.<hash>' "
        "are augmentations ultralytics makes itself): about a third less time per epoch on ppe-vest and "
        "forklift-person.")
    repeat: dict[str, PositiveInt] = Field(
        default_factory=dict, description="Class-aware repeat sampling: a training photo with a box of a named "
        "class is seen this many times per epoch (the largest factor of its classes), e.g. {fire: 3} for a rare "
        "class. Val and test are never repeated.")
    epochs: PositiveInt = Field(default=100, description="Epochs to train.")
    lr0: float | None = Field(default=None, gt=0, le=1, description="Initial learning rate (None: ultralytics' "
                              "0.01); lower it when continuing from a trained pack, e.g. 0.005.")
    warmup_epochs: float | None = Field(default=None, ge=0, description="Epochs of learning-rate warm-up (None: "
                                        "ultralytics' 3); a continued run needs less.")
    batch: PositiveInt = Field(default=16, description="Photos per batch.")
    patience: int = Field(default=0, ge=0, description="Stop after this many epochs without improvement (0: never).")
    seed: int = Field(default=0, description="Random seed.")
    workers: int = Field(default=2, ge=0, description="Data-loading processes.")
    cache: bool = Field(default=True, description="Keep decoded training photos in memory.")
    save_period: int = Field(default=0, ge=0, description="Also keep the weights of every n-th epoch as "
                             "weights/epoch<i>.pt, i counted from 0 (epoch5.pt: after 6 epochs), e.g. to compare "
                             "runs at an equal budget (0: never).")
    operating_confidence: float = Field(default=0.25, ge=0, le=1, description="Confidence at which the pack reports "
                                        "a class that has no threshold of its own (see per_class_thresholds).")
    per_class_thresholds: bool = Field(default=True, description="Choose each class's operating threshold on the "
                                       "validation splits by maximum F1 when packaging (recorded in the card).")
    tiling: Tiling = Field(default_factory=Tiling, description="Tiled inference of large frames, copied into the "
                           "card: tile size, overlap, and the default mode (chosen on the validation small-worker "
                           "set, benchmarks/small_workers.py). Packaging only.")
    replaces: list[str] = Field(default_factory=list, description="Packs this one takes over from: a version it "
                                "builds is staged (not served) until `models promote PACK VERSION --replaces ...` "
                                "passes the per-class gate against them. Packaging only.")
    exclusive_classes: list[list[str]] = Field(
        default_factory=list, description="Groups of classes that exclude each other on one object, e.g. "
        "[[helmet, no_helmet], [vest, no_vest]]: of overlapping boxes of one group the pack reports one.")
    augmentation: Annotated[Augmentation, Field(description="Augmentation settings.")] = Augmentation()
    evaluation: list[EvaluationSet] = Field(
        default_factory=list, description="Datasets whose test splits score the pack (and gate its promotion)."
    )
    calibration: str | list[str] | None = Field(
        default=None, description="Dataset (or datasets, sharing the photos evenly) whose training photos calibrate "
        "the int8 model (default: the first evaluation dataset). Packaging only."
    )
    int8_float_modules: list[int] = Field(
        default_factory=list, description="Modules (`model.<i>` of the architecture) kept in float32 in the int8 "
        "model besides the head: the layers that lose most when quantised (benchmarks/int8_layers.py measures "
        "candidates on the val splits). Packaging only.")
    calibration_method: Literal["minmax", "percentile"] = Field(
        default="minmax", description="How int8 activation ranges are set from the calibration photos: their "
        "extremes, or the 99.99th percentile (robust to a few outlying activations). Packaging only.")

    @model_validator(mode="after")
    def _classes_known(self) -> Recipe:
        named = {f"exclusive_classes {group}": group for group in self.exclusive_classes}
        named |= {f"absent of {spec.dataset}": spec.absent for spec in self.evaluation}
        named["repeat"] = list(self.repeat)
        for where, names in named.items():
            unknown = sorted(set(names) - set(self.classes))
            if unknown:
                raise ValueError(f"{where} names {unknown}, which are not classes of the recipe {self.classes}")
        return self

    def with_overrides(self, **overrides: Any) -> Recipe:
        """A copy with the given fields replaced (None values are ignored), validated again."""
        values = self.model_dump()
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return Recipe.model_validate(values)
        except ValidationError as error:
            raise RecipeError(f"invalid recipe override: {describe(error)}") from error

    def run_key(self) -> str:
        """The settings that identify a training run (packaging-only settings left out), as JSON."""
        unset = {name for name in OPTIONAL_RUN_SETTINGS if getattr(self, name) is None}
        return self.model_dump_json(exclude=PACKAGING_ONLY | unset)

    def ultralytics_arguments(self) -> dict[str, Any]:
        """Keyword arguments for `YOLO.train`."""
        return {
            "imgsz": self.imgsz, "epochs": self.epochs, "batch": self.batch, "patience": self.patience or 10_000,
            "seed": self.seed, "workers": self.workers, "cache": "ram" if self.cache else False,
            "save_period": self.save_period or -1,
            **{name: getattr(self, name) for name in OPTIONAL_RUN_SETTINGS if getattr(self, name) is not None},
            **self.augmentation.model_dump(),
        }


def recipe_path(spec: str) -> Path:
    """A recipe file, or the name of one in the repository's training/recipes/."""
    path = Path(spec)
    if path.suffix in {".yaml", ".yml"}:
        return path
    return bundled_path(f"training/recipes/{spec}.yaml")


def load_recipe(path: Path) -> Recipe:
    """Read and validate a recipe file."""
    return load_yaml_model(path, Recipe, RecipeError, "recipe")
