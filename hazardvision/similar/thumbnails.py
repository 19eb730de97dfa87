"""Thumbnails of indexed instances: what a similar case looks like, small enough for a list."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from hazardvision.home import Home, private_folder, write_private_file
from hazardvision.images import BGRImage

SIDE = 160
"""Longest side of a thumbnail, in pixels."""
CONTEXT = 0.15
"""Each side of the box grows by this fraction, so that the thumbnail shows what is around it."""


def thumbnail_path(home: Path, annotation_id: int) -> Path:
    """Where the thumbnail of an indexed annotation lives in the bank folder `home`."""
    return Home(home).thumbnails / f"{annotation_id}.jpg"


def write_thumbnail(image: BGRImage, box: tuple[float, ...], path: Path) -> Path:
    """Crop `box` (pixels, with some context) from `image` and write it as a JPEG, atomically."""
    height, width = image.shape[:2]
    x1, y1, x2, y2 = box
    grow_x, grow_y = (x2 - x1) * CONTEXT, (y2 - y1) * CONTEXT
    left, top = int(max(0, x1 - grow_x)), int(max(0, y1 - grow_y))
    right, bottom = int(min(width, np.ceil(x2 + grow_x))), int(min(height, np.ceil(y2 + grow_y)))
    crop = image[top : max(bottom, top + 1), left : max(right, left + 1)]
    scale = SIDE / max(crop.shape[:2])
    if scale < 1:
        crop = np.asarray(cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))),
                          interpolation=cv2.INTER_AREA), dtype=np.uint8)
    ok, encoded = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise ValueError(f"cannot encode a thumbnail of box {box}")
    private_folder(path.parent)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    write_private_file(temporary, encoded.tobytes())
    os.replace(temporary, path)
    return path
