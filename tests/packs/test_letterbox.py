from __future__ import annotations

import numpy as np
import pytest

from hazardvision.packs.letterbox import PAD_VALUE, letterbox, target_shape


@pytest.mark.parametrize(("height", "width"), [(720, 1280), (1280, 720), (416, 416), (1, 1), (333, 500)])
def test_letterbox_box_round_trip_to_original(height, width):
    image = np.zeros((height, width, 3), np.uint8)
    out_h, out_w = target_shape(height, width, 320, 320, None)
    canvas, placement = letterbox(image, 320, 320, out_h, out_w)
    assert canvas.shape == (320, 320, 3)
    original = np.array([[0, 0, width, height], [width / 4, height / 4, width / 2, height / 2]], np.float32)
    in_model = original * placement.scale + [placement.left, placement.top, placement.left, placement.top]
    np.testing.assert_allclose(placement.to_original(in_model.astype(np.float32)), original, rtol=1e-4, atol=1e-3)


def test_letterbox_pads_with_training_grey_and_centres():
    canvas, placement = letterbox(np.zeros((100, 200, 3), np.uint8), 320, 320, 320, 320)
    assert placement.top == 80 and placement.left == 0
    assert (canvas[:80] == PAD_VALUE).all() and (canvas[80:240] == 0).all() and (canvas[240:] == PAD_VALUE).all()


@pytest.mark.parametrize(
    ("height", "width", "expected"), [(720, 1280, (192, 320)), (1280, 720, (320, 192)), (416, 416, (320, 320))]
)
def test_target_shape_minimal_padding_is_a_stride_multiple(height, width, expected):
    assert target_shape(height, width, 320, 320, 32) == expected


def test_to_original_clips_to_the_photo():
    _, placement = letterbox(np.zeros((100, 200, 3), np.uint8), 320, 320, 320, 320)
    boxes = placement.to_original(np.array([[-50, -50, 400, 400]], np.float32))
    np.testing.assert_allclose(boxes, [[0, 0, 200, 100]])
