"""The bank's test-split cases as labelled photos, for the promotion gate to score packs on."""

from __future__ import annotations

from pathlib import Path

from hazardvision.bank.bank import SampleBank
from hazardvision.packs.evaluation import LabelledPhoto

SCORED_ORIGINS = frozenset({"imported", "confirmed"})
"""Annotations that say an object is there (a rejected finding says it is not)."""
PAGE = 500


def test_split_photos(bank: SampleBank, *, limit: int = 2000) -> list[LabelledPhoto]:
    """Up to `limit` cases imported into the test split of their dataset, with their imported and confirmed boxes."""
    photos: list[LabelledPhoto] = []
    while len(photos) < limit:
        page = bank.cases(split="test", limit=min(PAGE, limit - len(photos)), offset=len(photos))
        photos += [LabelledPhoto(image=Path(case.image_path), source=case.source, sha256=case.image_sha256,
                                 boxes=tuple((a.class_name, *a.box) for a in case.annotations
                                             if a.origin in SCORED_ORIGINS))
                   for case in page]
        if len(page) < PAGE:
            break
    return photos
