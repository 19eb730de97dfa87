"""Rotated views of a query photo: explicit similar-case queries look at the photo four ways.

Copies of one scene often reach the bank turned by quarter turns or flipped (phone photos without
EXIF, augmented copies); pooled detector features are not invariant to that, so a query compares
each view and keeps the best score per case. A scan's findings use the single upright view: there
the forward pass is shared with detection and must stay cheap.
"""

from __future__ import annotations

import numpy as np

from hazardvision.images import BGRImage

Box = tuple[float, float, float, float]

QUARTER_TURNS = (0, 1, 2, 3)


def quarter_turn(image: BGRImage, box: Box | None = None) -> tuple[BGRImage, Box | None]:
    """The photo turned 90 degrees anticlockwise, and where `box` lands on it."""
    turned = np.ascontiguousarray(np.rot90(image))
    if box is None:
        return turned, None
    width = image.shape[1]
    x1, y1, x2, y2 = box
    return turned, (y1, width - x2, y2, width - x1)


def rotated_views(image: BGRImage, box: Box | None = None) -> list[tuple[BGRImage, Box | None]]:
    """The photo (and box) as it is and turned by one, two and three quarter turns."""
    views = [(image, box)]
    for _ in QUARTER_TURNS[1:]:
        views.append(quarter_turn(*views[-1]))
    return views
