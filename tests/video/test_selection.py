"""Frame selection: the rate target, the motion gate, and the maximum gap."""

from __future__ import annotations

import numpy as np
import pytest

from hazardvision.video.selection import FrameSelector, SelectionSettings
from hazardvision.video.sources import VideoFrame

RNG = np.random.default_rng(0)
SCENE = RNG.integers(0, 255, (360, 640, 3), dtype=np.uint8)


def noisy(scene: np.ndarray, sigma: float = 3.0) -> np.ndarray:
    return np.clip(scene.astype(np.int16) + RNG.normal(0, sigma, scene.shape).astype(np.int16), 0, 255).astype(
        np.uint8)


def frames(count: int, fps: float, scene=SCENE, mover: int | None = None) -> list[VideoFrame]:
    """`count` noisy frames of one scene; with `mover`, a 40x80 block moves `mover` pixels a frame."""
    out = []
    for index in range(count):
        pixels = scene.copy()
        if mover is not None:
            x = 20 + index * mover
            pixels[100:180, x:x + 40] = 255
        out.append(VideoFrame(index / fps, index, pixels=noisy(pixels)))
    return out


def test_rate_target_takes_every_sixth_frame_of_thirty_at_five():
    selector = FrameSelector(SelectionSettings(fps=5, motion=False))
    chosen = [frame.index for frame in frames(60, 30) if selector.select(frame)]
    assert chosen == list(range(0, 60, 6))
    assert selector.skipped_rate == 50


def test_no_rate_target_takes_every_frame():
    selector = FrameSelector(SelectionSettings(fps=None, motion=False))
    assert all(selector.select(frame) for frame in frames(10, 30))


def test_motion_gate_skips_a_still_noisy_scene_until_the_maximum_gap():
    selector = FrameSelector(SelectionSettings(fps=None, motion=True, max_gap=1.0))
    chosen = [frame.timestamp for frame in frames(50, 10) if selector.select(frame)]
    assert chosen == pytest.approx([0.0, 1.0, 2.0, 3.0, 4.0])
    assert selector.skipped_motion == 45


def test_motion_gate_passes_a_small_moving_object():
    selector = FrameSelector(SelectionSettings(fps=None, motion=True, max_gap=10.0))
    chosen = [frame.index for frame in frames(20, 10, mover=6) if selector.select(frame)]
    assert len(chosen) == 20


def test_motion_gate_analyses_a_mover_until_it_stops():
    selector = FrameSelector(SelectionSettings(fps=None, motion=True, max_gap=100.0))
    moving = frames(10, 10, mover=6)
    still = [VideoFrame(1.0 + i / 10, 10 + i, pixels=noisy(moving[-1].pixels())) for i in range(10)]
    chosen = [frame.index for frame in moving + still if selector.select(frame)]
    assert chosen == list(range(10))
