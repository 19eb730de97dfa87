"""Importing a labelled dataset into the sample bank, crash-safely and without duplicates.

Photos are identified by the SHA-256 of their bytes, so re-importing a dataset, or a renamed copy
of it, adds nothing; a photo already in the bank whose labels differ from its case's is reported
(and, with `update_labels`, its labels are corrected as a new label version). Each batch goes
into the bank through `Cases.add`, whose three steps (journal, write, commit) leave either a
committed batch or pending entries whose files the next open removes, whenever the import is killed.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import BaseModel, Field

from hazardvision.bank.bank import SampleBank, new_photo
from hazardvision.bank.labels import IMPORT_VIA, compare_labels
from hazardvision.bank.views import LabelDifference
from hazardvision.data.bank_records import Origin
from hazardvision.data.cases import NewAnnotation, NewCase, Provenance
from hazardvision.data.labels import CaseLabels, Label, StoredLabels
from hazardvision.datasets.classmap import ClassMap
from hazardvision.datasets.readers import Dataset, SampleFile
from hazardvision.errors import InvalidImage
from hazardvision.images import decode_image

DEFAULT_BATCH = 64


class FileReport(BaseModel):
    file: str = Field(description="File name within the dataset.")
    errors: list[str] = Field(default_factory=list, description="Why the file was not imported.")
    warnings: list[str] = Field(default_factory=list, description="What was repaired on import.")


class ImportReport(BaseModel):
    """What an import did, with every per-file problem."""

    source: str = Field(description="Source name the cases were recorded under.")
    files: int = Field(description="Image files in the dataset.")
    imported: int = Field(description="New cases added.")
    already_in_bank: int = Field(description="Photos skipped because the bank already holds them (same bytes).")
    failed: int = Field(description="Files not imported because of errors.")
    backgrounds: int = Field(description="New cases without any box (empty label, or only dropped classes).")
    boxes: dict[str, dict[str, int]] = Field(description="Boxes imported, per split and source class.")
    dropped: dict[str, dict[str, int]] = Field(description="Boxes of dropped classes, per split and source class.")
    empty_label_files: dict[str, int] = Field(description="Label files without any row, per split.")
    dataset_problems: list[str] = Field(description="Problems not tied to one image file.")
    problems: list[FileReport] = Field(description="Files with errors or warnings.")
    groups: int = Field(description="Leakage groups in the bank after the import.")
    labels_differ: int = Field(default=0, description="Photos already in the bank whose labels in the dataset "
                               "differ from their case's.")
    labels_updated: int = Field(default=0, description="Of those, the cases whose labels were corrected to the "
                                "dataset's as a new label version (--update-labels).")
    label_differences: list[LabelDifference] = Field(default_factory=list, description="Each photo whose labels "
                                                     "differ, and how.")
    changed_cases: list[int] = Field(default_factory=list, exclude=True, description="Ids of the cases this import "
                                     "added or relabelled: the similar-case index updates these, not the whole bank.")


@dataclass
class _Prepared:
    """A file ready to store: its bytes and what was learnt from its pixels (not the pixels, to bound memory)."""

    sample: SampleFile
    case: NewCase


@dataclass
class _Tally:
    imported: int = 0
    duplicates: int = 0
    failed: int = 0
    backgrounds: int = 0
    boxes: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    dropped: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    empty_labels: Counter[str] = field(default_factory=Counter)
    problems: list[FileReport] = field(default_factory=list)
    differences: list[LabelDifference] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)
    settled: set[str] = field(default_factory=set)
    """Photos this import added or compared: a later copy of one (same bytes, another name) is not compared,
    so that two copies with different labels cannot take turns at being the case's labels."""


@dataclass(frozen=True)
class _Relabelling:
    """Whether and how a re-import corrects the labels that differ."""

    update: bool
    author: str
    reason: str


Progress = Callable[[int], None]
"""Called with the number of files handled since the last call."""


def import_dataset(
    bank: SampleBank,
    dataset: Dataset,
    class_map: ClassMap,
    *,
    batch_size: int = DEFAULT_BATCH,
    on_progress: Progress | None = None,
    site: str | None = None,
    enterprise: str | None = None,
    update_labels: bool = False,
) -> ImportReport:
    """Import every readable file of `dataset` (its cases at `site` of `enterprise`, if given);
    report what was skipped and why, and the photos already in the bank whose labels differ
    (corrected to the dataset's as a new label version when `update_labels`)."""
    tally = _Tally()
    relabelling = _Relabelling(update_labels, f"import of {dataset.name}",
                               f"re-import of {dataset.origin or dataset.root} with --update-labels")
    with bank.writer():
        place = bank.records.provenance(source=dataset.name, kind=dataset.kind, origin=dataset.origin,
                                        licence=dataset.licence, site=site, enterprise=enterprise)
        for start in range(0, len(dataset.files), batch_size):
            batch = dataset.files[start : start + batch_size]
            _import_batch(bank, batch, class_map, place, tally, relabelling=relabelling)
            if on_progress:
                on_progress(len(batch))
        groups = bank.regroup()
    return ImportReport(
        source=dataset.name, files=len(dataset.files), imported=tally.imported,
        already_in_bank=tally.duplicates, failed=tally.failed, backgrounds=tally.backgrounds,
        boxes={s: dict(c) for s, c in tally.boxes.items()}, dropped={s: dict(c) for s, c in tally.dropped.items()},
        empty_label_files=dict(tally.empty_labels), dataset_problems=dataset.problems, problems=tally.problems,
        groups=groups, labels_differ=len(tally.differences),
        labels_updated=sum(d.updated_to is not None for d in tally.differences), label_differences=tally.differences,
        changed_cases=tally.changed,
    )


def _import_batch(bank: SampleBank, batch: list[SampleFile], class_map: ClassMap, place: Provenance,
                  tally: _Tally, *, relabelling: _Relabelling) -> None:
    read = _read(batch, tally)
    known = bank.records.known_photos(hashes=[sha for _, _, sha in read])
    stored = CaseLabels(bank.database).of_photos(hashes=known) if known else {}
    prepared: dict[str, _Prepared] = {}
    for sample, data, sha in read:
        if sha in known or sha in prepared:
            tally.duplicates += 1
            if sha in stored and sha not in tally.settled:  # the first of copies in one dataset speaks for them
                tally.settled.add(sha)
                _compare(bank, sample, stored[sha], class_map, tally=tally, relabelling=relabelling)
            continue
        item = _prepare(sample, data, class_map)
        if isinstance(item, list):
            _fail(tally, sample, item)
        else:
            prepared[sha] = item
    if prepared:
        added = bank.records.add(cases=[item.case for item in prepared.values()], provenance=place)
        tally.changed.extend(added.values())
        tally.settled.update(prepared)
    for item in prepared.values():
        _count(tally, item, class_map)


def _compare(bank: SampleBank, sample: SampleFile, stored: StoredLabels, class_map: ClassMap, *, tally: _Tally,
             relabelling: _Relabelling) -> None:
    """Report (and with `update_labels` apply) how the dataset's labels of a known photo differ from the bank's."""
    new = []
    for box in sample.boxes:
        target = class_map.target(box.source_class)
        if target is not None:
            new.append(Label(target, box.pixels(stored.width, stored.height), box.source_class, Origin.IMPORTED.value))
    difference = compare_labels(stored.labels, new, file=sample.name, case_id=stored.case_id, version=stored.version)
    if difference is None:
        return
    if relabelling.update:
        difference.updated_to = CaseLabels(bank.database).correct(
            case_id=stored.case_id, author=relabelling.author, via=IMPORT_VIA, reason=relabelling.reason,
            labels=[NewAnnotation(class_name=label.class_name, source_class=label.source_class,
                                  origin=Origin.IMPORTED.value, box=label.box) for label in new])
        tally.changed.append(stored.case_id)
    tally.differences.append(difference)


def _read(batch: list[SampleFile], tally: _Tally) -> list[tuple[SampleFile, bytes, str]]:
    """Bytes and SHA-256 of each file that has no known problem and can be read."""
    read = []
    for sample in batch:
        if sample.errors:
            _fail(tally, sample, sample.errors)
            continue
        try:
            data = sample.image.read_bytes()
        except OSError as error:
            _fail(tally, sample, [f"cannot read the image: {error.strerror or error}"])
            continue
        read.append((sample, data, hashlib.sha256(data).hexdigest()))
    return read


def _prepare(sample: SampleFile, data: bytes, class_map: ClassMap) -> _Prepared | list[str]:
    """Decode and check one file; its annotations in pixels, or the errors that stop it."""
    try:
        decoded = decode_image(data)
    except InvalidImage as error:
        return [f"unreadable image: {error}"]
    if sample.expected_size and sample.expected_size != (decoded.width, decoded.height):
        width, height = sample.expected_size
        return [f"the label file says {width}x{height} but the image is {decoded.width}x{decoded.height}"]
    annotations = []
    for box in sample.boxes:
        target = class_map.target(box.source_class)
        if target is None:
            continue
        annotations.append(NewAnnotation(class_name=target, source_class=box.source_class,
                                         origin=Origin.IMPORTED.value, box=box.pixels(decoded.width, decoded.height)))
    case = NewCase(photo=new_photo(decoded, data), source_file=sample.name, source_split=sample.split,
                   annotations=tuple(annotations))
    return _Prepared(sample, case)


def _count(tally: _Tally, item: _Prepared, class_map: ClassMap) -> None:
    split = item.sample.split or "none"
    tally.imported += 1
    tally.backgrounds += not item.case.annotations
    tally.empty_labels[split] += item.sample.empty_label
    for box in item.sample.boxes:
        target = tally.dropped if class_map.target(box.source_class) is None else tally.boxes
        target[split][box.source_class] += 1
    if item.sample.warnings:
        tally.problems.append(FileReport(file=item.sample.name, warnings=item.sample.warnings))


def _fail(tally: _Tally, sample: SampleFile, errors: list[str]) -> None:
    tally.failed += 1
    tally.problems.append(FileReport(file=sample.name, errors=errors, warnings=sample.warnings))
