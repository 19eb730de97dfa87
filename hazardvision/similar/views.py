"""The eight views of a query photo (quarter turns, each also mirrored) for whole-photo queries.

Copies of one scene often reach the bank turned by quarter turns or flipped (phone photos without
EXIF, augmented copies); neither pooled detector features nor a thumbnail are invariant to that,
so a whole-photo query compares each view and keeps the best score per case (near-duplicate
recall@1 0.62 with the upright view alone, 0.97 with the eight, in `benchmarks/similar_quality.py`'s
first measurement). Box queries and scans use the upright view only: turning the photo did not help
box queries there (0.955 upright, 0.903 with quarter turns) and a scan's forward pass is shared
with detection.
"""

from __future__ import annotations

import numpy as np

from hazardvision.images import BGRImage


def photo_views(image: BGRImage) -> list[BGRImage]:
    """The photo turned by 0 to 3 quarter turns, each as it is and mirrored left to right."""
    views = []
    for turns in range(4):
        turned = np.rot90(image, turns)
        views += [np.ascontiguousarray(turned), np.ascontiguousarray(turned[:, ::-1])]
    return views
