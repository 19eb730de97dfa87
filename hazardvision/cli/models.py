"""`hazardvision models`: the model packs the scan uses, bundled and the home's own."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from hazardvision.bank.bank import SampleBank
from hazardvision.bank.scoring_cases import test_split_photos
from hazardvision.cli.common import HomeOption, JsonOption, err, fail, out
from hazardvision.data.audit import AuditLog, local_actor
from hazardvision.data.database import Database
from hazardvision.data.generations import Generations, Kind
from hazardvision.errors import HazardVisionError, UnknownModel
from hazardvision.packs.promotion import (
    DEFAULT_TOLERANCE,
    MAX_TOLERANCE,
    ClassComparison,
    Comparison,
    promote_replacing,
)
from hazardvision.packs.promotion import promote as promote_version
from hazardvision.packs.registry import PackRegistry
from hazardvision.resources import default_datasets
from hazardvision.service.promotions import record_promotion, record_refusal
from hazardvision.training.recipe import load_recipe, recipe_path

models_app = typer.Typer(help="List, promote, build and bundle model packs.", no_args_is_help=True)
ModelsDirOption = Annotated[
    Path | None, typer.Option("--models", help="Bundled models folder (the released packs; never written but by "
                              "`bundle`). Default: $HAZARDVISION_MODELS, else the packs bundled with hazardvision.")
]


@models_app.command("list")
def list_command(models: ModelsDirOption = None, home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Every pack version, bundled and the home's, its classes and test mAP50; the active ones are used by `scan`."""
    registry = PackRegistry.at(home, models)
    try:
        rows = []
        for pack in registry.packs():
            serving = registry.active(pack) if registry.serves(pack) else None  # staged or replaced: none serves
            rows += [(version, version.card(), version == serving) for version in registry.versions(pack)]
    except (HazardVisionError, OSError) as error:
        fail(error if isinstance(error, HazardVisionError) else UnknownModel(str(error)))
    if as_json:
        print(json.dumps([{"active": active, "bundled": version.bundled, **card.to_json()}
                          for version, card, active in rows], indent=2, ensure_ascii=False))
        return
    table = Table("pack", "version", "active", "where", "architecture", "classes", "test mAP50")
    for version, card, active in rows:
        datasets = card.metrics.datasets if card.metrics is not None else {}
        scores = ", ".join(f"{name} {result.map50:.3f}" for name, result in datasets.items())
        table.add_row(card.pack, card.version, "yes" if active else "", "bundled" if version.bundled else "home",
                      card.architecture, ", ".join(card.classes), scores)
    out.print(table)


@models_app.command()
def show(
    pack: Annotated[str, typer.Argument(help="Pack name, e.g. ppe.")],
    version: Annotated[str | None, typer.Option(help="Version. Default: the active one.")] = None,
    models: ModelsDirOption = None,
    home: HomeOption = None,
) -> None:
    """Print a pack version's model card (Markdown)."""
    registry = PackRegistry.at(home, models)
    try:
        chosen = registry.version(pack, version) if version else registry.active(pack)
        print((chosen.folder / "README.md").read_text(encoding="utf-8"))
    except FileNotFoundError:
        fail(UnknownModel(f"pack {pack} has no README.md beside its card"))
    except HazardVisionError as error:
        fail(error)


@models_app.command()
def promote(
    pack: Annotated[str, typer.Argument(help="Pack name, e.g. ppe.")],
    version: Annotated[str, typer.Argument(help="Version to make active.")],
    force: Annotated[bool, typer.Option(help="Promote even if the gate refuses (audited as forced).")] = False,
    tolerance: Annotated[float, typer.Option(help=f"Allowed mAP50 drop per test split, at most {MAX_TOLERANCE} "
                                             "(with --replaces: allowed AP50 drop per class and split).")]
    = DEFAULT_TOLERANCE,
    replaces: Annotated[str | None, typer.Option(help="Packs this version takes over from, comma-separated (e.g. "
                                                 "ppe,fire-smoke): the candidate and each replaced pack are scored "
                                                 "afresh per class on every test split the replaced pack was "
                                                 "scored on; on success the replaced packs are retired.")] = None,
    models: ModelsDirOption = None,
    home: HomeOption = None,
    datasets: Annotated[Path | None, typer.Option(help="Datasets root the gate scores both versions on (their "
                                                  "cards' test splits; without them, the bank's test-split cases). "
                                                  "Default: $HAZARDVISION_DATASETS, else ../shared/datasets.")]
    = None,
) -> None:
    """Make a version the active one of its pack (in the home), if it is not worse than the active one, both scored
    now on the same test splits; audited (refusals too)."""
    registry = PackRegistry.at(home, models)
    names = [name.strip() for name in replaces.split(",") if name.strip()] if replaces else []
    root = datasets or default_datasets()
    database = Database.of_home(home)
    audit, actor = AuditLog(database), local_actor()
    previous = _serving(registry, pack)

    def record(rows: Sequence[Comparison | ClassComparison]) -> None:  # written with the activation, or it is undone
        record_promotion(audit, actor, pack, version, previous=previous, forced=force, tolerance=tolerance,
                         comparisons=rows, via="cli", replaces=names,
                         serving={name: v for name in registry.packs() if (v := _serving(registry, name))})

    comparisons: list[Comparison | ClassComparison] = []
    try:
        try:
            with err.status(f"scoring {pack} {version} against the active version"):
                if names:
                    comparisons += promote_replacing(registry, pack, version, names, root, tolerance=tolerance,
                                                     force=force, record=record)
                else:
                    comparisons += promote_version(registry, pack, version, force=force, tolerance=tolerance,
                                                   datasets=root, record=record, test_cases=lambda: test_split_photos(
                                                       SampleBank(home)))
        except HazardVisionError as error:
            record_refusal(audit, actor, pack, version, error, previous=previous, forced=force, tolerance=tolerance,
                           via="cli", replaces=names)
            fail(error)
        Generations(database).bump(Kind.MODELS)  # running services of this database reload
    except HazardVisionError as error:
        fail(error)
    finally:
        database.dispose()
    for row in comparisons:
        if isinstance(row, ClassComparison):
            out.print(f"  {row.dataset} {row.class_name} ({row.instances} boxes): {row.replaced} "
                      f"{row.active:.3f} -> {pack} {row.candidate:.3f} ({row.delta:+.3f})")
        else:
            out.print(f"  {row.dataset} ({row.source}, split {row.split_id}): mAP50 {row.active:.3f} -> "
                      f"{row.candidate:.3f} ({row.delta:+.3f})")
    out.print(f"{pack} {version} is active" + (" (forced)" if force else "")
              + (f"; {replaces} retired (REPLACED_BY)" if replaces else "") + f" (in {registry.home})")


def _serving(registry: PackRegistry, pack: str) -> str | None:
    """The version of `pack` serving now, if any."""
    try:
        return registry.active(pack).version if registry.serves(pack) else None
    except HazardVisionError:
        return None


@models_app.command()
def build(
    weights: Annotated[Path, typer.Option(help="Trained ultralytics weights (best.pt).")],
    recipe: Annotated[str, typer.Option(help="Recipe file, or a pack name for training/recipes/<name>.yaml.")],
    version: Annotated[str, typer.Option(help="New version name, e.g. 0.2.0.")],
    models: ModelsDirOption = None,
    home: HomeOption = None,
    datasets: Annotated[Path | None, typer.Option(help="Datasets root of the recipe's evaluation sets. "
                                                  "Default: $HAZARDVISION_DATASETS, else ../shared/datasets.")] = None,
    int8: Annotated[bool, typer.Option(help="Also make a calibrated int8 model.")] = True,
    status: Annotated[str, typer.Option(help="How the weights were made, for the card.")]
    = "trained by `hazardvision train`",
) -> None:
    """Package weights as a new pack version in the home: ONNX float32 and int8, test metrics, speed, card."""
    from hazardvision.training.packaging import build_pack  # noqa: PLC0415  (needs the [train] extra)

    try:
        folder = build_pack(weights, load_recipe(recipe_path(recipe)), version, registry=PackRegistry.at(home, models),
                            datasets=datasets or default_datasets(), int8=int8, status=status)
    except HazardVisionError as error:
        fail(error)
    print((folder / "README.md").read_text(encoding="utf-8"))
    out.print(f"built {folder}; `hazardvision models promote {folder.parent.name} {folder.name}` makes it active")


@models_app.command()
def bundle(
    pack: Annotated[str, typer.Argument(help="Pack name, e.g. ppe.")],
    version: Annotated[str, typer.Argument(help="A version of the home to release.")],
    models: ModelsDirOption = None,
    home: HomeOption = None,
) -> None:
    """Copy a pack version from the home into the bundled models folder, for a release (never over a bundled
    version). The bundled ACTIVE is left as it is."""
    registry = PackRegistry.at(home, models)
    try:
        target = registry.bundle(pack, version)
    except HazardVisionError as error:
        fail(error)
    out.print(f"bundled {target}; to release it as the active version, write {version} into "
              f"{target.parent / 'ACTIVE'} and commit both")


@models_app.command()
def plots(
    pack: Annotated[str, typer.Argument(help="Pack name, e.g. ppe.")],
    version: Annotated[str | None, typer.Argument(help="Version. Default: the active one.")] = None,
    models: ModelsDirOption = None,
    home: HomeOption = None,
    datasets: Annotated[Path | None, typer.Option(help="Datasets root of the pack's evaluation sets. "
                                                  "Default: $HAZARDVISION_DATASETS, else ../shared/datasets.")] = None,
) -> None:
    """(Re)draw a pack version's confusion matrix and precision-recall PNGs on its test splits (float32)."""
    from hazardvision.training.packaging import plot_pack  # noqa: PLC0415  (matplotlib: the [train] extra)

    registry = PackRegistry.at(home, models)
    try:
        folder = (registry.version(pack, version) if version else registry.active(pack)).folder
        with err.status(f"evaluating {folder}"):
            scores = plot_pack(folder, datasets or default_datasets())
    except HazardVisionError as error:
        fail(error)
    for dataset, map50 in scores.items():
        out.print(f"  {dataset}: mAP50 {map50:.3f}; {folder / 'plots' / dataset}-confusion.png, -pr.png")
    out.print(f"plots of {pack} {folder.name} written; its README.md links them")
