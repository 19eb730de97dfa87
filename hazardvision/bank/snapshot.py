"""Frozen dataset snapshots for training: a YOLO folder plus a manifest, named by their content.

The snapshot id is a hash of everything that shapes the training data (classes, split rule,
each photo's hash, split and labels), so the same bank and arguments give the same id and any
changed label or photo gives a new one. Each case contributes its latest label version, and the
manifest names the version of each photo: the bank keeps every version, so an old snapshot's labels
stay readable after a correction (`bank history`), and `reproduce_snapshot` rebuilds an old
snapshot from its record: the cases as they were, each with the label version it had then.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import random
import shutil
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, Field

from hazardvision.bank.bank import SampleBank
from hazardvision.bank.groups import original_name
from hazardvision.data.bank_records import LABELLED_ORIGINS, Case
from hazardvision.data.cases import Box
from hazardvision.data.labels import CaseLabels, Version
from hazardvision.data.snapshots import Snapshots
from hazardvision.errors import BankError
from hazardvision.home import Home

SPLITS = ("train", "val", "test")
__all__ = ["LABELLED_ORIGINS", "SPLITS", "SnapshotManifest", "SplitRule", "make_snapshot", "reproduce_snapshot"]


class SplitRule(StrEnum):
    SOURCE = "source"
    """Keep each photo in the split its source dataset gave it."""
    GROUP = "group"
    """Assign whole leakage groups to splits at random (seeded), by the given ratios."""


class SplitCounts(BaseModel):
    images: int = Field(description="Photos in the split.")
    backgrounds: int = Field(description="Photos without any box of the chosen classes.")
    boxes: dict[str, int] = Field(description="Boxes per class.")


class SnapshotFile(BaseModel):
    sha256: str = Field(description="SHA-256 of the photo.")
    split: str = Field(description="train, val or test.")
    source: str = Field(description="Source dataset.")
    source_file: str = Field(description="File name within the source.")
    case_id: int | None = Field(default=None, description="The case of the photo (absent in older manifests).")
    label_version: int = Field(default=1, description="The version of the case's labels the snapshot took "
                               "(`hazardvision bank history CASE_ID` shows each version).")


class SourceCredit(BaseModel):
    name: str = Field(description="Source dataset.")
    licence: str | None = Field(description="Its licence.")
    origin: str | None = Field(description="Where it comes from (to credit).")
    images: int = Field(description="Photos of this source in the snapshot.")


class SnapshotManifest(BaseModel):
    id: str = Field(description="Content hash naming the snapshot.")
    created_at: dt.datetime = Field(description="When it was written.")
    path: str = Field(description="Folder of the YOLO dataset.")
    classes: list[str] = Field(description="Class names; a label's class index points here.")
    split_rule: SplitRule = Field(description="How photos were split.")
    seed: int | None = Field(description="Seed of a group split.")
    ratios: list[float] | None = Field(description="train/val/test ratios of a group split.")
    originals_only: bool = Field(default=False, description="Training photos are one per original of augmented "
                                 "copies.")
    counts: dict[str, SplitCounts] = Field(description="Counts per split.")
    sources: list[SourceCredit] = Field(description="Sources and their licences.")
    files: list[SnapshotFile] = Field(description="Every photo, with its hash and split.")


@dataclass(frozen=True)
class _Row:
    sha256: str
    extension: str
    split: str
    source: str
    source_file: str
    labels: tuple[str, ...]
    group_id: str
    case_id: int
    label_version: int


def make_snapshot(
    bank: SampleBank,
    *,
    classes: Sequence[str],
    sources: Sequence[str] | None = None,
    split_rule: SplitRule = SplitRule.SOURCE,
    seed: int = 0,
    ratios: Sequence[float] = (0.8, 0.1, 0.1),
    out: Path | None = None,
    originals_only: bool = False,
    as_of: dt.datetime | None = None,
    expected_id: str | None = None,
) -> SnapshotManifest:
    """Freeze the bank's cases (of `sources`, all by default) into a YOLO dataset of `classes`.

    `originals_only` keeps one training photo per original of augmented copies (`<orig>.rf.<hash>`).
    `as_of` takes the cases the bank had then, each with the label version it had then (default: now).
    With `expected_id`, a snapshot of another id is refused before anything is written.
    """
    if not classes:
        raise BankError("a snapshot needs at least one class (--classes helmet,no_helmet,...)")
    if split_rule is SplitRule.GROUP and (len(ratios) != 3 or abs(sum(ratios) - 1) > 1e-6 or min(ratios) < 0):
        raise BankError(f"--ratios must be three non-negative numbers summing to 1, got {list(ratios)}")
    rows, credits = _collect(bank, list(classes), sources, split_rule, as_of)
    if not rows:
        raise BankError("no cases match: import a dataset first, or check --sources")
    if split_rule is SplitRule.GROUP:
        rows = _split_by_group(rows, seed, ratios)
    rows.sort(key=lambda r: r.sha256)
    if originals_only:
        rows = _one_per_original(rows)
    grouped = split_rule is SplitRule.GROUP
    seed_used, ratios_used = (seed, list(ratios)) if grouped else (None, None)
    key: dict[str, object] = {"classes": list(classes), "split_rule": split_rule.value, "seed": seed_used,
                              "ratios": ratios_used, "rows": [(r.sha256, r.split, r.labels) for r in rows]}
    if originals_only:
        key["originals_only"] = True  # only when set: ids of earlier snapshots stay what they were
    digest = hashlib.sha256(json.dumps(key, separators=(",", ":")).encode())
    snapshot_id = digest.hexdigest()[:16]
    if expected_id is not None and snapshot_id != expected_id:
        raise BankError(f"the bank no longer gives snapshot {expected_id} (it gives {snapshot_id}): cases of it were "
                        "deleted or their leakage groups changed since; label corrections alone are undone")
    folder = (out or Home(bank.home).snapshots) / snapshot_id
    manifest = SnapshotManifest(
        id=snapshot_id, created_at=dt.datetime.now(dt.UTC), path=str(folder), classes=list(classes),
        split_rule=split_rule, seed=seed_used, ratios=ratios_used, originals_only=originals_only,
        counts=_counts(rows, classes),
        sources=[c.model_copy(update={"images": sum(r.source == c.name for r in rows)}) for c in credits
                 if any(r.source == c.name for r in rows)],
        files=[SnapshotFile(sha256=r.sha256, split=r.split, source=r.source, source_file=r.source_file,
                            case_id=r.case_id, label_version=r.label_version) for r in rows],
    )
    if (folder / "manifest.json").is_file():
        return SnapshotManifest.model_validate_json((folder / "manifest.json").read_text())
    try:
        _write(bank, folder, rows, manifest)
    except OSError as error:
        raise BankError(f"cannot write the snapshot to {folder}: {error.strerror or error}") from error
    Snapshots(bank.database).record(snapshot_id=snapshot_id, path=str(folder),
                                    manifest=json.loads(manifest.model_dump_json(exclude={"files"})))
    return manifest


def reproduce_snapshot(bank: SampleBank, snapshot_id: str, *, out: Path | None = None) -> SnapshotManifest:
    """Write snapshot `snapshot_id` again from its record in the bank (its folder may be gone): its classes and
    split rule, over the cases the bank had when it was made, each at the label version it had then."""
    record = Snapshots(bank.database).get(snapshot_id=snapshot_id)
    if record is None:
        raise BankError(f"no snapshot {snapshot_id} recorded in the bank at {bank.home}")
    made = SnapshotManifest.model_validate({**record.manifest, "files": []})
    return make_snapshot(bank, classes=made.classes, sources=[credit.name for credit in made.sources],
                         split_rule=made.split_rule, seed=made.seed or 0, ratios=made.ratios or (0.8, 0.1, 0.1),
                         out=out, originals_only=made.originals_only, as_of=made.created_at, expected_id=snapshot_id)


def _labels_then(case: Case, versions: list[Version], as_of: dt.datetime | None) -> tuple[int, list[tuple[str, Box]]]:
    """The label version a case had at `as_of` (now when None) and its boxes."""
    current = [(a.class_name, (a.x1, a.y1, a.x2, a.y2)) for a in case.annotations if a.origin in LABELLED_ORIGINS
               and (as_of is None or a.reviewed_at is None or a.reviewed_at <= as_of)]  # reviews since: not then
    latest = versions[-1].version if versions else 1
    if as_of is None or not versions:
        return latest, current
    then = [version for version in versions if version.created_at <= as_of] or versions[:1]
    if then[-1].version == latest:
        return latest, current
    return then[-1].version, [(label.class_name, label.box) for label in then[-1].labels]


def _collect(
    bank: SampleBank, classes: list[str], sources: Sequence[str] | None, split_rule: SplitRule,
    as_of: dt.datetime | None = None,
) -> tuple[list[_Row], list[SourceCredit]]:
    index = {name: i for i, name in enumerate(classes)}
    rows = []
    known = {s.name: s for s in bank.records.sources()}
    wanted = list(sources) if sources else sorted(known)
    missing = sorted(set(wanted) - set(known))
    if missing:
        raise BankError(f"unknown sources {missing}; the bank has {sorted(known)}")
    cases = [case for case in bank.records.of_sources(names=wanted) if as_of is None or case.created_at <= as_of]
    recorded = CaseLabels(bank.database).recorded(case_ids=[case.id for case in cases])
    for case in cases:
        if split_rule is SplitRule.SOURCE and case.source_split not in SPLITS:
            raise BankError(f"case {case.id} ({case.source.name}) has no source split; use --split group")
        width, height = case.image.width, case.image.height
        version, boxes = _labels_then(case, recorded.get(case.id, []), as_of)
        labels = tuple(sorted(
            f"{index[name]} {(x1 + x2) / 2 / width:.6f} {(y1 + y2) / 2 / height:.6f} "
            f"{(x2 - x1) / width:.6f} {(y2 - y1) / height:.6f}"
            for name, (x1, y1, x2, y2) in boxes if name in index
        ))
        rows.append(_Row(case.image_sha256, bank.store.path(case.image_sha256, case.image.format).suffix,
                         case.source_split or "", case.source.name, case.source_file, labels,
                         case.image.group_id or case.image_sha256, case.id, version))
    credits = [SourceCredit(name=n, licence=known[n].licence, origin=known[n].origin, images=0) for n in wanted]
    return rows, credits


def _one_per_original(rows: list[_Row]) -> list[_Row]:
    """The first (by hash) training photo of each original; val and test keep every photo."""
    kept, seen = [], set()
    for row in rows:
        if row.split == "train":
            original = (row.source, original_name(row.source_file))
            if original in seen:
                continue
            seen.add(original)
        kept.append(row)
    return kept


def _split_by_group(rows: list[_Row], seed: int, ratios: Sequence[float]) -> list[_Row]:
    """Shuffle groups with `seed`, then give each to the split furthest below its share."""
    members: dict[str, list[_Row]] = defaultdict(list)
    for row in rows:
        members[row.group_id].append(row)
    order = sorted(members)
    random.Random(seed).shuffle(order)
    filled = dict.fromkeys(SPLITS, 0)
    assigned = []
    for group in order:
        split = max(SPLITS, key=lambda s: ratios[SPLITS.index(s)] * len(rows) - filled[s])
        filled[split] += len(members[group])
        assigned += [dataclasses.replace(r, split=split) for r in members[group]]
    return assigned


def _counts(rows: list[_Row], classes: Sequence[str]) -> dict[str, SplitCounts]:
    counts = {}
    for split in SPLITS:
        chosen = [r for r in rows if r.split == split]
        boxes = Counter(classes[int(line.split()[0])] for r in chosen for line in r.labels)
        counts[split] = SplitCounts(images=len(chosen), backgrounds=sum(not r.labels for r in chosen),
                                    boxes={c: boxes.get(c, 0) for c in classes})
    return counts


def _write(bank: SampleBank, folder: Path, rows: list[_Row], manifest: SnapshotManifest) -> None:
    """Write the YOLO folder beside its final place, then rename it into place in one step."""
    temporary = folder.with_name(f".{folder.name}.{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    for split in SPLITS:
        (temporary / "images" / split).mkdir(parents=True)
        (temporary / "labels" / split).mkdir(parents=True)
    for row in rows:
        source = bank.store.root / row.sha256[:2] / f"{row.sha256}{row.extension}"
        target = temporary / "images" / row.split / f"{row.sha256}{row.extension}"
        try:
            os.link(source, target)  # same file system: no copy, and the store is never written through it
        except OSError:
            shutil.copyfile(source, target)
        (temporary / "labels" / row.split / f"{row.sha256}.txt").write_text(
            "".join(line + "\n" for line in row.labels))
    (temporary / "data.yaml").write_text(
        f"# hazardvision snapshot {manifest.id}\npath: {folder}\ntrain: images/train\nval: images/val\n"
        f"test: images/test\nnames: {json.dumps(manifest.classes)}\n")
    (temporary / "manifest.json").write_text(manifest.model_dump_json(indent=2))
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(temporary, folder)
    except OSError:
        if not (folder / "manifest.json").is_file():
            raise
        shutil.rmtree(temporary)  # another process wrote the same snapshot first: same content
