"""Roboflow Inference's V1 HTTP protocol, as `inference-sdk`'s `InferenceHTTPClient` speaks it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from hazardvision.results import HazardInfo

ALL_PACKS = "hazardvision"
"""The model id of every serving pack at once (each pack is a model of its own too)."""
OBJECT_DETECTION: Literal["object-detection"] = "object-detection"


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Request(BaseModel):
    # The client sends fields of its own (source, disable_active_learning, visualisation options...): ignored.
    model_config = ConfigDict(extra="ignore")

    api_key: str | None = Field(default=None, description="An API key (hv_...); or the query's api_key, or "
                                "Authorization: Bearer.")


class ModelAddRequest(_Request):
    """Load a model: every pack is loaded already, so this only checks that it serves."""

    model_id: str = Field(min_length=1, max_length=200, description="A model of GET /model/registry.")


class InferenceImage(BaseModel):
    """One photo of an inference request."""

    model_config = ConfigDict(extra="ignore")

    type: str = Field(description="base64: the only kind taken here (a URL is never fetched).")
    value: str = Field(description="The photo's bytes (JPEG, PNG, WebP, BMP or TIFF) in base64.")


class ObjectDetectionRequest(_Request):
    """Detect objects in one photo or several."""

    model_id: str = Field(min_length=1, max_length=200, description="A model of GET /model/registry: a pack "
                          f"('ppe'), a pack at its serving version ('ppe/0.2.1'), or '{ALL_PACKS}' (every pack).")
    image: InferenceImage | list[InferenceImage] = Field(description="The photo, or a list of photos.")
    confidence: float | None = Field(default=None, ge=0, le=1, description="Report every class from this "
                                     "confidence up (raised to the key's profile threshold). Default: each class's "
                                     "operating threshold.")
    max_detections: int | None = Field(default=None, ge=1, description="Most predictions per photo (never more "
                                       "than the key's profile allows).")
    class_filter: list[str] | None = Field(default=None, description="Only these classes (as the key's profile "
                                           "names them).")


class RegisteredModel(_Schema):
    """A model the client may run."""

    model_id: str = Field(description="Its id for /infer/object_detection.")
    task_type: Literal["object-detection"] = Field(default=OBJECT_DETECTION, description="Always object-detection.")
    batch_size: int = Field(description="Most photos one request may carry.")
    input_height: int | None = Field(default=None, description="Input size the model runs at, in pixels.")
    input_width: int | None = Field(default=None, description="Input size the model runs at, in pixels.")


class RegisteredModels(_Schema):
    """The models the client may run: each pack, and every pack at once."""

    models: list[RegisteredModel] = Field(description="Every model id this service answers.")


class ImageSize(_Schema):
    """The decoded photo's size."""

    width: int = Field(description="Width in pixels after EXIF orientation.")
    height: int = Field(description="Height in pixels after EXIF orientation.")


class ObjectDetectionPrediction(BaseModel):
    """One detection: its box by centre and size, in pixels of the photo as sent."""

    model_config = ConfigDict(extra="forbid")

    x: float = Field(description="Box centre, pixels from the photo's left.")
    y: float = Field(description="Box centre, pixels from the photo's top.")
    width: float = Field(description="Box width in pixels.")
    height: float = Field(description="Box height in pixels.")
    confidence: float = Field(ge=0, le=1, description="Detector confidence, 0..1.")
    class_name: str = Field(serialization_alias="class", description="The class as the key's client profile names "
                            "it (default: the catalogue class).")
    class_id: int = Field(description="Index of the class among the model's classes.")
    detection_id: str = Field(description="Id of the detection; the finding's id when the service kept the scan.")
    parent_id: str | None = Field(default=None, description="Always null: detections here have no parent step.")
    hazard: HazardInfo | None = Field(default=None, description="For a hazard: what the catalogue says about it "
                                      "(rules, severity, advice).")


class ObjectDetectionResponse(_Schema):
    """The detections of one photo."""

    inference_id: str = Field(description="Id of this photo's inference.")
    time: float = Field(description="Seconds the service spent on the photo.")
    image: ImageSize = Field(description="The photo's width and height, after EXIF orientation.")
    predictions: list[ObjectDetectionPrediction] = Field(
        description="Detections, the most confident first, at most the key's max_predictions.")
    scan_id: str | None = Field(default=None, description="The scan the service kept (GET /v1/scans/{scan_id}), "
                                "when the key's profile keeps scans.")
