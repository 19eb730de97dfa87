"""`hazardvision train`: train a model pack's detector from its recipe (needs the [train] extra)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from hazardvision.bank.bank import SampleBank
from hazardvision.cli.common import HomeOption, err, fail, out
from hazardvision.datasets.readers import Dataset
from hazardvision.errors import HazardVisionError
from hazardvision.home import Home
from hazardvision.packs.registry import PackRegistry
from hazardvision.resources import default_datasets
from hazardvision.training.data import TrainingData, build_training_data
from hazardvision.training.recipe import Recipe, load_recipe, recipe_path
from hazardvision.training.trainer import dataset_yaml, train


def default_run_folder(recipe: Recipe, data: Path, home: Path | None = None) -> Path:
    """HOME/runs/<pack>-<hash of recipe and data>: the same command finds, and resumes, the same run."""
    key = hashlib.sha256((recipe.run_key() + str(dataset_yaml(data).resolve())).encode()).hexdigest()[:10]
    return Home.at(home).runs / f"{recipe.pack}-{key}"


def snapshot_from_recipe(recipe: Recipe, home: Path | None, datasets: Path) -> TrainingData:
    """Import the recipe's datasets into the bank and snapshot them, showing progress."""
    with Progress(TextColumn("importing {task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err) as progress:
        tasks: dict[str, TaskID] = {}

        def advance(dataset: Dataset, handled: int) -> None:
            if dataset.name not in tasks:
                tasks[dataset.name] = progress.add_task(dataset.name, total=len(dataset.files))
            progress.advance(tasks[dataset.name], handled)

        built = build_training_data(recipe, SampleBank(home), datasets, on_progress=advance)
    for report in built.imports:
        out.print(f"{report.source}: {report.imported} imported, {report.already_in_bank} already in the bank, "
                  f"{report.failed} failed")
    for warning in built.warnings:
        err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    counts = ", ".join(f"{split} {c.images}" for split, c in built.manifest.counts.items())
    out.print(f"snapshot {built.manifest.id} at {built.manifest.path} (photos: {counts})")
    if built.scope is not None:
        for source, classes in built.scope.describe().items():
            out.print(f"  {source} trains {', '.join(classes)}; other classes are outside its label scope")
    return built


def train_command(
    recipe: Annotated[str, typer.Option(help="Recipe file, or a pack name for training/recipes/<name>.yaml.")],
    data: Annotated[Path | None, typer.Option(help="Bank snapshot folder, or a YOLO data.yaml. Default: import the "
                                              "recipe's datasets from --datasets into the bank and snapshot them.")]
    = None,
    home: HomeOption = None,
    run_dir: Annotated[Path | None, typer.Option(help="Run folder (resumed if interrupted). Default: under the "
                                                 "bank home's runs/ (see --home), keyed by recipe and data.")] = None,
    device: Annotated[str, typer.Option(help="cpu, or a CUDA device such as 0.")] = "cpu",
    epochs: Annotated[int | None, typer.Option(min=1, help="Override the recipe's epochs.")] = None,
    imgsz: Annotated[int | None, typer.Option(min=32, help="Override the recipe's image size.")] = None,
    batch: Annotated[int | None, typer.Option(min=1, help="Override the recipe's batch size.")] = None,
    architecture: Annotated[str | None, typer.Option(help="Override the architecture, e.g. yolo11n.yaml.")] = None,
    serve_imgsz: Annotated[int | None, typer.Option(min=32, help="Override the recipe's serving input size "
                                                    "(packaging only).")] = None,
    save_period: Annotated[int | None, typer.Option(min=0, help="Keep every n-th epoch's weights as "
                                                    "weights/epoch<i>.pt, i from 0 (override the recipe).")] = None,
    version: Annotated[str | None, typer.Option(help="Then package the best weights as this pack version, in the "
                                                 "home's models/ (see --home; `models bundle` releases it).")] = None,
    models: Annotated[Path | None, typer.Option(help="Bundled models folder whose versions --version must not "
                                                "reuse. Default: $HAZARDVISION_MODELS, else the bundled packs.")]
    = None,
    datasets: Annotated[Path | None, typer.Option(help="Datasets root of the recipe's datasets (training data "
                                                  "without --data, and evaluation). Default: $HAZARDVISION_DATASETS, "
                                                  "else ../shared/datasets.")] = None,
    pretrained_root: Annotated[Path | None, typer.Option(help="Folder the recipe's `pretrained` path is relative to. "
                                                         "Default: $HAZARDVISION_PRETRAINED, else "
                                                         "../shared/pretrained.")] = None,
    no_pretrained: Annotated[bool, typer.Option("--no-pretrained", help="Start from random weights even if the "
                                                "recipe names pretrained ones.")] = False,
    partial_labels: Annotated[str | None, typer.Option(help="Override the recipe's partial_labels: scoped (a photo's "
                                                       "class loss counts only the classes its dataset labels) or "
                                                       "naive (every unlabelled object is a negative).")] = None,
) -> None:
    """Train (or resume) a detector from a recipe on a bank snapshot, offline; the same command resumes."""
    try:
        chosen = load_recipe(recipe_path(recipe)).with_overrides(
            epochs=epochs, imgsz=imgsz, batch=batch, architecture=architecture, save_period=save_period,
            serve_imgsz=serve_imgsz, partial_labels=partial_labels)
        if no_pretrained:
            chosen = chosen.model_copy(update={"pretrained": None})
        built = None
        if data is None:
            built = snapshot_from_recipe(chosen, home, datasets or default_datasets())
            data = Path(built.manifest.path)
        folder = run_dir or default_run_folder(chosen, data, home)
        start = f"from {chosen.pretrained}" if chosen.pretrained else "from random weights"
        out.print(f"training {chosen.pack} ({chosen.architecture}, {chosen.imgsz} px, {start}) into {folder}")
        with Progress(TextColumn("epochs"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err) as progress:
            task = progress.add_task("train", total=chosen.epochs)
            run = train(chosen, data, folder, device=device, scope=built.scope if built else None,
                        pretrained_root=pretrained_root, on_message=out.print,
                        on_epoch=lambda done, total: progress.update(task, completed=min(done, total), total=total))
            progress.update(task, completed=run.epochs_done)  # a run finished earlier reports no epoch
    except HazardVisionError as error:
        fail(error)
    out.print(f"{'resumed and ' if run.resumed else ''}finished {run.epochs_done} epochs; best weights {run.best}")
    if version:
        from hazardvision.training.packaging import build_pack  # noqa: PLC0415

        try:
            folder = build_pack(run.best, chosen, version, registry=PackRegistry.at(home, models),
                                datasets=datasets or default_datasets())
        except HazardVisionError as error:
            fail(error)
        out.print(f"built {folder}; `hazardvision models promote {chosen.pack} {version}` makes it active")
