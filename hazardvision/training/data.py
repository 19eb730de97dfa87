"""The training data of a recipe: its datasets imported into the sample bank, then frozen as one snapshot.

The recipe's `evaluation` list names each dataset with its class `map` and `drop`; those datasets
also train the pack (their train and val splits train it, their test split scores it). Importing
is idempotent, since the bank identifies a photo by its bytes, so building the data again, to
resume a run, adds nothing and gives the same snapshot id.

On import a recipe's `drop` removes only classes the catalogue does not know (fire-smoke's
`default`) or that the pack itself trains. A catalogue class the pack does not train (hardhat-head's
`person`) is kept, as `hazardvision bank import` keeps it: the bank stores a photo once, with the
labels of its first import, so dropping it here would make the bank depend on which command ran
first. The snapshot takes only the recipe's classes, so the training data is the same either way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from hazardvision.bank.bank import SampleBank
from hazardvision.bank.importer import ImportReport, import_dataset
from hazardvision.bank.snapshot import SnapshotManifest, SplitRule, make_snapshot
from hazardvision.catalogue import Catalogue, load_catalogue
from hazardvision.datasets.classmap import ClassMap, build_class_map
from hazardvision.datasets.readers import Dataset, read_dataset
from hazardvision.errors import DatasetError
from hazardvision.resources import bundled_path
from hazardvision.training.label_scope import LabelScope, build_scope
from hazardvision.training.recipe import EvaluationSet, Recipe, RecipeError, load_recipe

ImportProgress = Callable[[Dataset, int], None]
"""Called with (dataset being imported, files handled since the last call)."""


@dataclass(frozen=True)
class TrainingData:
    """The snapshot a recipe trains on, and what building it did."""

    manifest: SnapshotManifest
    imports: list[ImportReport]
    warnings: list[str]
    scope: LabelScope | None
    """Classes each photo speaks for (recipe partial_labels: scoped); None trains every class everywhere."""

    @property
    def data_yaml(self) -> Path:
        return Path(self.manifest.path) / "data.yaml"


def import_class_map(spec: EvaluationSet, dataset: Dataset, catalogue: Catalogue, recipe: Recipe) -> ClassMap:
    """The recipe's map for `dataset`, with its drop limited as the module docstring explains."""
    known = {entry.class_name for entry in catalogue.classes}
    drop = [name for name in spec.drop if name not in known or name in recipe.classes]
    return build_class_map(dataset.classes, catalogue, spec.map, drop)


def bundled_mapping(dataset: str, catalogue: Catalogue | None = None) -> tuple[dict[str, str], list[str]]:
    """(map, drop) that the bundled recipes import `dataset` with; none for a dataset no recipe names.

    The one place that says how the shared datasets' vocabularies meet the catalogue, for the
    benchmarks and tests that import them outside a recipe.
    """
    known = {entry.class_name for entry in (catalogue or load_catalogue()).classes}
    for path in sorted(bundled_path("training/recipes").glob("*.yaml")):
        for spec in load_recipe(path).evaluation:
            if spec.dataset == dataset:
                return dict(spec.map), [name for name in spec.drop if name not in known]
    return {}, []


def build_training_data(
    recipe: Recipe,
    bank: SampleBank,
    datasets: Path,
    *,
    on_progress: ImportProgress | None = None,
) -> TrainingData:
    """Import the recipe's datasets from `datasets` into `bank` and snapshot them with its classes."""
    if not recipe.evaluation:
        raise RecipeError(f"recipe {recipe.pack} names no datasets (its evaluation list is empty); "
                          "make a snapshot with `hazardvision bank snapshot` and pass it with --data")
    missing = [s.dataset for s in recipe.evaluation if not (datasets / s.dataset / "data.yaml").is_file()]
    if missing:
        where = f"{datasets} does not exist" if not datasets.is_dir() else f"{datasets} lacks them"
        raise DatasetError(f"recipe {recipe.pack} trains on {missing}, but {where} (a folder per dataset with its "
                           "data.yaml); pass --datasets DIR or set HAZARDVISION_DATASETS")
    catalogue = load_catalogue()
    # Read and map every dataset before importing any, so that a bad map stops the command up front.
    planned = []
    for spec in recipe.evaluation:
        if spec.train:
            dataset = read_dataset(datasets / spec.dataset)
            planned.append((spec, dataset, import_class_map(spec, dataset, catalogue, recipe)))
    if not planned:
        raise RecipeError(f"recipe {recipe.pack} holds every dataset out of training (train: false)")
    reports = [import_dataset(bank, dataset, class_map, on_progress=partial(on_progress, dataset) if on_progress
                              else None) for _, dataset, class_map in planned]
    manifest = make_snapshot(bank, classes=recipe.classes, sources=[d.name for _, d, _ in planned],
                             split_rule=SplitRule.SOURCE, originals_only=recipe.originals_only)
    held = {source.name: source.images for source in manifest.sources}
    warnings = [
        f"{r.source}: {r.imported + r.already_in_bank - held.get(r.source, 0)} photos are in the bank under "
        "another source name (an earlier import of a copy), so the snapshot leaves them out"
        for r in reports if held.get(r.source, 0) < r.imported + r.already_in_bank
    ]
    scope = None
    if recipe.partial_labels == "scoped":
        labelled = {d.name: [t for t in map(c.target, d.classes) if t is not None] for _, d, c in planned}
        scope = build_scope(recipe.classes, labelled, {d.name: spec.absent for spec, d, _ in planned},
                            ((f.sha256, f.source) for f in manifest.files))
    return TrainingData(manifest, reports, warnings, scope)
