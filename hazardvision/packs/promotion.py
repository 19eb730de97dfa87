"""The promotion gate: a new version becomes active only if it is not worse than the active one.

A candidate is promoted only if, on every test split that both its card and the active card
were evaluated on (the same split id: a hash of the split's photos and labels), its mAP50 is at
most `tolerance` below the active version's. Cards that share no split cannot be compared, and
promotion then needs `force`.

A pack can also replace other packs (one merged detector for two): `promote_replacing` scores
the candidate and every replaced pack afresh, per class, on each test split the replaced pack
was evaluated on (never reading numbers from cards), refuses any class more than `tolerance`
below, and then retires the replaced packs as it activates the candidate. What the gate decides
is written by the registry, to the home.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hazardvision.datasets.readers import read_yolo
from hazardvision.errors import PromotionRefused
from hazardvision.packs.card import ModelCard
from hazardvision.packs.registry import PackRegistry

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


def _scores(card: ModelCard) -> dict[str, tuple[str, float]]:
    """split id -> (dataset, mAP50) of a card."""
    datasets = card.metrics.datasets if card.metrics is not None else {}
    return {spec.split_id: (spec.dataset, datasets[spec.dataset].map50)
            for spec in card.evaluation_sets if spec.split_id and spec.dataset in datasets}


def compare(active: ModelCard, candidate: ModelCard) -> list[Comparison]:
    """The test splits both cards were evaluated on, with both scores."""
    mine, theirs = _scores(active), _scores(candidate)
    return [Comparison(mine[k][0], k, mine[k][1], theirs[k][1]) for k in sorted(set(mine) & set(theirs))]


def promote(
    registry: PackRegistry, pack: str, version: str, *, force: bool = False, tolerance: float = DEFAULT_TOLERANCE
) -> list[Comparison]:
    """Make `version` the active version of `pack`, through the gate unless `force`."""
    candidate = registry.version(pack, version)
    card = candidate.card()
    if not registry.serves(pack):
        if not force:
            raise PromotionRefused(f"{pack} serves no version yet (staged or replaced), so there is nothing to compare "
                                   f"{version} with; promote it with --replaces PACK,... (the packs it takes over "
                                   "from), or with --force")
        registry.activate(pack, version)
        return []
    active = registry.active(pack)
    if active.folder == candidate.folder:
        return []
    comparisons = compare(active.card(), card)
    if not force:
        if not comparisons:
            raise PromotionRefused(
                f"{pack} {version} and the active {active.version} share no evaluated test split; evaluate "
                "both on the same split, or promote with --force"
            )
        worse = [c for c in comparisons if c.delta < -tolerance]
        if worse:
            details = "; ".join(f"{c.dataset}: mAP50 {c.candidate:.3f} vs {c.active:.3f}" for c in worse)
            raise PromotionRefused(
                f"{pack} {version} is worse than the active {active.version} beyond the tolerance of "
                f"{tolerance}: {details}; use --force to promote it anyway"
            )
    registry.activate(pack, version)
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
    registry: PackRegistry, pack: str, version: str, replaces: Sequence[str], datasets: Path, *,
    tolerance: float = DEFAULT_TOLERANCE, force: bool = False,
) -> list[ClassComparison]:
    """Activate `pack` `version` in place of the active versions of `replaces`, through the per-class gate."""
    from hazardvision.packs.evaluation import evaluate_dataset  # noqa: PLC0415  (scoring only here)

    if pack in replaces:
        raise PromotionRefused(f"{pack} cannot replace itself; use `models promote {pack} {version}`")
    candidate = registry.version(pack, version).load()
    comparisons: list[ClassComparison] = []
    for name in replaces:
        replaced = registry.active(name).load()
        missing = sorted(set(replaced.card.classes) - set(candidate.card.classes))
        if missing:
            raise PromotionRefused(f"{pack} {version} lacks the classes {missing} of {name}, which it would replace")
        for spec in replaced.card.evaluation_sets:
            data_yaml = datasets / spec.dataset / "data.yaml"
            if not data_yaml.is_file():
                raise PromotionRefused(f"{name} was scored on {spec.dataset}, which is not under {datasets}; "
                                       "pass --datasets DIR")
            before = evaluate_dataset(replaced, data_yaml, split=spec.split, mapping=spec.map, drop=spec.drop)
            after = evaluate_dataset(candidate, data_yaml, split=spec.split, mapping=spec.map, drop=spec.drop)
            comparisons += [ClassComparison(name, spec.dataset, c, m.instances, m.map50, after.per_class[c].map50)
                            for c, m in before.per_class.items() if m.instances]
    worse = [c for c in comparisons if c.delta < -tolerance]
    if worse and not force:
        details = "; ".join(f"{c.dataset} {c.class_name}: AP50 {c.candidate:.3f} vs {c.replaced} {c.active:.3f}"
                            for c in worse)
        raise PromotionRefused(f"{pack} {version} is worse than the packs it would replace beyond the tolerance of "
                               f"{tolerance}: {details}; use --force to promote it anyway")
    registry.activate(pack, version)
    for name in replaces:
        registry.retire(name, f"{pack} {version}")
    return comparisons
