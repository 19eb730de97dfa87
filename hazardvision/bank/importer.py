"""Importing a labelled dataset into the sample bank, crash-safely and without duplicates.

Photos are identified by the SHA-256 of their bytes, so re-importing a dataset, or a renamed copy
of it, adds nothing. Each batch is written in three steps: (1) the photos about to be stored are
journalled as pending and committed, (2) the files are written to the store, (3) images, cases
and annotations are inserted and the journal entries deleted in one transaction. A crash at any
point leaves either a committed batch or pending entries whose files the next open removes.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import BaseModel, Field

from hazardvision.bank.bank import SampleBank
from hazardvision.bank.groups import dhash
from hazardvision.data.bank_records import Annotation, Case, Image, Origin, PendingImage
from hazardvision.datasets.classmap import ClassMap
from hazardvision.datasets.readers import Dataset, SampleFile
from hazardvision.errors import BankError, InvalidImage
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


@dataclass
class _Prepared:
    """A file ready to store: its bytes and what was learnt from its pixels (not the pixels, to bound memory)."""

    sample: SampleFile
    data: bytes
    image: Image
    annotations: list[Annotation]


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
) -> ImportReport:
    """Import every readable file of `dataset` (its cases at `site` of `enterprise`, if given);
    report what was skipped and why."""
    tally = _Tally()
    with bank.writer():
        with bank.session() as session:
            source_id = bank.source(session, dataset.name, kind="dataset", origin=dataset.origin,
                                    licence=dataset.licence).id
            place = _Place(source_id, *bank.place(session, site, enterprise))
        for start in range(0, len(dataset.files), batch_size):
            batch = dataset.files[start : start + batch_size]
            _import_batch(bank, batch, class_map, place, tally)
            if on_progress:
                on_progress(len(batch))
        groups = bank.regroup()
    return ImportReport(
        source=dataset.name, files=len(dataset.files), imported=tally.imported,
        already_in_bank=tally.duplicates, failed=tally.failed, backgrounds=tally.backgrounds,
        boxes={s: dict(c) for s, c in tally.boxes.items()}, dropped={s: dict(c) for s, c in tally.dropped.items()},
        empty_label_files=dict(tally.empty_labels), dataset_problems=dataset.problems, problems=tally.problems,
        groups=groups,
    )


@dataclass(frozen=True)
class _Place:
    source_id: int
    site_id: int | None
    enterprise_id: int | None


def _import_batch(bank: SampleBank, batch: list[SampleFile], class_map: ClassMap, place: _Place,
                  tally: _Tally) -> None:
    read = _read(batch, tally)
    with bank.session() as session:
        known = bank.known_images(session, [sha for _, _, sha in read])
    prepared: dict[str, _Prepared] = {}
    for sample, data, sha in read:
        if sha in known or sha in prepared:
            tally.duplicates += 1
            continue
        item = _prepare(sample, data, class_map)
        if isinstance(item, list):
            _fail(tally, sample, item)
        else:
            prepared[sha] = item
    if prepared:
        _store(bank, prepared, place)
    for item in prepared.values():
        _count(tally, item, class_map)


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


def _store(bank: SampleBank, prepared: dict[str, _Prepared], place: _Place) -> None:
    """Journal, write, then commit a batch (see the module docstring for why in this order)."""
    with bank.session() as session:  # step 1: journal the files about to be written
        session.add_all(PendingImage(sha256=sha) for sha in prepared)
    try:
        for sha, item in prepared.items():  # step 2: write them
            bank.store.put(sha, item.image.format, item.data)
    except OSError as error:  # the journal lets the next open remove what was written
        raise BankError(f"cannot write photos into {bank.store.root}: {error.strerror or error}") from error
    with bank.session() as session:  # step 3: the cases, atomically, and clear the journal
        for sha, item in prepared.items():
            session.add(item.image)
            session.add(Case(image_sha256=sha, source_id=place.source_id, source_file=item.sample.name,
                             source_split=item.sample.split, site_id=place.site_id,
                             enterprise_id=place.enterprise_id, annotations=item.annotations))
        session.flush()
        for pending in session.query(PendingImage).filter(PendingImage.sha256.in_(list(prepared))):
            session.delete(pending)


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
        x1, y1, x2, y2 = box.pixels(decoded.width, decoded.height)
        annotations.append(Annotation(class_name=target, source_class=box.source_class,
                                      origin=Origin.IMPORTED.value, x1=x1, y1=y1, x2=x2, y2=y2))
    area_hash, bilinear_hash = dhash(decoded.pixels)
    image = Image(sha256=decoded.sha256, width=decoded.width, height=decoded.height, format=decoded.format,
                  size_bytes=len(data), dhash=area_hash, dhash_bilinear=bilinear_hash)
    return _Prepared(sample, data, image, annotations)


def _count(tally: _Tally, item: _Prepared, class_map: ClassMap) -> None:
    split = item.sample.split or "none"
    tally.imported += 1
    tally.backgrounds += not item.annotations
    tally.empty_labels[split] += item.sample.empty_label
    for box in item.sample.boxes:
        target = tally.dropped if class_map.target(box.source_class) is None else tally.boxes
        target[split][box.source_class] += 1
    if item.sample.warnings:
        tally.problems.append(FileReport(file=item.sample.name, warnings=item.sample.warnings))


def _fail(tally: _Tally, sample: SampleFile, errors: list[str]) -> None:
    tally.failed += 1
    tally.problems.append(FileReport(file=sample.name, errors=errors, warnings=sample.warnings))
