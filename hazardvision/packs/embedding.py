"""Embeddings of hazard instances and whole photos, pooled from the detector's own feature maps.

The detector's neck already describes every place in the photo at three strides; averaging those
maps inside a box (with some context around it) gives a vector that separates classes and finds
near-duplicates without a second network or any downloaded weights. One forward pass serves both
detection and search.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from hazardvision.images import BGRImage
from hazardvision.packs.letterbox import Letterbox

Vectors = NDArray[np.float32]
"""(n, dim) float32 rows, each L2-normalised."""

CONTEXT = 0.1
"""Each side of a box grows by this fraction of its size: a helmet is judged with a little of the head
under it (more context blurs the classes: same-class precision@5 fell from 0.82 at 0.1 to 0.77 at 0.5)."""
GRID = 4
"""Bilinear samples per side inside a box, per feature level (RoIAlign with one output cell)."""
METHOD = "roi-mean-v2"
"""Name of the pooling recipe; part of every embedding model id, so a change forces a rebuild."""
PHOTO_REGIONS = ((0.0, 0.0, 1.0, 1.0), (0.0, 0.0, 1.0, 0.5), (0.0, 0.5, 1.0, 1.0), (0.25, 0.25, 0.75, 0.75))
"""Regions of a photo (fractions of its size) whose vectors make up the photo's vector: the whole, its
top and bottom halves and its centre. Unchanged by a horizontal flip, yet they tell apart scenes
whose average looks alike (near-duplicate recall on ppe-vest 0.89 -> 0.95 in a first measurement)."""
THUMBNAIL_SIDE = 16
"""Side of the grey thumbnail in a photo vector."""
THUMBNAIL_WEIGHT = 0.4
"""Share of a photo's cosine that comes from its thumbnail. Near-duplicate recall@1 on held-out
augmented copies, eight views (`benchmarks/similar_quality.py`'s data): pooled features alone 0.86,
the thumbnail alone 0.91, 0.3 to 0.5 of thumbnail 0.94 to 0.97."""


@dataclass(frozen=True)
class FeatureMaps:
    """The feature maps of one photo, finest first, and where the photo sits in the model input."""

    levels: tuple[NDArray[np.float32], ...]
    """(channels, height, width) per stride."""
    placement: Letterbox
    input_height: int
    input_width: int

    @property
    def dim(self) -> int:
        """Length of an instance vector."""
        return sum(level.shape[0] for level in self.levels)

    def embed_boxes(self, xyxy: NDArray[np.floating[Any]], context: float = CONTEXT) -> Vectors:
        """One vector per box (original-photo pixels)."""
        boxes = self.placement.to_input(np.asarray(xyxy, dtype=np.float64).reshape(-1, 4))
        grow = (boxes[:, 2:] - boxes[:, :2]) * context
        boxes[:, :2] -= grow
        boxes[:, 2:] += grow
        # Context reaches into the photo, never into the letterbox padding.
        left, top = self.placement.left, self.placement.top
        right = left + self.placement.original_width * self.placement.scale
        bottom = top + self.placement.original_height * self.placement.scale
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(left, right)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(top, bottom)
        parts = [_pool(level, boxes, self.input_height / level.shape[1]) for level in self.levels]
        return _normalise(np.concatenate([_normalise(part) for part in parts], axis=1))

    def embed_photo(self, pixels: BGRImage) -> Vectors:
        """One vector for the whole photo (these are its maps), shape (1, photo_dim(dim)).

        It joins the pooled features of the photo's regions (what the scene holds) with a small
        grey thumbnail (how it looks), weighted so that their cosines add up in the proportion
        `1 - THUMBNAIL_WEIGHT` to `THUMBNAIL_WEIGHT`.
        """
        size = np.array([self.placement.original_width, self.placement.original_height] * 2, np.float64)
        regions = np.array(PHOTO_REGIONS, np.float64) * size
        features = _normalise(self.embed_boxes(regions, context=0.0).reshape(1, -1))
        return np.concatenate([features * np.sqrt(1 - THUMBNAIL_WEIGHT),
                               thumbnail_signature(pixels) * np.sqrt(THUMBNAIL_WEIGHT)], axis=1)


def photo_dim(dim: int) -> int:
    """Length of a photo vector of a detector whose instance vectors have `dim` numbers."""
    return dim * len(PHOTO_REGIONS) + THUMBNAIL_SIDE**2


def scene_views(pixels: BGRImage) -> Vectors:
    """A photo's scene signatures, upright and mirrored (shape (2, THUMBNAIL_SIDE**2)): computed once per photo
    and compared with any number of stored photos by `scene_similarity`."""
    upright = thumbnail_signature(pixels)
    mirrored = upright.reshape(THUMBNAIL_SIDE, THUMBNAIL_SIDE)[:, ::-1].reshape(1, -1)  # the mirrored photo's
    return np.concatenate([upright, mirrored])


def scene_similarity(photo_vector: Vectors, views: Vectors) -> float:
    """How alike the scene of a stored photo vector (its thumbnail part) and a photo (its `scene_views`) look: the
    cosine of their grey thumbnails, the photo taken upright or mirrored, whichever is higher (-1..1)."""
    stored = np.asarray(photo_vector, np.float32).reshape(-1)[-THUMBNAIL_SIDE**2:] / np.sqrt(THUMBNAIL_WEIGHT)
    return float((views @ stored).max())


def thumbnail_signature(pixels: BGRImage) -> Vectors:
    """A THUMBNAIL_SIDE-square grey thumbnail, mean removed, unit length: shape (1, THUMBNAIL_SIDE**2).

    Grey, because augmented copies are often desaturated; mean-free and normalised, because they
    are often brighter or darker.
    """
    grey = cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY) if pixels.ndim == 3 else pixels
    small = cv2.resize(grey, (THUMBNAIL_SIDE, THUMBNAIL_SIDE), interpolation=cv2.INTER_AREA)
    flat = np.asarray(small, np.float32).reshape(1, -1)
    return _normalise(flat - flat.mean())


def split_batch(
    maps: Sequence[NDArray[np.float32]], placements: Sequence[Letterbox], input_height: int, input_width: int
) -> list[FeatureMaps]:
    """Per-photo `FeatureMaps` from the batched (n, c, h, w) outputs of one forward pass."""
    return [
        FeatureMaps(tuple(level[i] for level in maps), placement, input_height, input_width)
        for i, placement in enumerate(placements)
    ]


def _pool(level: NDArray[np.float32], boxes: NDArray[np.float64], stride: float) -> NDArray[np.float32]:
    """Mean of GRID x GRID bilinear samples inside each box (input pixels) of a (c, h, w) map."""
    channels, height, width = level.shape
    steps = (np.arange(GRID) + 0.5) / GRID
    # Feature cell (i, j) covers input pixels around ((j + 0.5) * stride, (i + 0.5) * stride).
    xs = (boxes[:, [0]] + (boxes[:, [2]] - boxes[:, [0]]) * steps) / stride - 0.5
    ys = (boxes[:, [1]] + (boxes[:, [3]] - boxes[:, [1]]) * steps) / stride - 0.5
    xs = xs.clip(0, width - 1)
    ys = ys.clip(0, height - 1)
    x0 = np.floor(xs).astype(np.int64)
    y0 = np.floor(ys).astype(np.int64)
    x1 = np.minimum(x0 + 1, width - 1)
    y1 = np.minimum(y0 + 1, height - 1)
    wx = (xs - x0)[:, None, :]
    wy = (ys - y0)[:, :, None]
    flat = level.reshape(channels, -1)

    def gather(yy: NDArray[np.int64], xx: NDArray[np.int64]) -> NDArray[np.float32]:
        index = yy[:, :, None] * width + xx[:, None, :]  # (n, GRID, GRID)
        return flat[:, index]  # (c, n, GRID, GRID)

    top = gather(y0, x0) * (1 - wx) + gather(y0, x1) * wx
    bottom = gather(y1, x0) * (1 - wx) + gather(y1, x1) * wx
    sampled = top * (1 - wy) + bottom * wy
    return np.asarray(sampled.mean(axis=(2, 3)).T, dtype=np.float32)


def _normalise(vectors: NDArray[np.float32]) -> Vectors:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.asarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)
