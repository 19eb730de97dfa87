"""The scan result: what the CLI prints with `--json` and the service returns.

Every field carries a description, which lands in the service's OpenAPI schema.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from hazardvision.catalogue import CatalogueEntry, Category, Rule, Severity, Text
from hazardvision.frame_quality import FrameQuality


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Box(_Schema):
    """A box in pixels of the original, upright photo."""

    x1: float = Field(description="Left edge, pixels from the photo's left.")
    y1: float = Field(description="Top edge, pixels from the photo's top.")
    x2: float = Field(description="Right edge, pixels from the photo's left.")
    y2: float = Field(description="Bottom edge, pixels from the photo's top.")


class ImageInfo(_Schema):
    """The decoded photo."""

    width: int = Field(description="Width in pixels after EXIF orientation.")
    height: int = Field(description="Height in pixels after EXIF orientation.")
    sha256: str = Field(description="SHA-256 of the uploaded bytes, hex.")


class ModelRef(_Schema):
    """A model pack version that took part in the scan."""

    pack: str = Field(description="Model pack name, e.g. 'ppe'.")
    version: str = Field(description="Version of the pack.")
    precision: str = Field(default="float32", description="float32 or int8: which of the pack's models ran.")


class HazardInfo(_Schema):
    """What the catalogue says about a hazard class."""

    code: str = Field(description="Stable hazard code from the catalogue.")
    name: Text = Field(description="Hazard name in English and Simplified Chinese.")
    severity: Severity = Field(description="low, medium, high or critical.")
    category: Category = Field(description="Hazard family, e.g. ppe or fire.")
    rules: list[Rule] = Field(description="Rules the hazard breaks.")
    advice: Text = Field(description="How to rectify it.")

    @classmethod
    def of(cls, entry: CatalogueEntry) -> HazardInfo | None:
        """The entry's details, or None for a class that is not a hazard (context such as `helmet`)."""
        if not entry.hazard or entry.advice is None:
            return None
        return cls(code=entry.code, name=entry.name, severity=entry.severity, category=entry.category,
                   rules=list(entry.rules), advice=entry.advice)


class SimilarCase(_Schema):
    """A past case from the sample bank that looks like this finding."""

    case_id: int = Field(description="Id of the case in the sample bank.")
    annotation_id: int | None = Field(
        default=None, description="Id of the matched instance (box) in the case; null for a whole-photo match.")
    score: float = Field(description="Cosine similarity of the embeddings, -1..1; higher is closer.")
    class_name: str | None = Field(default=None, description="Class of the matched instance.")
    hazard_code: str | None = Field(default=None, description="Catalogue hazard code of that class, if a hazard.")
    box: Box | None = Field(default=None, description="The matched instance's box in the case's photo.")
    thumbnail: str | None = Field(
        default=None, description="Thumbnail of the matched instance: a file path in the CLI, "
        "`/v1/cases/{case_id}/thumbnail?annotation={annotation_id}` in the service.")
    source: str = Field(description="Dataset or scan source the case came from.")
    site: str | None = Field(default=None, description="Site of the case.")
    enterprise: str | None = Field(default=None, description="Enterprise of the case.")
    captured_at: dt.datetime | None = Field(default=None, description="When the case's photo was taken.")
    description: str | None = Field(default=None, description="What the case shows.")
    rectification: str | None = Field(default=None, description="How the hazard was rectified.")


class _Detected(_Schema):
    """What every detection reports."""

    class_name: str = Field(description="Catalogue class, e.g. 'no_helmet' or 'helmet'.")
    confidence: float = Field(ge=0, le=1, description="Detector confidence, 0..1.")
    box: Box = Field(description="Where it is in the photo.")
    pack: str = Field(description="Model pack that detected it.")


class DetectedObject(_Detected):
    """One detection, hazard or context."""

    is_hazard: bool = Field(description="Whether the catalogue marks this class as a hazard.")


class Finding(_Detected):
    """A hazard found in the photo, explained."""

    id: str = Field(description="Finding id, unique across scans; used to review the finding.")
    hazard: HazardInfo = Field(description="Hazard details from the catalogue.")
    similar_cases: list[SimilarCase] = Field(
        default_factory=list, description="Similar past cases from the sample bank, best first."
    )
    likely_false_alarm: SimilarCase | None = Field(
        default=None, description="A finding an inspector rejected before that this one closely matches (the "
        "rejected case, with its score): probably the same false alarm again. The service can leave such findings "
        "out (setting suppress_false_alarms).")


class QualityInfo(_Schema):
    """Whether the photo or frame shows a scene at all; one that does not is never scanned for hazards."""

    status: Literal["ok", "no_signal", "view_obstructed", "frozen"] = Field(
        default="ok", description="ok; no_signal (uniform or pure noise); view_obstructed (almost black or blown "
        "out: lens covered or blinded); frozen (a camera repeats one picture; camera frames only).")
    reason: str = Field(default="", description="What was seen, for a status other than ok.")

    @classmethod
    def of(cls, quality: FrameQuality) -> QualityInfo:
        return cls(status=quality.status.value, reason=quality.reason)


class ScanResult(_Schema):
    """Everything hazardvision found in one photo."""

    source: str = Field(description="The photo as given: a path in the CLI, a file name in the service.")
    image: ImageInfo = Field(description="The decoded photo.")
    models: list[ModelRef] = Field(description="Model packs that scanned the photo.")
    findings: list[Finding] = Field(description="Hazards, most severe and most confident first.")
    objects: list[DetectedObject] = Field(description="Every detection, hazard or not, most confident first.")
    bank_case_id: int | None = Field(default=None, description="The sample-bank case this very photo is (same "
                                     "bytes), if any; its own boxes are never among its similar cases.")
    frame_quality: QualityInfo = Field(default_factory=QualityInfo, description="Whether the photo shows a scene; "
                                       "when not, it was not scanned for hazards and findings is empty.")
    timings_ms: dict[str, float] = Field(description="Milliseconds spent per step of the scan.")


class ScanError(_Schema):
    """Why one photo could not be scanned."""

    source: str = Field(description="The photo as given.")
    error: str = Field(description="Error type, e.g. 'InvalidImage'.")
    message: str = Field(description="What went wrong and what to do about it.")
