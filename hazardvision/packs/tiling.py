"""Tiled (sliced) inference for small, distant objects: a large frame is also looked at in overlapping tiles.

A 1920x1080 frame letterboxed to a 384 px model shrinks a 60 px worker to 12 px, below what a
nano detector finds. Tiles of a third of the frame's longer side (at least `min_tile` pixels,
overlapping by `overlap`) are each run at the model's input size, so a worker looks about three
times larger, next to one pass over the whole frame (for objects larger than a tile);
their boxes are shifted back into the frame and merged by the pack's one-box-per-object rule.
A tile box that touches a tile edge inside the frame is dropped: it is a cut-off part of an
object that the neighbouring tile, or the whole-frame pass, sees whole (the overlap is there
for that).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from hazardvision.detections import Detections
from hazardvision.errors import InvalidSetting
from hazardvision.images import BGRImage

TilingMode = Literal["auto", "on", "off"]
MODES: tuple[TilingMode, ...] = ("auto", "on", "off")
VIDEO_FILE_TILING: TilingMode = "off"
"""The mode video files are scanned in unless told (`scan-video --tiling`, a video job's `tiling`): whole frames.
A 1080p frame in tiles costs the site pack nine model runs instead of one (305 against 30 ms on the 2-core box),
which would keep a file at well under real time; photos and cameras keep their packs' default."""
EDGE_MARGIN = 2.0
"""Pixels from an inner tile edge within which a tile box counts as cut off."""


class Tiling(BaseModel):
    """How a pack slices large frames (in its card; chosen on validation data)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fraction: float = Field(default=1 / 3, gt=0, le=1, description="Tile side as a share of the frame's longer "
                            "side.")
    min_tile: int = Field(default=320, ge=64, le=8192, description="Smallest tile side in frame pixels.")
    overlap: float = Field(default=0.25, ge=0, lt=1, description="Share of a tile shared with its neighbour.")
    auto_min_side: int = Field(default=640, ge=64, description="In mode auto, frames whose longer side reaches "
                               "this many pixels are tiled; smaller ones are not.")
    default: TilingMode = Field(default="off", description="Mode when a scan or camera asks for none: auto where "
                                "tiling won on the validation small-worker set, else off.")

    def tile(self, height: int, width: int) -> int:
        """Tile side for a frame of this size."""
        return max(self.min_tile, round(max(height, width) * self.fraction))

    def applies(self, mode: TilingMode | None, height: int, width: int) -> bool:
        """Whether a frame of this size is tiled in `mode` (None: the default mode)."""
        mode = mode or self.default
        if mode == "off" or max(height, width) <= self.tile(height, width):
            return False
        return mode == "on" or max(height, width) >= self.auto_min_side

    def windows(self, height: int, width: int) -> list[tuple[int, int, int, int]]:
        """(x1, y1, x2, y2) of every tile covering the frame, the last tile of a row or column flush with its edge."""
        tile = self.tile(height, width)
        return [(x, y, min(x + tile, width), min(y + tile, height))
                for y in _starts(height, tile, self.overlap) for x in _starts(width, tile, self.overlap)]


def tiling_mode(text: str | None) -> TilingMode | None:
    """A tiling mode given as text (None stays None: each pack's default)."""
    if text is None:
        return None
    for mode in MODES:
        if text == mode:
            return mode
    raise InvalidSetting(f"tiling {text!r}: choose on, off or auto")


def _starts(length: int, tile: int, overlap: float) -> list[int]:
    if length <= tile:
        return [0]
    step = max(1, int(tile * (1 - overlap)))
    starts = list(range(0, length - tile, step))
    return [*starts, length - tile]


def crops(image: BGRImage, windows: Sequence[tuple[int, int, int, int]]) -> list[BGRImage]:
    return [image[y1:y2, x1:x2] for x1, y1, x2, y2 in windows]


def merge_tiles(whole: Detections, tiles: Sequence[Detections], windows: Sequence[tuple[int, int, int, int]],
                height: int, width: int) -> Detections:
    """The whole-frame detections and every tile's (shifted into the frame, cut-off boxes dropped), unmerged."""
    parts = [whole]
    for found, (x1, y1, x2, y2) in zip(tiles, windows, strict=True):
        boxes = found.xyxy + np.asarray([x1, y1, x1, y1], np.float32)
        cut = np.zeros(len(found), bool)
        if x1 > 0:
            cut |= boxes[:, 0] <= x1 + EDGE_MARGIN
        if y1 > 0:
            cut |= boxes[:, 1] <= y1 + EDGE_MARGIN
        if x2 < width:
            cut |= boxes[:, 2] >= x2 - EDGE_MARGIN
        if y2 < height:
            cut |= boxes[:, 3] >= y2 - EDGE_MARGIN
        kept = found[~cut]
        kept.xyxy = boxes[~cut]
        parts.append(kept)
    return Detections.merge(parts)
