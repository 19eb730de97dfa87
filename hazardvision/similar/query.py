"""What a similar-case query asks for (kept apart so that a scan can name it without loading FAISS)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SimilarQuery:
    """Which similar cases to return."""

    k: int = 5
    """How many cases, best first."""
    same_class: bool = True
    """Only cases of the finding's own class (the same hazard); False searches every class."""
    site: str | None = None
    """Only cases recorded at this site."""
    enterprise: str | None = None
    """Only cases of this enterprise."""
    min_score: float | None = None
    """Only cases at least this similar (cosine, -1..1)."""
    false_alarm_score: float | None = None
    """Flag a finding as a likely false alarm when a rejected finding of its class is at least this similar
    (cosine of their box vectors) on a photo of the same scene (see `false_alarm_scene`); None: no check."""
    false_alarm_scene: float = -1.0
    """How alike the photos must look for that: cosine of their grey thumbnails, upright or mirrored (-1: any)."""
    false_alarm_place: float = -1.0
    """...and how much the two boxes must overlap in the frame: IoU of the boxes in photo-relative coordinates, the
    rejected one taken upright or mirrored (-1: anywhere). A rejected false alarm seen again sits where it sat."""
    suppress_false_alarms: bool = False
    """Leave flagged findings out of the scan's findings (they stay among its objects)."""
