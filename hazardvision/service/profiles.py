"""Client profiles: what a client of a foreign protocol (DeepStack, Roboflow Inference) sees, per API key.

A camera that polls several times a second wants few, confident predictions under labels it knows,
and should neither fill the scan archive nor write an audit record per frame; an integration that
scans now and then may keep every request as a scan. Profiles are settings (`client_profiles`,
keyed by API key name; `default_client_profile` for every other key).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from hazardvision.catalogue import Catalogue
from hazardvision.errors import InvalidSetting
from hazardvision.results import Box, HazardInfo, ScanResult


class Recording(StrEnum):
    SCANS = "scans"
    """Each request is kept as a scan (photo, findings, one audit record), like POST /v1/scans."""
    SUMMARY = "summary"
    """Nothing is kept; the audit log gets one summary record per key and period."""


class ClientProfile(BaseModel):
    """What one API key's protocol client is sent, and what is kept of its requests."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    labels: dict[str, str] | None = Field(
        default=None, description="Catalogue class -> the label this client is sent (Frigate, say, knows only the "
        "labels of its labelmap and stops reading at the first one it does not know); classes left out are not "
        "sent. None: every class under its catalogue name.")
    hazards_only: bool = Field(
        default=False, description="Send hazards only, not context classes such as helmet or vest.")
    min_confidence: float | None = Field(
        default=None, ge=0, le=1, description="The lowest confidence this client is ever sent, its operating "
        "threshold (Frigate ignores anything under 0.4); a request's min_confidence under it is raised to it. "
        "None: the request's min_confidence, else each class's operating threshold.")
    max_predictions: int = Field(
        default=20, ge=1, le=1000, description="Most predictions per photo, the most confident first (Frigate has "
        "room for 20).")
    record: Recording = Field(
        default=Recording.SCANS, description="scans: keep each request as a scan with its similar cases, audited "
        "one by one; summary: keep nothing and audit one summary per key and `summary_seconds` (the fast path, "
        "for cameras polling several times a second; no similar-case search).")
    summary_seconds: float = Field(
        default=300.0, gt=0, le=86_400, description="Period of an audit summary (record: summary), in seconds; a "
        "summary is written by the first request after its period, and when the service stops.")

    def check(self, catalogue: Catalogue, key_name: str) -> None:
        """Refuse labels for classes the catalogue does not know (a typo would silently send nothing)."""
        known = {entry.class_name for entry in catalogue.classes}
        unknown = sorted(set(self.labels or {}) - known)
        if unknown:
            raise InvalidSetting(f"the client profile of {key_name} maps classes the catalogue does not know: "
                                 f"{', '.join(unknown)}; classes are {', '.join(sorted(known))}")

    def confidence(self, asked: float | None) -> float | None:
        """The scan's confidence override for a request that asked for `asked` (None: per-class thresholds)."""
        if asked is None:
            return None
        return asked if self.min_confidence is None else max(asked, self.min_confidence)


@dataclass(frozen=True)
class ClientPrediction:
    """One detection as a protocol client is sent it."""

    label: str
    class_name: str
    class_id: int
    confidence: float
    box: Box
    pack: str
    hazard: HazardInfo | None
    finding_id: str | None


def client_view(result: ScanResult, profile: ClientProfile, class_ids: Mapping[str, int], *,
                stored: bool) -> list[ClientPrediction]:
    """The scan's detections as the profile shows them: its labels and threshold, most confident first, capped.

    `class_ids`: class name -> the id the client is told (the packs' class order); `stored`: whether the scan
    was kept, so that its findings can be reviewed by id.
    """
    findings = {(f.class_name, f.pack, f.box.x1, f.box.y1, f.box.x2, f.box.y2): f for f in result.findings}
    floor = profile.min_confidence or 0.0
    predictions = []
    for obj in sorted(result.objects, key=lambda o: -o.confidence):
        if obj.confidence < floor or (profile.hazards_only and not obj.is_hazard):
            continue
        label = obj.class_name if profile.labels is None else profile.labels.get(obj.class_name)
        if label is None:
            continue
        finding = findings.get((obj.class_name, obj.pack, obj.box.x1, obj.box.y1, obj.box.x2, obj.box.y2))
        predictions.append(ClientPrediction(
            label=label, class_name=obj.class_name, class_id=class_ids.get(obj.class_name, -1),
            confidence=obj.confidence, box=obj.box, pack=obj.pack, hazard=finding.hazard if finding else None,
            finding_id=finding.id if finding and stored else None))
        if len(predictions) == profile.max_predictions:
            break
    return predictions
