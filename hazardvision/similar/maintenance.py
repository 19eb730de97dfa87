"""Keeping the similar-case indexes of the active packs in step with the bank."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence

from hazardvision.bank.bank import SampleBank
from hazardvision.data.generations import Generations, Kind
from hazardvision.packs.model_pack import ModelPack
from hazardvision.similar.case_index import CaseIndex, SyncReport

PackProgress = Callable[[str, int, int], None]
"""Called with (pack, photos embedded, photos to embed)."""


def verify_indexes(bank: SampleBank, packs: Sequence[ModelPack], *, required: bool = False) -> list[str]:
    """Differences between the bank and the index of each pack; packs without an index are skipped
    unless `required` (an index is optional: without one, scans carry no similar cases)."""
    problems = []
    for pack in packs:
        index = CaseIndex(bank.home, pack)
        if index.exists or index.damage or required:
            problems.extend(index.verify(bank))
    return problems


def sync_indexes(
    bank: SampleBank, packs: Sequence[ModelPack], *, rebuild: bool = False, only_existing: bool = False,
    progress: PackProgress | None = None, compact: bool = False,
) -> dict[str, SyncReport]:
    """Bring each pack's index in step with the bank (build it when missing, unless `only_existing`);
    `compact` folds the delta files into the base file."""
    reports = {}
    for pack in packs:
        index = CaseIndex(bank.home, pack, vectors=False)  # a rebuild needs none, a compaction reads them
        if only_existing and not index.exists:
            continue
        step = None if progress is None else (lambda done, total, name=pack.name: progress(name, done, total))
        reports[pack.name] = index.sync(bank, rebuild=rebuild, progress=step, compact=compact)
    if any(report.added or report.removed or rebuild for report in reports.values()):
        Generations(bank.database).bump(Kind.CASES)  # running services reload the index files
    return reports


def update_indexes(
    bank: SampleBank, indexes: Iterable[CaseIndex], case_ids: Collection[int] | None
) -> dict[str, SyncReport]:
    """Bring these loaded indexes in step with the bank, in place: only the vectors of `case_ids` when given
    (a review, without reading the whole bank), else every difference. Each change is one delta file."""
    reports = {}
    for index in indexes:
        if index.exists:
            reports[index.pack.name] = index.sync(bank) if case_ids is None else index.update(bank, case_ids)
    _announce(bank, reports)
    return reports


def update_cases(
    bank: SampleBank, packs: Sequence[ModelPack], case_ids: Collection[int], *, progress: PackProgress | None = None,
) -> dict[str, SyncReport]:
    """After a command changed these cases and no others (an import's new or relabelled cases, a deletion),
    bring each pack's existing index in step for them: one delta file each, reading neither the whole bank
    nor the index's vectors (what 100,000 cases would cost is seconds, for a change of a few). A process
    killed between the bank's write and this leaves a difference that `bank verify` finds and
    `bank reindex` (or a service's start, which compares the whole bank) repairs."""
    reports: dict[str, SyncReport] = {}
    if not case_ids:
        return reports
    for pack in packs:
        index = CaseIndex(bank.home, pack, vectors=False)
        if index.exists:
            step = None if progress is None else (lambda done, total, name=pack.name: progress(name, done, total))
            reports[pack.name] = index.update(bank, case_ids, progress=step)
    _announce(bank, reports)
    return reports


def _announce(bank: SampleBank, reports: dict[str, SyncReport]) -> None:
    if any(sum(report.added.values()) + sum(report.removed.values()) for report in reports.values()):
        Generations(bank.database).bump(Kind.CASES)  # the other processes read the new delta file
