"""The model registry: which version of each pack is active, and the gate a new one must pass.

A candidate is promoted only if, on every test split that both its card and the active card
were evaluated on (the same split id: a hash of the split's photos and labels), its mAP50 is at
most `tolerance` below the active version's. Cards that share no split cannot be compared, and
promotion then needs `force`.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hazardvision.bank.readers import read_yolo
from hazardvision.errors import PromotionRefused, UnknownModel
from hazardvision.model_pack import ACTIVE_FILE, CARD_FILE, active_version

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
    marker = pack_folder / ACTIVE_FILE
    temporary = marker.with_name(f".{ACTIVE_FILE}.{os.getpid()}")
    temporary.write_text(version + "\n", encoding="utf-8")
    os.replace(temporary, marker)  # readers see the old or the new version, never a half-written file
    return comparisons
