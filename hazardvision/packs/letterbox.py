"""Letterboxing: fit a photo into the model's input with its aspect ratio kept, and back again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from hazardvision.boxes import FloatArray
from hazardvision.images import BGRImage

PAD_VALUE = 114
"""The grey that ultralytics pads with in training, so padding looks the same at serving time."""


@dataclass(frozen=True)
class Letterbox:
    """How one photo was placed in the model input: scale, then `left`/`top` padding."""

    scale: float
    left: int
    top: int
    original_width: int
    original_height: int

    def to_original(self, xyxy: FloatArray) -> FloatArray:
        """Map boxes from model-input pixels back to the original photo, clipped to it."""
        boxes = xyxy.copy()
        boxes[:, [0, 2]] = ((boxes[:, [0, 2]] - self.left) / self.scale).clip(0, self.original_width)
        boxes[:, [1, 3]] = ((boxes[:, [1, 3]] - self.top) / self.scale).clip(0, self.original_height)
        return boxes

    def to_input(self, xyxy: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
        """Map boxes from the original photo into model-input pixels."""
        boxes = np.asarray(xyxy, dtype=np.float64) * self.scale
        boxes[:, [0, 2]] += self.left
        boxes[:, [1, 3]] += self.top
        return boxes


def target_shape(
    height: int, width: int, input_height: int, input_width: int, stride: int | None
) -> tuple[int, int]:
    """The padded input size for a photo: the full input, or with `stride` the smallest multiple of it."""
    if stride is None:
        return input_height, input_width
    scale = min(input_height / height, input_width / width)
    resized_h, resized_w = round(height * scale), round(width * scale)
    return (
        resized_h + (input_height - resized_h) % stride,
        resized_w + (input_width - resized_w) % stride,
    )


def letterbox(
    image: BGRImage, input_height: int, input_width: int, out_height: int, out_width: int
) -> tuple[BGRImage, Letterbox]:
    """Resize `image` to fit `input_height` x `input_width` and centre it on an `out` canvas.

    `out_*` equals the input size for models of fixed shape; for models of dynamic shape it may
    be smaller (see `target_shape`), which saves the work of convolving padding.
    """
    height, width = image.shape[:2]
    scale = min(input_height / height, input_width / width)
    resized_h, resized_w = round(height * scale), round(width * scale)
    if (resized_h, resized_w) != (height, width):
        image = np.asarray(cv2.resize(image, (resized_w, resized_h), interpolation=cv2.INTER_LINEAR))
    pad_w, pad_h = (out_width - resized_w) / 2, (out_height - resized_h) / 2
    # The +-0.1 splits an odd padding as 1 more on the bottom/right side, as ultralytics does.
    top, bottom = round(pad_h - 0.1), round(pad_h + 0.1)
    left, right = round(pad_w - 0.1), round(pad_w + 0.1)
    if top or bottom or left or right:
        image = np.asarray(cv2.copyMakeBorder(
            image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3
        ))
    return np.ascontiguousarray(image), Letterbox(scale, left, top, width, height)
