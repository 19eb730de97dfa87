"""The promotion gate: a new version becomes active only if it is not worse than the active one.

The gate never trusts the figures written in a card (a card's numbers can be edited, and a model file swapped
beside it): it checks the candidate's files against their sha256 in its card, then scores the candidate and the
active version afresh on the test splits the active card (or the candidate's) was evaluated on that are under
the datasets root, or, with none there, on the bank's test-split cases (per source dataset). A candidate whose
mAP50 is more than `tolerance` (at most MAX_TOLERANCE) below the active version's on any of them is refused; with
nothing to score on, promotion needs `force`. An active version that no longer loads (a damaged file) is
compared by the figures its card recorded for the same split, the candidate still scored afresh.

A pack can also replace other packs (one merged detector for two): `promote_replacing` scores
the candidate and every replaced pack afresh, per class, on each test split the replaced pack
was evaluated on (never reading numbers from cards), refuses any class more than `tolerance`
below, and then retires the replaced packs as it activates the candidate. What the gate decides
is written by the registry, to the home.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hazardvision.datasets.readers import read_yolo
from hazardvision.errors import HazardVisionError, PromotionRefused
from hazardvision.packs.card import EvaluatedSet, ModelCard
from hazardvision.packs.integrity import verify_files
from hazardvision.packs.registry import PackRegistry, PackVersion

if TYPE_CHECKING:
    from hazardvision.packs.evaluation import LabelledPhoto
    from hazardvision.packs.model_pack import ModelPack

log = logging.getLogger("hazardvision.packs")

DEFAULT_TOLERANCE = 0.01
MAX_TOLERANCE = 0.02
"""The largest mAP50 drop the gate may be told to allow: past it, promoting a worse model is a `force`."""
TestCases = Callable[[], Sequence["LabelledPhoto"]]
"""The bank's test-split cases, read only when no dataset split is at hand."""
Record = Callable[[Sequence["Comparison | ClassComparison"]], None]
"""Writes the audit record of an activation, given what the gate scored; if it raises, the activation is undone."""


def split_id(data_yaml: Path, split: str) -> str:
    """Content id of a dataset split: its photos' bytes and its label files, in name order."""
    digest = hashlib.sha256()
    for sample in sorted((f for f in read_yolo(data_yaml).files if f.split == split), key=lambda f: f.name):
        digest.update(hashlib.sha256(sample.image.read_bytes()).digest())
        digest.update(repr([(b.source_class, round(b.x1, 6), round(b.y1, 6), round(b.x2, 6), round(b.y2, 6))
                            for b in sample.boxes]).encode())
    return digest.hexdigest()[:16]


def check_tolerance(tolerance: float) -> None:
    """PromotionRefused for a tolerance outside 0..MAX_TOLERANCE."""
    if not 0 <= tolerance <= MAX_TOLERANCE:
        raise PromotionRefused(f"a tolerance of {tolerance} is outside 0 to {MAX_TOLERANCE}, what the gate allows "
                               "(a larger one lets a much worse model through); to promote a version the gate "
                               "refuses, promote it with force (--force)")


@dataclass(frozen=True)
class Comparison:
    """mAP50 of the active and the candidate version on one test split, scored by the gate."""

    dataset: str
    split_id: str
    active: float
    candidate: float
    source: str = "datasets"
    """What was scored: `datasets` (a split under the datasets root), `bank` (the bank's test-split cases of the
    dataset); `card` where the active version no longer loads and its card's figure stood in for it."""

    @property
    def delta(self) -> float:
        return self.candidate - self.active


def _scores(card: ModelCard) -> dict[str, tuple[str, float]]:
    """split id -> (dataset, mAP50) recorded in a card."""
    datasets = card.metrics.datasets if card.metrics is not None else {}
    return {spec.split_id: (spec.dataset, datasets[spec.dataset].map50)
            for spec in card.evaluation_sets if spec.split_id and spec.dataset in datasets}


def compare(active: ModelCard, candidate: ModelCard) -> list[Comparison]:
    """The test splits both cards were evaluated on, with both recorded scores (for display; the gate rescores)."""
    mine, theirs = _scores(active), _scores(candidate)
    return [Comparison(mine[k][0], k, mine[k][1], theirs[k][1], "card") for k in sorted(set(mine) & set(theirs))]


class _ScoreCache:
    """mAP50 by model file hash, precision and content id of what was scored: promoting back and forth, or
    retrying, scores nothing twice."""

    def __init__(self, size: int = 64) -> None:
        self._scores: OrderedDict[tuple[str, ...], float] = OrderedDict()
        self._lock = threading.Lock()
        self.size = size

    def get(self, pack: ModelPack, content: str, score: Callable[[], float]) -> float:
        model = pack.card.file_sha256.get(str(pack.model_path.relative_to(pack.folder))) or pack.sha256
        key = (model, pack.precision.value, pack.card.model_dump_json(include={"classes", "class_thresholds"}),
               content)
        with self._lock:
            if key in self._scores:
                return self._scores[key]
        value = score()
        with self._lock:
            self._scores[key] = value
            while len(self._scores) > self.size:
                self._scores.popitem(last=False)
        return value


_cache = _ScoreCache()


def rescore(active: PackVersion, candidate: PackVersion, *, datasets: Path | None = None,
            test_cases: TestCases | None = None) -> list[Comparison]:
    """Both versions scored now on the test splits under `datasets`, else on the bank's `test_cases`; empty when
    there is nothing to score on."""
    challenger = candidate.load()
    active_card = active.card()
    try:
        defender: ModelPack | None = active.load()
    except (HazardVisionError, OSError) as error:  # a damaged active version: its card's figures stand in
        log.warning("the active %s %s does not load (%s); the gate compares %s with its card's figures",
                    active.pack, active.version, error, candidate.version)
        defender = None
    recorded = _scores(active_card)
    sets: dict[str, EvaluatedSet] = {}
    for spec in (*active_card.evaluation_sets, *challenger.card.evaluation_sets):
        sets.setdefault(spec.dataset, spec)
    comparisons = []
    for spec in sets.values():
        data_yaml = datasets / spec.dataset / "data.yaml" if datasets is not None else None
        if data_yaml is None or not data_yaml.is_file():
            continue
        content = split_id(data_yaml, spec.split)
        theirs = _score_split(challenger, spec, data_yaml, content)
        if defender is not None:
            comparisons.append(Comparison(spec.dataset, content, _score_split(defender, spec, data_yaml, content),
                                          theirs))
        elif content in recorded:
            comparisons.append(Comparison(spec.dataset, content, recorded[content][1], theirs, "card"))
    if comparisons or test_cases is None or defender is None:
        return comparisons
    return _rescore_cases(defender, challenger, test_cases())


def _score_split(pack: ModelPack, spec: EvaluatedSet, data_yaml: Path, content: str) -> float:
    """mAP50 of `pack` on one dataset split (of content id `content`), from the cache when scored before."""
    from hazardvision.packs.evaluation import evaluate_dataset  # noqa: PLC0415  (scoring only here)

    return _cache.get(pack, f"{spec.dataset}:{content}", lambda: evaluate_dataset(
        pack, data_yaml, split=spec.split, mapping=spec.map, drop=spec.drop).map50)


def _rescore_cases(active: ModelPack, candidate: ModelPack, photos: Sequence[LabelledPhoto]) -> list[Comparison]:
    """Both packs scored on the bank's test-split cases, per source dataset."""
    from hazardvision.packs.evaluation import evaluate_photos  # noqa: PLC0415

    by_source: dict[str, list[LabelledPhoto]] = {}
    for photo in photos:
        by_source.setdefault(photo.source, []).append(photo)
    comparisons = []
    for source, chosen in sorted(by_source.items()):
        if not any(box[0] in candidate.card.classes or box[0] in active.card.classes
                   for photo in chosen for box in photo.boxes):
            continue  # nothing either pack detects is labelled there
        digest = hashlib.sha256(repr(sorted((p.sha256, p.boxes) for p in chosen)).encode()).hexdigest()[:16]
        scores = [_cache.get(pack, f"bank:{source}:{digest}",
                             lambda pack=pack, chosen=chosen: evaluate_photos(pack, chosen).map50)  # type: ignore[misc]
                  for pack in (active, candidate)]
        comparisons.append(Comparison(source, digest, scores[0], scores[1], "bank"))
    return comparisons


def _activate(registry: PackRegistry, pack: str, version: str, comparisons: Sequence[Comparison | ClassComparison],
              *, record: Record | None, retire: Sequence[str] = ()) -> None:
    """Write the activation (and the retirements) to the home, then its audit record; undone if that fails."""
    with registry.preserved(pack, *retire):
        registry.activate(pack, version)
        for name in retire:
            registry.retire(name, f"{pack} {version}")
        if record is not None:
            record(comparisons)


def promote(
    registry: PackRegistry, pack: str, version: str, *, force: bool = False, tolerance: float = DEFAULT_TOLERANCE,
    datasets: Path | None = None, test_cases: TestCases | None = None, record: Record | None = None,
) -> list[Comparison]:
    """Make `version` the active version of `pack`, through the gate unless `force`.

    Its files are checked against its card's sha256 first, forced or not. The gate scores it and the active
    version on the test splits under `datasets`, else on the bank's `test_cases`; with neither it refuses.
    `record` writes the activation's audit record (it is undone when that fails)."""
    check_tolerance(tolerance)
    candidate = registry.version(pack, version)
    card = candidate.card()
    verify_files(candidate.folder, card, require=registry.require_hashes)
    if not registry.serves(pack):
        if not force:
            raise PromotionRefused(f"{pack} serves no version yet (staged or replaced), so there is nothing to compare "
                                   f"{version} with; promote it with --replaces PACK,... (the packs it takes over "
                                   "from), or with --force")
        _activate(registry, pack, version, [], record=record)
        return []
    active = registry.active(pack)
    if active.folder == candidate.folder:
        if record is not None:
            record([])  # nothing changes, but what was asked for is on the record
        return []
    if force:
        _activate(registry, pack, version, [], record=record)
        return []
    comparisons = rescore(active, candidate, datasets=datasets, test_cases=test_cases)
    if not comparisons:
        names = ", ".join(sorted({s.dataset for s in (*active.card().evaluation_sets, *card.evaluation_sets)}))
        raise PromotionRefused(
            f"{pack} {version} cannot be scored against the active {active.version}: none of the test splits "
            f"({names or 'none recorded'}) is under the datasets root ({datasets}), and the bank has no test-split "
            "cases to score on; the gate does not trust the figures in a card. Point it at the datasets "
            "(--datasets DIR or HAZARDVISION_DATASETS), import their test splits into the bank, or promote with "
            "force")
    worse = [c for c in comparisons if c.delta < -tolerance]
    if worse:
        details = "; ".join(f"{c.dataset}: mAP50 {c.candidate:.3f} vs {c.active:.3f}"
                            + (" (its card's figure)" if c.source == "card" else "") for c in worse)
        raise PromotionRefused(
            f"{pack} {version} is worse than the active {active.version} beyond the tolerance of "
            f"{tolerance}: {details} (both scored now); use --force to promote it anyway"
        )
    _activate(registry, pack, version, comparisons, record=record)
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
    tolerance: float = DEFAULT_TOLERANCE, force: bool = False, record: Record | None = None,
) -> list[ClassComparison]:
    """Activate `pack` `version` in place of the active versions of `replaces`, through the per-class gate;
    `record` as for `promote`."""
    from hazardvision.packs.evaluation import evaluate_dataset  # noqa: PLC0415  (scoring only here)

    check_tolerance(tolerance)
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
    _activate(registry, pack, version, comparisons, record=record, retire=replaces)
    return comparisons
