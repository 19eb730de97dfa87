"""Starting weights: the COCO-pretrained YOLOv5n checkpoint read in place and transferred into a model.

The checkpoint is a pickled module of the original yolov5 repository (`models.yolo`,
`models.common`). Its classes are not ours; unpickling needs only names to hang the tensors on,
so stand-in `nn.Module` subclasses are registered under those module paths for the duration of
the load, and only `state_dict()` is read. Tensors whose name and shape match the target model
(backbone and neck of ultralytics' `yolov5n.yaml`) are copied; the rest stay as initialised.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hazardvision.errors import HazardVisionError
from hazardvision.packs.card import ModelCard
from hazardvision.resources import shared_path

_STAND_INS = {
    "models.yolo": ("DetectionModel", "Detect", "Model", "Segment", "ClassificationModel"),
    "models.common": ("Conv", "C3", "Bottleneck", "SPPF", "SPP", "Concat", "Focus", "DWConv", "C3TR",
                      "BottleneckCSP", "GhostConv", "GhostBottleneck", "Contract", "Expand"),
}
YOLOV5N_COCO_SHA256 = "4f180cf23ba0717ada0badd6c685026d73d48f184d00fc159c2641284b2ac0a3"
YOLOV5N_COCO_CREDIT = (
    "YOLOv5n COCO weights by Ultralytics (github.com/ultralytics/yolov5, commit 981548a), AGPL-3.0; "
    "COCO 2017 annotations CC BY 4.0 (cocodataset.org)"
)


class PretrainedError(HazardVisionError):
    """Starting weights cannot be found, read or transferred."""


@dataclass(frozen=True)
class Transfer:
    """What a transfer of starting weights took."""

    path: Path
    sha256: str
    taken: int
    """Tensors copied into the target model."""
    target_tensors: int
    """Tensors of the target model's state dict."""
    taken_parameters: int
    target_parameters: int
    credit: str

    def summary(self) -> str:
        share = self.taken_parameters / max(self.target_parameters, 1)
        return (f"transferred {self.taken}/{self.target_tensors} tensors ({self.taken_parameters:,} of "
                f"{self.target_parameters:,} parameters, {share:.0%}) from {self.path.name}")


def default_pretrained_root() -> Path:
    """`HAZARDVISION_PRETRAINED`, else `../shared/pretrained` beside the repository."""
    override = os.environ.get("HAZARDVISION_PRETRAINED")
    return Path(override) if override else shared_path("pretrained")


def resolve(spec: str, root: Path | None = None) -> Path:
    """A recipe's `pretrained:` path, relative to the pretrained root unless absolute."""
    path = Path(spec)
    resolved = path if path.is_absolute() else (root or default_pretrained_root()) / path
    if not resolved.is_file():
        raise PretrainedError(f"starting weights {resolved} do not exist; put them there, pass --pretrained-root DIR "
                              "(or set HAZARDVISION_PRETRAINED), or train from scratch with --no-pretrained")
    return resolved


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def _stand_in_modules() -> Iterator[None]:
    import torch  # noqa: PLC0415  (the [train] extra)

    added = []
    for name, classes in (("models", ()), *_STAND_INS.items()):
        if name in sys.modules:
            continue
        module = types.ModuleType(name)
        for cls in classes:
            setattr(module, cls, type(cls, (torch.nn.Module,), {"__module__": name}))
        sys.modules[name] = module
        added.append(name)
    try:
        yield
    finally:
        for name in added:
            del sys.modules[name]


def read_state_dict(path: Path) -> dict[str, Any]:
    """Float32 tensors of a yolov5 or ultralytics checkpoint, by parameter name."""
    import torch  # noqa: PLC0415

    try:
        with _stand_in_modules():
            checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError, ValueError, AttributeError, ImportError) as error:
        raise PretrainedError(f"cannot read starting weights {path}: {error}") from error
    module = checkpoint.get("ema") or checkpoint.get("model") if isinstance(checkpoint, dict) else checkpoint
    if not isinstance(module, torch.nn.Module):
        raise PretrainedError(f"{path} holds no model under 'model' or 'ema'; is it a YOLO checkpoint?")
    return {name: tensor.float() for name, tensor in module.state_dict().items()}


def credit_of(path: Path, sha256: str) -> str:
    """The credit of known weights; of a pack's weights (a card.json beside them), the pack and what it was
    trained from; else the licence paragraph of the SOURCE.md beside them."""
    if sha256 == YOLOV5N_COCO_SHA256:
        return YOLOV5N_COCO_CREDIT
    card = path.parent / "card.json"
    if card.is_file():
        return _pack_credit(card)
    source = path.parent / "SOURCE.md"
    text = source.read_text(encoding="utf-8") if source.is_file() else ""
    found = re.search(r"\*\*Licen[cs]e\*\*:?\s*(.+?)(?:\n\s*- |\n\n|\Z)", text, re.DOTALL)
    return " ".join(found.group(1).split()) if found else f"{path.name}: no SOURCE.md beside it names its licence"


def _pack_credit(card_path: Path) -> str:
    try:
        card = ModelCard.read(card_path)
    except HazardVisionError as error:
        raise PretrainedError(f"{error}; pass the weights without it or repair the card") from None
    start = card.training.pretrained if card.training is not None else None
    sources = "; ".join(source.credit for source in card.data_sources)
    started = f", itself fine-tuned from {start.credit}" if start is not None and start.credit else ""
    return (f"hazardvision pack {card.pack} {card.version} (AGPL-3.0){started}; trained on "
            f"{sources or 'no data sources named'}")


def transfer_into(model: Any, path: Path) -> Transfer:
    """Copy the tensors of `path` whose names and shapes match into `model` (an nn.Module), in place."""
    source = read_state_dict(path)
    target = model.state_dict()
    matched = {name: tensor for name, tensor in source.items()
               if name in target and target[name].shape == tensor.shape}
    if not matched:
        raise PretrainedError(f"no tensor of {path.name} matches the model's layers (names and shapes); "
                              "choose an architecture it was trained with (yolov5n.yaml for YOLOv5n weights)")
    model.load_state_dict(matched, strict=False)
    sha256 = sha256_of(path)
    return Transfer(
        path=path, sha256=sha256, taken=len(matched), target_tensors=len(target),
        taken_parameters=sum(int(t.numel()) for n, t in matched.items() if not _is_buffer(n)),
        target_parameters=sum(int(t.numel()) for n, t in target.items() if not _is_buffer(n)),
        credit=credit_of(path, sha256),
    )


def _is_buffer(name: str) -> bool:
    return name.endswith(("running_mean", "running_var", "num_batches_tracked"))


def starting_checkpoint(architecture: str, classes: list[str], weights: Path, out: Path) -> Transfer:
    """An ultralytics checkpoint at `out` of `architecture` with `weights` transferred, for `YOLO(out).train`.

    ultralytics keeps a model's weights through `train()` only when the model came from a
    checkpoint (a `YOLO("x.yaml")` is rebuilt from its yaml), hence the file.
    """
    import torch  # noqa: PLC0415
    from ultralytics.nn.tasks import DetectionModel  # noqa: PLC0415

    model = DetectionModel(architecture, nc=len(classes), verbose=False)
    model.names = dict(enumerate(classes))
    report = transfer_into(model, weights)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model, "train_args": {}, "epoch": -1, "pretrained": str(weights)}, out)
    return report
