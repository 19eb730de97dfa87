from __future__ import annotations

import numpy as np
import pytest

from hazardvision.detections import Detections
from hazardvision.packs.tiling import Tiling, merge_tiles

NAMES = ("person",)


@pytest.mark.parametrize(("height", "width"), [(1080, 1920), (700, 700), (641, 2000)])
def test_tiling_windows_cover_the_frame_and_overlap(height, width):
    tiling = Tiling(min_tile=320, overlap=0.25)
    assert tiling.tile(height, width) == max(320, round(max(height, width) / 3))
    windows = tiling.windows(height, width)
    covered = np.zeros((height, width), bool)
    for x1, y1, x2, y2 in windows:
        assert x2 - x1 <= tiling.tile(height, width) and y2 - y1 <= tiling.tile(height, width)
        covered[y1:y2, x1:x2] = True
    assert covered.all()


@pytest.mark.parametrize(("mode", "size", "tiled"), [
    ("off", (1080, 1920), False), ("on", (1080, 1920), True), ("on", (300, 320), False), ("on", (416, 416), True),
    ("auto", (1080, 1920), True), ("auto", (720, 1000), False), (None, (1080, 1920), False),
])
def test_tiling_applies_by_mode_and_size(mode, size, tiled):
    assert Tiling(auto_min_side=1280).applies(mode, *size) is tiled


def test_merge_tiles_shifts_boxes_and_drops_the_cut_off_ones():
    whole = Detections.of([[0, 0, 100, 200]], [0.9], [0], NAMES)
    windows = [(0, 0, 640, 640), (480, 0, 1120, 640)]
    first = Detections.of([[600, 10, 640, 60], [100, 100, 130, 160]], [0.5, 0.6], [0, 0], NAMES)  # cut, whole
    second = Detections.of([[100, 10, 140, 60]], [0.7], [0, 0][:1], NAMES)
    merged = merge_tiles(whole, [first, second], windows, 640, 1120)
    assert merged.xyxy.tolist() == [[0, 0, 100, 200], [100, 100, 130, 160], [580, 10, 620, 60]]
