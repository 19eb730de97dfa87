"""The DeepStack API's answers, as Frigate, Home Assistant, Blue Iris and CodeProject.AI read them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from hazardvision.results import HazardInfo

PREFIX = "/v1/vision"
"""Every DeepStack path starts here; its errors answer in DeepStack's shape."""

_STATUS = {415: 400, 422: 400}
"""DeepStack answers 400 to whatever is wrong with the request (no image, a bad min_confidence)."""


def deepstack_status(status: int) -> int:
    """The status DeepStack gives where the service's own answer would be `status`."""
    return _STATUS.get(status, status)


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeepStackPrediction(_Schema):
    """One detection, in pixels of the photo as sent."""

    label: str = Field(description="The class as the key's client profile names it (default: the catalogue class).")
    confidence: float = Field(ge=0, le=1, description="Detector confidence, 0..1.")
    x_min: int = Field(description="Left edge, pixels from the photo's left.")
    y_min: int = Field(description="Top edge, pixels from the photo's top.")
    x_max: int = Field(description="Right edge, pixels from the photo's left.")
    y_max: int = Field(description="Bottom edge, pixels from the photo's top.")
    hazard: HazardInfo | None = Field(default=None, description="For a hazard: what the catalogue says about it "
                                      "(rules, severity, advice). DeepStack clients ignore it.")
    finding_id: str | None = Field(default=None, description="For a hazard of a scan the service kept: the "
                                   "finding's id, to review it (POST /v1/findings/{finding_id}/review).")


class DeepStackDetection(_Schema):
    """DeepStack's answer to a photo."""

    success: Literal[True] = Field(default=True, description="Always true here; errors answer false.")
    predictions: list[DeepStackPrediction] = Field(
        description="Detections, the most confident first, at most the key's max_predictions.")
    duration: int = Field(default=0, description="Milliseconds the service spent on the photo.")
    scan_id: str | None = Field(default=None, description="The scan the service kept (GET /v1/scans/{scan_id}), "
                                "when the key's profile keeps scans.")


class DeepStackModels(_Schema):
    """The custom models: the packs that serve."""

    success: Literal[True] = Field(default=True, description="Always true here; errors answer false.")
    models: list[str] = Field(description="Pack names, each one a model of POST /v1/vision/custom/{model}.")


class DeepStackError(_Schema):
    """DeepStack's error answer."""

    success: Literal[False] = Field(default=False, description="Always false.")
    error: str = Field(description="What went wrong and what to do about it.")
