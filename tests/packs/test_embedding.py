from __future__ import annotations

import numpy as np
import pytest

from hazardvision.images import load_image
from hazardvision.packs.embedding import (
    THUMBNAIL_SIDE,
    FeatureMaps,
    photo_dim,
    scene_views,
    thumbnail_signature,
)
from hazardvision.packs.letterbox import Letterbox
from tests.conftest import test_photos


def constant_maps(values: list[list[float]]) -> FeatureMaps:
    """Maps of a 64x64 input at strides 8 and 16, each channel constant."""
    levels = tuple(np.ones((len(v), size, size), np.float32) * np.array(v, np.float32)[:, None, None]
                   for v, size in zip(values, (8, 4), strict=True))
    return FeatureMaps(levels, Letterbox(1.0, 0, 0, 64, 64), 64, 64)


def test_embed_boxes_of_constant_maps_are_the_normalised_channels():
    maps = constant_maps([[3.0, 4.0], [0.0, 2.0, 0.0]])
    vector = maps.embed_boxes(np.array([[10, 10, 30, 40]], np.float64))
    expected = np.array([0.6, 0.8, 0.0, 1.0, 0.0]) / np.sqrt(2)
    np.testing.assert_allclose(vector[0], expected, atol=1e-6)
    assert maps.dim == 5


def test_embed_boxes_depend_on_where_the_box_is():
    level = np.zeros((2, 8, 8), np.float32)
    level[0, :, :4] = 1  # channel 0 lights the left half, channel 1 the right
    level[1, :, 4:] = 1
    maps = FeatureMaps((level,), Letterbox(1.0, 0, 0, 64, 64), 64, 64)
    left, right = maps.embed_boxes(np.array([[0, 0, 24, 64], [40, 0, 64, 64]], np.float64))
    assert left[0] > 0.99 and right[1] > 0.99
    assert np.linalg.norm(left) == pytest.approx(1, abs=1e-6)


def test_feature_outputs_leave_the_detections_unchanged(packs, datasets):
    photos = [load_image(path).pixels for path in test_photos("ppe-vest")[:3]]
    for pack in packs:
        plain = pack.detect(photos, confidence=0.05)
        with_maps = [found for found, _ in pack.detect_with_features(photos, confidence=0.05)]
        for a, b in zip(plain, with_maps, strict=True):
            np.testing.assert_array_equal(a.class_id, b.class_id)
            np.testing.assert_allclose(a.xyxy, b.xyxy, atol=1e-3)
            np.testing.assert_allclose(a.confidence, b.confidence, atol=1e-5)


def test_thumbnail_signature_ignores_brightness_and_colour(datasets):
    photo = load_image(test_photos("ppe-vest")[0]).pixels
    grey = np.repeat(photo.mean(axis=2, keepdims=True), 3, axis=2).astype(np.uint8)
    brighter = np.clip(photo.astype(np.int16) + 30, 0, 255).astype(np.uint8)
    base = thumbnail_signature(photo)[0]
    assert base.shape == (THUMBNAIL_SIDE**2,) and np.linalg.norm(base) == pytest.approx(1, abs=1e-5)
    assert float(base @ thumbnail_signature(grey)[0]) > 0.98
    assert float(base @ thumbnail_signature(brighter)[0]) > 0.98
    other = thumbnail_signature(load_image(test_photos("ppe-vest")[1]).pixels)[0]
    assert float(base @ other) < 0.9


def test_scene_views_hold_the_photo_upright_and_mirrored(datasets):
    """The mirrored view is the upright thumbnail flipped: the same as the thumbnail of the mirrored photo."""
    photo = load_image(test_photos("ppe-vest")[0]).pixels
    views = scene_views(photo)
    assert views.shape == (2, THUMBNAIL_SIDE**2)
    np.testing.assert_allclose(views[0], thumbnail_signature(photo)[0])
    np.testing.assert_allclose(views[1], thumbnail_signature(np.ascontiguousarray(photo[:, ::-1]))[0], atol=1e-3)


def test_photo_vectors_have_the_photo_length_and_unit_norm(packs, datasets):
    photo = load_image(test_photos("ppe-vest")[0]).pixels
    pack = packs[0]
    maps = pack.feature_maps([photo])[0]
    vector = maps.embed_photo(photo)
    assert vector.shape == (1, photo_dim(maps.dim))
    assert np.linalg.norm(vector) == pytest.approx(1, abs=1e-5)
