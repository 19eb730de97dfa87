"""Partial labels: a photo's class loss counts only the classes its dataset speaks for; mixes stay in one dataset."""

from __future__ import annotations

import pytest

from hazardvision.training.label_scope import LabelScope, ScopedCriterion, build_scope, same_source_mixing

CLASSES = ("helmet", "person", "fire")


def scope() -> LabelScope:
    files = [("a" * 64, "ppe-vest"), ("b" * 64, "forklift-person"), ("c" * 64, "ppe-vest")]
    return build_scope(CLASSES, {"ppe-vest": ["helmet"], "forklift-person": ["person"]},
                       {"ppe-vest": ["fire"], "forklift-person": ["fire"]}, files)


def test_label_scope_masks_classes_a_dataset_neither_labels_nor_knows_absent():
    labels = scope()
    assert labels.mask("a" * 64) == [1.0, 0.0, 1.0]  # ppe-vest: helmets labelled, fire known absent, people not
    assert labels.mask("b" * 64) == [0.0, 1.0, 1.0]
    assert labels.mask("unknown") == [1.0, 1.0, 1.0]  # a photo of no known source trains every class
    assert labels.describe() == {"forklift-person": ["person", "fire"], "ppe-vest": ["helmet", "fire"]}


def test_scoped_criterion_stops_the_class_loss_outside_a_photo_s_scope():
    torch = pytest.importorskip("torch", reason="needs the [train] extra")
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel

    model = DetectionModel("yolov5n.yaml", nc=len(CLASSES), verbose=False)
    model.args = get_cfg()
    batch = {"img": torch.rand(2, 3, 64, 64), "batch_idx": torch.tensor([0.0]), "cls": torch.tensor([[0.0]]),
             "bboxes": torch.tensor([[0.5, 0.5, 0.4, 0.4]]),
             "im_file": [f"/snap/images/train/{'a' * 64}.jpg", f"/snap/images/train/{'b' * 64}.jpg"]}
    preds = model(batch["img"])
    scores = preds["scores"]  # (batch, classes, anchors) logits
    scores.retain_grad()
    loss, _ = ScopedCriterion(model.init_criterion(), scope())(preds, batch)
    loss.sum().backward()
    grad = scores.grad.abs().sum(dim=2)  # (batch, classes)
    assert grad[0, 1] == 0 and grad[0, 0] > 0 and grad[0, 2] > 0  # ppe-vest photo: no say about people
    assert grad[1, 0] == 0 and grad[1, 1] > 0 and grad[1, 2] > 0  # forklift photo: no say about helmets


class FakeDataset:
    """What a mix transform reads of a dataset: its length and one photo's labels by index."""

    def __init__(self, files: list[str]) -> None:
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def get_image_and_label(self, index: int) -> dict:
        return {"im_file": self.files[index], "index": index}


def test_same_source_mixing_draws_partners_from_the_photo_s_own_dataset():
    pytest.importorskip("ultralytics", reason="needs the [train] extra")
    from ultralytics.data.augment import Compose, MixUp

    files = [f"/snap/{stem}.jpg" for stem in ("a" * 64, "b" * 64, "c" * 64)]
    mixup = MixUp(FakeDataset(files), p=1.0)
    assert same_source_mixing(Compose([Compose([]), mixup]), files, scope()) == 1
    for _ in range(30):
        labels = mixup.get_params({"im_file": files[0]})
        assert labels["mix_labels"][0]["im_file"] in (files[0], files[2])  # both ppe-vest
