"""Evaluation plots as PNG files: a confusion matrix and precision-recall curves.

Drawn with matplotlib's Agg renderer on `Figure` objects (no pyplot, no display, no global
state) and its bundled DejaVu fonts, so nothing is downloaded. matplotlib comes with the [train]
extra (through ultralytics); serving never imports this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from numpy.typing import NDArray

from hazardvision.packs.evaluation import Accumulator, PrecisionRecall, normalise_rows

BACKGROUND = "background"
PLOTS_FOLDER = "plots"


def draw_confusion(matrix: NDArray[np.int64], class_names: Sequence[str], path: Path, *, title: str) -> Path:
    """Counts and row-normalised shares side by side; rows are true classes, columns predicted ones."""
    labels = [*class_names, BACKGROUND]
    size = 2.2 + 0.75 * len(labels)
    figure = Figure(figsize=(2 * size + 1.5, size + 0.8), layout="constrained")
    counts, shares = figure.subplots(1, 2)
    for axes, values, caption, number in (
        (counts, matrix.astype(np.float64), "boxes", "{:.0f}"),
        (shares, normalise_rows(matrix), "share of the true class (row)", "{:.2f}"),
    ):
        scale = values.max() or 1.0
        image = axes.imshow(values, cmap="Blues", vmin=0, vmax=scale)
        figure.colorbar(image, ax=axes, shrink=0.8)
        for (row, column), value in np.ndenumerate(values):
            if value:
                axes.text(column, row, number.format(value), ha="center", va="center", fontsize=9,
                          color="white" if value > 0.6 * scale else "black")
        axes.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
        axes.set_yticks(range(len(labels)), labels)
        axes.set_xlabel("predicted")
        axes.set_ylabel("true")
        axes.set_title(caption, fontsize=10)
    figure.suptitle(title)
    return _save(figure, path)


def draw_precision_recall(curves: dict[str, PrecisionRecall], path: Path, *, title: str,
                          operating_confidence: float | None = None) -> Path:
    """Each class's precision envelope against recall, its AP50 in the legend; a dot marks the operating point."""
    figure = Figure(figsize=(7, 6), layout="constrained")
    axes = figure.subplots()
    present = {name: c for name, c in curves.items() if c.instances}
    for name, curve in present.items():
        recall = np.concatenate(([0.0], curve.recall))
        precision = np.concatenate(([1.0], curve.precision))
        envelope = np.flip(np.maximum.accumulate(np.flip(precision)))
        line = axes.plot(recall, envelope, linewidth=1.6,
                         label=f"{name}  AP50 {curve.ap50:.3f}  ({curve.instances} boxes)")[0]
        shown = int((curve.confidence >= operating_confidence).sum()) if operating_confidence is not None else 0
        if shown:
            axes.plot(curve.recall[shown - 1], curve.precision[shown - 1], "o", color=line.get_color())
    mean = float(np.mean([c.ap50 for c in present.values()])) if present else 0.0
    axes.plot([], [], " ", label=f"all classes  mAP50 {mean:.3f}")
    if operating_confidence is not None:
        axes.plot([], [], "o", color="grey", label=f"operating point (confidence {operating_confidence:g})")
    axes.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="recall", ylabel="precision", title=title)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower left", fontsize=9)
    return _save(figure, path)


def write_evaluation_plots(accumulator: Accumulator, folder: Path, dataset: str, *, operating_confidence: float,
                           label: str, split: str = "test") -> dict[str, str]:
    """`plots/<dataset>-confusion.png` and `plots/<dataset>-pr.png` in a pack folder; their relative paths."""
    names = list(accumulator.class_names)
    relative = {"confusion": f"{PLOTS_FOLDER}/{dataset}-confusion.png", "pr": f"{PLOTS_FOLDER}/{dataset}-pr.png"}
    draw_confusion(accumulator.confusion(operating_confidence), names, folder / relative["confusion"],
                   title=f"{label} on {dataset} ({accumulator.images} {split} photos), confidence "
                   f"{operating_confidence:g}, IoU 0.45")
    draw_precision_recall(accumulator.curves(), folder / relative["pr"], operating_confidence=operating_confidence,
                          title=f"{label} on {dataset} ({accumulator.images} {split} photos), IoU 0.5")
    return relative


def _save(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # No "Software" entry: the same evaluation gives the same bytes whatever matplotlib wrote it.
    figure.savefig(path, format="png", dpi=100, metadata={"Software": None})
    return path
