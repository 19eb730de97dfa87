"""Running an ultralytics training from a recipe, offline, resumable."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hazardvision.bank.readers import yolo_class_names
from hazardvision.errors import DatasetError, HazardVisionError
from hazardvision.training.recipe import Recipe

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
) -> TrainingRun:
    """Train `recipe` on a snapshot (or data.yaml) into `run_folder`; resume it if it was interrupted.

    A run folder that already holds `weights/last.pt` of an unfinished run is resumed from that
    checkpoint with the run's own settings; a finished one is returned as it is.
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
    model = YOLO(str(last)) if resumed else YOLO(recipe.architecture)
    if on_epoch is not None:
        model.add_callback("on_fit_epoch_end", lambda trainer: on_epoch(trainer.epoch + 1, trainer.epochs))
    try:
        if resumed:
            model.train(resume=True)
        else:
            # Without a checkpoint there is nothing to resume; clear what a run killed before its first
            # checkpoint left, so that its results.csv does not mix with the new run's.
            shutil.rmtree(run_folder, ignore_errors=True)
            run_folder.parent.mkdir(parents=True, exist_ok=True)
            model.train(data=str(data_yaml), device=device, project=str(run_folder.parent), name=run_folder.name,
                        exist_ok=True, plots=True, verbose=False, **recipe.ultralytics_arguments())
    except (FileNotFoundError, RuntimeError, AssertionError) as error:
        raise TrainingError(f"training {recipe.pack} failed: {error}") from error
    return _result(run_folder, resumed=resumed)


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
