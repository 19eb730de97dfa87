from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from hazardvision.detections import Detections

NAMES = ("helmet", "no_helmet")


def build(n: int = 3, names: tuple[str, ...] = NAMES, pack: str = "ppe") -> Detections:
    boxes = [[10 * i, 10 * i, 10 * i + 5, 10 * i + 8] for i in range(n)]
    return Detections.of(boxes, np.linspace(0.9, 0.1, n), [i % len(names) for i in range(n)], names,
                         data={"pack": [pack] * n})


def test_detections_mask_filtering_keeps_rows_aligned():
    d = build(4)
    kept = d[d.confidence > 0.5]
    assert len(kept) == 2
    assert kept.class_name.tolist() == ["helmet", "no_helmet"]
    assert kept.data["pack"].tolist() == ["ppe", "ppe"]
    assert kept.class_names == NAMES


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"confidence": [0.5]}, "one confidence and one class_id per box"),
        ({"class_id": [0, 2]}, "class_id must index class_names"),
        ({"xyxy": [[5, 5, 1, 1], [0, 0, 1, 1]]}, "x2 >= x1"),
        ({"xyxy": [[0, 0, np.nan, 1], [0, 0, 1, 1]]}, "finite"),
        ({"tracker_id": [1]}, "tracker_id needs 2"),
        ({"data": {"pack": ["a"]}}, "data['pack'] needs 2"),
    ],
)
def test_detections_invalid_shapes_raise(kwargs, message):
    args = {"xyxy": [[0, 0, 1, 1], [1, 1, 2, 2]], "confidence": [0.5, 0.6], "class_id": [0, 1],
            "class_names": NAMES} | kwargs
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Detections.of(**args)


def test_detections_merge_unites_vocabularies_without_confusing_ids():
    ppe = build(2, ("helmet", "no_helmet"), "ppe")
    fire = build(2, ("fire", "smoke"), "fire-smoke")
    merged = Detections.merge([ppe, fire])
    assert merged.class_names == ("helmet", "no_helmet", "fire", "smoke")
    assert merged.class_name.tolist() == ["helmet", "no_helmet", "fire", "smoke"]
    assert merged.data["pack"].tolist() == ["ppe", "ppe", "fire-smoke", "fire-smoke"]


def test_detections_merge_of_nothing_is_empty():
    assert len(Detections.merge([])) == 0


def test_detections_from_ultralytics_reads_boxes_and_names():
    boxes = SimpleNamespace(xyxy=np.array([[1, 2, 3, 4]]), conf=np.array([0.7]), cls=np.array([1.0]), id=None)
    result = SimpleNamespace(boxes=boxes, names={0: "fire", 1: "smoke"})
    d = Detections.from_ultralytics(result)
    assert d.class_name.tolist() == ["smoke"]
    np.testing.assert_allclose(d.xyxy, [[1, 2, 3, 4]])
    assert d.tracker_id is None


def test_detections_from_onnx_output_end_to_end_rows_are_thresholded():
    rows = np.array([[0, 0, 10, 10, 0.9, 1], [5, 5, 9, 9, 0.2, 0], [0, 0, 0, 0, 0.0, 0]], np.float32)
    d = Detections.from_onnx_output(rows, NAMES, confidence_threshold=0.25, iou_threshold=0.7)
    assert d.class_name.tolist() == ["no_helmet"]


def test_detections_from_onnx_output_raw_layout_applies_class_aware_nms():
    # Two overlapping boxes of one class (one must go) and one overlapping box of another class.
    cxcywh = np.array([[50, 50, 20, 20], [51, 50, 20, 20], [50, 50, 20, 20]], np.float32)
    scores = np.array([[0.9, 0.0], [0.8, 0.0], [0.0, 0.7]], np.float32)
    raw = np.concatenate([cxcywh, scores], axis=1).T  # (4 + nc, anchors)
    d = Detections.from_onnx_output(raw, NAMES, confidence_threshold=0.25, iou_threshold=0.7)
    assert sorted(d.class_name.tolist()) == ["helmet", "no_helmet"]
    np.testing.assert_allclose(d.xyxy[0], [40, 40, 60, 60])


def test_detections_from_onnx_output_rejects_unknown_layout():
    with pytest.raises(ValueError, match="fits neither"):
        Detections.from_onnx_output(np.zeros((9, 100), np.float32), NAMES, confidence_threshold=0.1,
                                    iou_threshold=0.5)
