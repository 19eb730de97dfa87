"""Label Studio's ML backend protocol (/label-studio/health, /setup, /predict), as Label Studio sends and reads it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

PREFIX = "/label-studio"
"""The backend's URL in Label Studio is the service's address with this path."""


class _Request(BaseModel):
    # Label Studio sends fields of its own (params with the task data login, context, extra_params): ignored.
    model_config = ConfigDict(extra="ignore")

    project: str = Field(default="", max_length=200, description="The project as Label Studio names it: "
                         "`<id>.<created-at timestamp>`.")


class SetupRequest(_Request):
    """Label Studio connecting a project to this backend."""

    label_config: str = Field(default="", validation_alias="schema", max_length=1_000_000,
                              description="The project's label config (XML).")
    hostname: str | None = Field(default=None, max_length=2000, description="Label Studio's address, to resolve "
                                 "task images (`/data/upload/...`) against.")
    access_token: str | None = Field(default=None, max_length=2000, description="A Label Studio token to fetch "
                                     "task images with.")


class Task(BaseModel):
    """A Label Studio task: its id and data (the image's URL under the label config's `$variable`)."""

    model_config = ConfigDict(extra="ignore")

    id: int | str | None = Field(default=None, description="Task id.")
    data: dict[str, Any] = Field(default_factory=dict, description="The task's data, e.g. {\"image\": "
                                 "\"/data/upload/1/photo.jpg\"}.")


class PredictRequest(_Request):
    """Label Studio asking for pre-annotations of some tasks."""

    tasks: list[Task] = Field(default_factory=list, description="The tasks to pre-annotate.")
    label_config: str = Field(default="", max_length=1_000_000, description="The project's label config (XML).")


class RectangleValue(BaseModel):
    """A box in percent of the image (after EXIF orientation, as Label Studio shows it)."""

    model_config = ConfigDict(extra="forbid")

    x: float = Field(ge=0, le=100, description="Left edge, percent of the image width.")
    y: float = Field(ge=0, le=100, description="Top edge, percent of the image height.")
    width: float = Field(ge=0, le=100, description="Width, percent of the image width.")
    height: float = Field(ge=0, le=100, description="Height, percent of the image height.")
    rotation: float = Field(default=0, description="Always 0: boxes are upright.")
    rectanglelabels: list[str] = Field(description="The box's label, one of the control's labels.")


class RegionMeta(BaseModel):
    """What Label Studio shows as the region's meta: the hazard's code, severity, name and advice."""

    model_config = ConfigDict(extra="forbid")

    text: list[str] = Field(description="Lines shown with the region.")


class RegionResult(BaseModel):
    """One pre-annotated box."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Region id.")
    from_name: str = Field(description="The RectangleLabels control.")
    to_name: str = Field(description="The Image tag it draws on.")
    type: Literal["rectanglelabels"] = Field(default="rectanglelabels", description="Always rectanglelabels.")
    original_width: int = Field(description="Image width in pixels.")
    original_height: int = Field(description="Image height in pixels.")
    image_rotation: int = Field(default=0, description="Always 0.")
    value: RectangleValue = Field(description="The box and its label.")
    score: float = Field(ge=0, le=1, description="Detector confidence, 0..1.")
    meta: RegionMeta | None = Field(default=None, description="For a hazard: what the catalogue says about it.")


class TaskPrediction(BaseModel):
    """The pre-annotation of one task (in the order of the request's tasks)."""

    model_config = ConfigDict(extra="forbid")

    model_version: str = Field(description="The serving packs' versions, e.g. 'fire@0.3.0+ppe@0.2.1'.")
    score: float | None = Field(default=None, ge=0, le=1, description="Mean confidence of the boxes (none without "
                                "boxes).")
    result: list[RegionResult] = Field(description="The boxes, most confident first.")
    error: str | None = Field(default=None, description="Why this task got no boxes (its image could not be "
                              "fetched or decoded); the other tasks are answered.")


class PredictResponse(BaseModel):
    """Pre-annotations, one per task."""

    model_config = ConfigDict(extra="forbid")

    results: list[TaskPrediction] = Field(description="One prediction per task, in the request's order.")
    model_version: str = Field(description="The serving packs' versions.")


class LabelMapping(BaseModel):
    """How the project's labels map onto catalogue classes."""

    model_config = ConfigDict(extra="forbid")

    labels: dict[str, str] = Field(description="Label Studio label -> the catalogue class it pre-annotates.")
    unmapped: list[str] = Field(description="Labels with no catalogue class: never pre-annotated (map them in "
                                "settings label_studio.labels).")


class SetupResponse(LabelMapping):
    """The backend's answer to a project's setup."""

    model_version: str = Field(description="The serving packs' versions.")
    image_host: str | None = Field(description="The Label Studio host task images are fetched from (None: none "
                                   "known yet, set label_studio.url or let Label Studio send its hostname).")


class BackendHealth(BaseModel):
    """Label Studio's health check."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["UP", "LOADING"] = Field(description="UP once the models serve.")
    model_class: str = Field(default="hazardvision", description="Always hazardvision.")
    model_version: str | None = Field(default=None, description="The serving packs' versions, once loaded.")
