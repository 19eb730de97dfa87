"""The model registry: which version of each pack is active, and the gate a new one must pass.

A candidate is promoted only if, on every test split that both its card and the active card
were evaluated on (the same split id: a hash of the split's photos and labels), its mAP50 is at
most `tolerance` below the active version's. Cards that share no split cannot be compared, and
promotion then needs `force`.

A pack can also replace other packs (one merged detector for two): `promote_replacing` scores
the candidate and every replaced pack afresh, per class, on each test split the replaced pack
was evaluated on (never reading numbers from cards), refuses any class more than `tolerance`
below, and then retires the replaced packs (a REPLACED_BY file) as it activates the candidate.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hazardvision.datasets.readers import read_yolo
from hazardvision.errors import PromotionRefused, UnknownModel
from hazardvision.packs.model_pack import ACTIVE_FILE, CARD_FILE, REPLACED_FILE, active_version, load_pack, serves

DEFAULT_TOLERANCE = 0.01


def split_id(data_yaml: Path, split: str) -> str:
    """Content id of a dataset split: its photos' bytes and its label files, in name order."""
    digest = hashlib.sha256()
    for sample in sorted((f for f in read_yolo(data_yaml).files if f.split == split), key=lambda f: f.name):
        digest.update(hashlib.sha256(sample.image.read_bytes()).digest())
        digest.update(repr([(b.source_class, round(b.x1, 6), round(b.y1, 6), round(b.x2, 6), round(b.y2, 6))
                            for b in sample.boxes]).encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Comparison:
    """mAP50 of the active and the candidate version on one shared test split."""

    dataset: str
    split_id: str
    active: float
    candidate: float

    @property
    def delta(self) -> float:
        return self.candidate - self.active


def _scores(card: dict[str, Any]) -> dict[str, tuple[str, float]]:
    """split id -> (dataset, mAP50) of a card."""
    datasets = card.get("metrics", {}).get("datasets", {})
    return {
        spec["split_id"]: (spec["dataset"], float(datasets[spec["dataset"]]["map50"]))
        for spec in card.get("evaluation_sets", [])
        if spec.get("split_id") and spec["dataset"] in datasets
    }


def compare(active: dict[str, Any], candidate: dict[str, Any]) -> list[Comparison]:
    """The test splits both cards were evaluated on, with both scores."""
    mine, theirs = _scores(active), _scores(candidate)
    return [Comparison(mine[k][0], k, mine[k][1], theirs[k][1]) for k in sorted(set(mine) & set(theirs))]


def _card(folder: Path) -> dict[str, Any]:
    try:
        card: dict[str, Any] = json.loads((folder / CARD_FILE).read_text(encoding="utf-8"))
    except OSError as error:
        raise UnknownModel(f"no model pack version at {folder}") from error
    return card


def promote(
    models_dir: Path, pack: str, version: str, *, force: bool = False, tolerance: float = DEFAULT_TOLERANCE
) -> list[Comparison]:
    """Make `version` the active version of `pack`, through the gate unless `force`."""
    pack_folder = models_dir / pack
    candidate_folder = pack_folder / version
    candidate = _card(candidate_folder)
    if not serves(pack_folder):
        if not force:
            raise PromotionRefused(f"{pack} serves no version yet (staged or replaced), so there is nothing to compare "
                                   f"{version} with; promote it with --replaces PACK,... (the packs it takes over "
                                   "from), or with --force")
        _write_atomically(pack_folder / ACTIVE_FILE, version + "\n")
        (pack_folder / REPLACED_FILE).unlink(missing_ok=True)
        return []
    active_folder = active_version(pack_folder)
    if active_folder == candidate_folder:
        return []
    comparisons = compare(_card(active_folder), candidate)
    if not force:
        if not comparisons:
            raise PromotionRefused(
                f"{pack} {version} and the active {active_folder.name} share no evaluated test split; evaluate "
                "both on the same split, or promote with --force"
            )
        worse = [c for c in comparisons if c.delta < -tolerance]
        if worse:
            details = "; ".join(f"{c.dataset}: mAP50 {c.candidate:.3f} vs {c.active:.3f}" for c in worse)
            raise PromotionRefused(
                f"{pack} {version} is worse than the active {active_folder.name} beyond the tolerance of "
                f"{tolerance}: {details}; use --force to promote it anyway"
            )
    _write_atomically(pack_folder / ACTIVE_FILE, version + "\n")
    return comparisons


@dataclass(frozen=True)
class ClassComparison:
    """AP50 of a replaced pack and of the candidate on one class of one test split, both scored now."""

    replaced: str
    dataset: str
    class_name: str
    instances: int
    active: float
    candidate: float

    @property
    def delta(self) -> float:
        return self.candidate - self.active


def promote_replacing(
    models_dir: Path, pack: str, version: str, replaces: Sequence[str], datasets: Path, *,
    tolerance: float = DEFAULT_TOLERANCE, force: bool = False,
) -> list[ClassComparison]:
    """Activate `pack` `version` in place of the active versions of `replaces`, through the per-class gate."""
    from hazardvision.packs.evaluation import evaluate_dataset  # noqa: PLC0415  (scoring only here)

    candidate = load_pack(models_dir / pack / version)
    if pack in replaces:
        raise PromotionRefused(f"{pack} cannot replace itself; use `models promote {pack} {version}`")
    comparisons: list[ClassComparison] = []
    for name in replaces:
        replaced = load_pack(active_version(models_dir / name))
        missing = sorted(set(replaced.card.classes) - set(candidate.card.classes))
        if missing:
            raise PromotionRefused(f"{pack} {version} lacks the classes {missing} of {name}, which it would replace")
        for spec in _card(replaced.folder).get("evaluation_sets", []):
            data_yaml = datasets / spec["dataset"] / "data.yaml"
            if not data_yaml.is_file():
                raise PromotionRefused(f"{name} was scored on {spec['dataset']}, which is not under {datasets}; "
                                       "pass --datasets DIR")
            args = {"split": spec.get("split", "test"), "mapping": spec.get("map", {}), "drop": spec.get("drop", [])}
            before = evaluate_dataset(replaced, data_yaml, **args).per_class
            after = evaluate_dataset(candidate, data_yaml, **args).per_class
            comparisons += [ClassComparison(name, spec["dataset"], c, m.instances, m.map50, after[c].map50)
                            for c, m in before.items() if m.instances]
    worse = [c for c in comparisons if c.delta < -tolerance]
    if worse and not force:
        details = "; ".join(f"{c.dataset} {c.class_name}: AP50 {c.candidate:.3f} vs {c.replaced} {c.active:.3f}"
                            for c in worse)
        raise PromotionRefused(f"{pack} {version} is worse than the packs it would replace beyond the tolerance of "
                               f"{tolerance}: {details}; use --force to promote it anyway")
    _write_atomically(models_dir / pack / ACTIVE_FILE, version + "\n")
    (models_dir / pack / REPLACED_FILE).unlink(missing_ok=True)
    for name in replaces:
        _write_atomically(models_dir / name / REPLACED_FILE, f"{pack} {version}\n")
    return comparisons


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)  # readers see the old or the new file, never a half-written one
