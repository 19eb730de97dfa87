"""Running an ultralytics training from a recipe, offline, resumable."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hazardvision.datasets.readers import yolo_class_names
from hazardvision.errors import DatasetError, HazardVisionError
from hazardvision.training.label_scope import LabelScope, scoped_trainer
from hazardvision.training.pretrained import resolve, starting_checkpoint
from hazardvision.training.recipe import Recipe

START_FILE = "start.pt"
"""The run folder's starting checkpoint: the architecture with the pretrained tensors transferred."""
PRETRAINED_FILE = "pretrained.json"
"""What the transfer took (weights, sha256, credit, tensors), read by packaging for the card."""
SCOPE_FILE = "label_scope.json"

Progress = Callable[[int, int], None]
"""Called with (epochs done, epochs planned) after each epoch."""


class TrainingError(HazardVisionError):
    """Training could not start or finish."""


@dataclass(frozen=True)
class TrainingRun:
    """Where a run lives and what it produced."""

    folder: Path
    best: Path
    last: Path
    epochs_done: int
    resumed: bool

    @property
    def pretrained(self) -> dict[str, Any] | None:
        """The transfer record of a run that started from pretrained weights."""
        return pretrained_record(self.folder)


def pretrained_record(run_folder: Path) -> dict[str, Any] | None:
    path = run_folder / PRETRAINED_FILE
    return dict(json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else None


def dataset_yaml(data: Path) -> Path:
    """The data.yaml of a snapshot folder, or the file itself; its class names are checked by `train`."""
    path = data / "data.yaml" if data.is_dir() else data
    if not path.is_file():
        raise DatasetError(f"{data} is neither a data.yaml nor a folder holding one (a bank snapshot)")
    return path


def train(
    recipe: Recipe,
    data: Path,
    run_folder: Path,
    *,
    device: str = "cpu",
    on_epoch: Progress | None = None,
    scope: LabelScope | None = None,
    pretrained_root: Path | None = None,
    on_message: Callable[[str], None] | None = None,
) -> TrainingRun:
    """Train `recipe` on a snapshot (or data.yaml) into `run_folder`; resume it if it was interrupted.

    A run folder that already holds `weights/last.pt` of an unfinished run is resumed from that
    checkpoint with the run's own settings; a finished one is returned as it is. A recipe with
    `pretrained` starts from those weights (what matches the architecture is transferred); with a
    `scope`, each photo's class loss counts only the classes its dataset labels (label_scope).
    """
    data_yaml = dataset_yaml(data)
    classes = list(yolo_class_names(data_yaml))
    if classes != recipe.classes:
        raise TrainingError(
            f"{data_yaml} has classes {classes} but recipe {recipe.pack} needs {recipe.classes} in that "
            f"order; make the snapshot with --classes {','.join(recipe.classes)}"
        )
    os.environ["YOLO_OFFLINE"] = "1"  # before ultralytics is imported: no update checks, no downloads
    from ultralytics import YOLO  # noqa: PLC0415  (the [train] extra; serving never imports it)

    last = run_folder / "weights" / "last.pt"
    resumed = last.is_file()
    if resumed and _finished(last):
        return _result(run_folder, resumed=False)
    trainer = {"trainer": scoped_trainer(scope)} if scope is not None else {}
    try:
        if resumed:
            model = YOLO(str(last))
            _on_epoch(model, on_epoch)
            model.train(resume=True, **trainer)
        else:
            # Without a checkpoint there is nothing to resume; clear what a run killed before its first
            # checkpoint left, so that its results.csv does not mix with the new run's.
            shutil.rmtree(run_folder, ignore_errors=True)
            run_folder.mkdir(parents=True)
            model = YOLO(str(_start(recipe, run_folder, pretrained_root, on_message)) if recipe.pretrained
                         else recipe.architecture)
            if recipe.repeat:
                data_yaml = _repeated(data_yaml, recipe, run_folder, on_message)
            if scope is not None:
                (run_folder / SCOPE_FILE).write_text(json.dumps(scope.describe(), indent=2) + "\n", encoding="utf-8")
            _on_epoch(model, on_epoch)
            model.train(data=str(data_yaml), device=device, project=str(run_folder.parent), name=run_folder.name,
                        exist_ok=True, plots=True, verbose=False, **trainer, **recipe.ultralytics_arguments())
    except (FileNotFoundError, RuntimeError, AssertionError) as error:
        raise TrainingError(f"training {recipe.pack} failed: {error}") from error
    return _result(run_folder, resumed=resumed)


def _repeated(data_yaml: Path, recipe: Recipe, run_folder: Path, on_message: Callable[[str], None] | None) -> Path:
    """A data.yaml in `run_folder` whose training list repeats each photo by its classes' `repeat` factor."""
    import yaml  # noqa: PLC0415

    spec = yaml.safe_load(data_yaml.read_text(encoding="utf-8"))
    root = Path(spec.get("path") or data_yaml.parent)
    images = root / spec["train"]
    if not images.is_dir():
        raise DatasetError(f"{data_yaml}: its train entry {images} is not a folder of photos; class repeats need "
                           "a snapshot folder")
    factors = [recipe.repeat.get(name, 1) for name in recipe.classes]
    lines, extra = [], 0
    for image in sorted(path for path in images.iterdir() if path.suffix.lower() in {".jpg", ".jpeg", ".png"}):
        label = root / "labels" / images.name / f"{image.stem}.txt"
        rows = label.read_text(encoding="utf-8").split("\n") if label.is_file() else []
        ids = {int(row.split()[0]) for row in rows if row.strip()}
        times = max((factors[i] for i in ids if 0 <= i < len(factors)), default=1)
        lines.extend([str(image)] * times)
        extra += times - 1
    listing = run_folder / "train.txt"
    listing.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    spec |= {"path": str(root), "train": str(listing)}
    repeated = run_folder / "data.yaml"
    repeated.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    if on_message is not None:
        on_message(f"class repeats {recipe.repeat}: {len(lines)} training photos per epoch "
                   f"({extra} repeats of {len(lines) - extra})")
    return repeated


def _on_epoch(model: Any, on_epoch: Progress | None) -> None:
    if on_epoch is not None:
        model.add_callback("on_fit_epoch_end", lambda trainer: on_epoch(trainer.epoch + 1, trainer.epochs))


def _start(recipe: Recipe, run_folder: Path, root: Path | None, on_message: Callable[[str], None] | None) -> Path:
    """Write the run's starting checkpoint from the recipe's pretrained weights, and the record of the transfer."""
    assert recipe.pretrained is not None
    weights = resolve(recipe.pretrained, root)
    transfer = starting_checkpoint(recipe.architecture, recipe.classes, weights, run_folder / START_FILE)
    record = {"weights": recipe.pretrained, "sha256": transfer.sha256, "credit": transfer.credit,
              "tensors": transfer.taken, "of_tensors": transfer.target_tensors,
              "parameters": transfer.taken_parameters, "of_parameters": transfer.target_parameters}
    (run_folder / PRETRAINED_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    if on_message is not None:
        on_message(transfer.summary())
    return run_folder / START_FILE


def _checkpoint(path: Path) -> dict[str, Any]:
    import torch  # noqa: PLC0415  (the [train] extra; serving never imports it)

    try:
        checkpoint: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError, ValueError) as error:
        raise TrainingError(
            f"the checkpoint {path} cannot be read ({error}); it was probably cut off while being written. "
            "Start again with a new --run-dir"
        ) from error
    return checkpoint


def _finished(last: Path) -> bool:
    """ultralytics marks a finished run's last.pt with epoch -1 once it strips the optimizer."""
    return int(_checkpoint(last).get("epoch", -1)) == -1


def epochs_logged(run_folder: Path) -> int:
    """Distinct epochs in the run's results.csv (a resumed epoch may appear twice)."""
    results = run_folder / "results.csv"
    if not results.is_file():
        return 0
    rows = results.read_text(encoding="utf-8").splitlines()[1:]
    return len({row.split(",", 1)[0].strip() for row in rows if row.strip()})


def _result(run_folder: Path, *, resumed: bool) -> TrainingRun:
    epochs = epochs_logged(run_folder)
    best = run_folder / "weights" / "best.pt"
    if not best.is_file():
        raise TrainingError(f"{run_folder} holds no weights/best.pt; the run did not complete an epoch")
    return TrainingRun(run_folder, best, run_folder / "weights" / "last.pt", epochs, resumed)
