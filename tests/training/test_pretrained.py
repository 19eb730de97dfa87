"""Starting weights: the COCO YOLOv5n checkpoint is read in place and transferred where layers match."""

from __future__ import annotations

import pytest

from hazardvision.resources import shared_path
from hazardvision.training.pretrained import (
    YOLOV5N_COCO_SHA256,
    PretrainedError,
    resolve,
    starting_checkpoint,
)

WEIGHTS = shared_path("pretrained") / "yolov5n-coco" / "yolov5n.pt"


@pytest.fixture(scope="module")
def weights():
    pytest.importorskip("ultralytics", reason="training needs the [train] extra")
    if not WEIGHTS.is_file():
        pytest.skip(f"pretrained weights not found: {WEIGHTS} (../shared/pretrained)")
    return WEIGHTS


def test_starting_checkpoint_takes_the_yolov5n_backbone_and_neck(weights, tmp_path):
    from ultralytics import YOLO

    transfer = starting_checkpoint("yolov5n.yaml", ["helmet", "person"], weights, tmp_path / "start.pt")
    assert (transfer.taken, transfer.target_tensors) == (342, 427)  # layers 0-23; the head starts fresh
    assert transfer.sha256 == YOLOV5N_COCO_SHA256 and "AGPL-3.0" in transfer.credit and "CC BY 4.0" in transfer.credit
    model = YOLO(str(tmp_path / "start.pt"))  # ultralytics reads it as a checkpoint (so train() keeps the weights)
    assert model.names == {0: "helmet", 1: "person"}


def test_other_architectures_take_only_a_few_tensors(weights, tmp_path):
    transfer = starting_checkpoint("yolo26n.yaml", ["helmet"], weights, tmp_path / "start.pt")
    assert transfer.taken_parameters < 0.25 * transfer.target_parameters


def test_resolve_names_the_missing_weights_and_the_way_out(tmp_path):
    with pytest.raises(PretrainedError, match=r"--pretrained-root DIR .* --no-pretrained"):
        resolve("nowhere/weights.pt", tmp_path)
