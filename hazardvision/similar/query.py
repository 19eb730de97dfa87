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
