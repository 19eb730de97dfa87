"""Correcting a case's labels: comparing two sets of labels, reading a YOLO label file, relabelling.

Two labels are the same box when their class is equal and each coordinate is within `TOLERANCE`
pixels (a label written with six decimals and read back stays the same box). Of the rest, boxes
that overlap by `SAME_OBJECT_IOU` or more are the same object: a class change when their classes
differ, a move when they agree; what is left is added or removed.
"""

from __future__ import annotations

import datetime as dt
import getpass
from collections.abc import Sequence
from pathlib import Path

from hazardvision.bank.bank import SampleBank
from hazardvision.bank.views import ClassChange, LabelBox, LabelDifference, LabelVersionView, MovedBox, RelabelResult
from hazardvision.catalogue import Catalogue
from hazardvision.data.bank_records import Origin
from hazardvision.data.cases import Box, NewAnnotation
from hazardvision.data.labels import CaseLabels, Label
from hazardvision.datasets.readers import parse_yolo_line
from hazardvision.errors import InvalidLabels

TOLERANCE = 1.0
"""Pixels by which a coordinate may differ in one box."""
SAME_OBJECT_IOU = 0.5
RELABEL_VIA = "relabel"
IMPORT_VIA = "import"


def compare_labels(stored: Sequence[Label], new: Sequence[Label], *, file: str, case_id: int,
                   version: int) -> LabelDifference | None:
    """What `new` changes in `stored`; None when they are the same labels."""
    left = list(stored)
    unmatched = []
    for label in new:
        same = next((s for s in left if s.class_name == label.class_name and _close(s.box, label.box)), None)
        if same is None:
            unmatched.append(label)
        else:
            left.remove(same)
    difference = LabelDifference(file=file, case_id=case_id, version=version)
    for label in unmatched:
        overlapping = [s for s in left if _iou(s.box, label.box) >= SAME_OBJECT_IOU]
        if not overlapping:
            difference.added.append(_box(label))
            continue
        before = max(overlapping, key=lambda s: (s.class_name == label.class_name, _iou(s.box, label.box)))
        left.remove(before)
        if before.class_name == label.class_name:
            difference.moved.append(MovedBox(class_name=label.class_name, before=before.box, after=label.box))
        else:
            difference.class_changed.append(ClassChange(box=label.box, before=before.class_name,
                                                        after=label.class_name))
    difference.removed.extend(_box(s) for s in left)
    changed = difference.added or difference.removed or difference.class_changed or difference.moved
    return difference if changed else None


def read_label_file(path: Path, classes: Sequence[str]) -> list[tuple[str, float, float, float, float]]:
    """Boxes of a YOLO label file (class id, then cx cy w h, normalised), as (class, x1, y1, x2, y2) in 0..1.

    `InvalidLabels` naming every bad line and why; class ids index `classes`.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InvalidLabels(f"no label file {path}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidLabels(f"cannot read the label file {path}: {error}") from error
    boxes, problems = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        box, problem = parse_yolo_line(line, tuple(classes))
        if box is None:
            problems.append(f"line {number}: {problem}")
        else:
            boxes.append((box.source_class, box.x1, box.y1, box.x2, box.y2))
    if problems:
        names = ", ".join(f"{i} {name}" for i, name in enumerate(classes))
        raise InvalidLabels(f"{path}: {'; '.join(problems)} (class ids: {names}); nothing was changed")
    return boxes


def relabel(bank: SampleBank, case_id: int, labels: Path, *, classes: Sequence[str], catalogue: Catalogue,
            reason: str, author: str | None = None) -> RelabelResult:
    """Make the boxes of the YOLO label file `labels` (class ids index `classes`) the case's labels, as a
    new label version by `author` (default: the user running it) for `reason`; the old version stays."""
    if not reason.strip():
        raise InvalidLabels("say why the labels change (--reason \"...\"): it is kept with the new version")
    known = {entry.class_name for entry in catalogue.classes}
    unknown = [name for name in classes if name not in known]
    if unknown:
        raise InvalidLabels(f"--classes {', '.join(unknown)} not in the hazard catalogue (it has "
                            f"{', '.join(sorted(known))})")
    case = bank.case(case_id)  # UnknownCase first: a label file for no case is not worth reading
    records = CaseLabels(bank.database)
    new = [Label(name, (x1 * case.width, y1 * case.height, x2 * case.width, y2 * case.height), None,
                 Origin.CORRECTED.value) for name, x1, y1, x2, y2 in read_label_file(labels, classes)]
    stored = records.of_photos(hashes=[case.image_sha256])[case.image_sha256]
    difference = compare_labels(stored.labels, new, file=str(labels), case_id=case_id, version=stored.version)
    if difference is None:
        return RelabelResult(case_id=case_id, version=stored.version, changed=False,
                             difference=LabelDifference(file=str(labels), case_id=case_id, version=stored.version))
    who = author or getpass.getuser()
    now = dt.datetime.now(dt.UTC)
    with bank.writer():
        version = records.correct(
            case_id=case_id, author=who, via=RELABEL_VIA, reason=reason,
            labels=[NewAnnotation(class_name=label.class_name, box=label.box, origin=Origin.CORRECTED.value,
                                  reviewer=who, reviewed_at=now, note=reason) for label in new])
    difference.updated_to = version
    return RelabelResult(case_id=case_id, version=version, changed=True, difference=difference)


def label_history(bank: SampleBank, case_id: int) -> list[LabelVersionView]:
    """Every version of a case's labels, oldest first, the last one current."""
    versions = CaseLabels(bank.database).history(case_id=case_id)
    return [LabelVersionView(version=v.version, created_at=v.created_at, author=v.author, via=v.via, reason=v.reason,
                             labels=[_box(label) for label in v.labels], current=v is versions[-1])
            for v in versions]


def _box(label: Label) -> LabelBox:
    return LabelBox(class_name=label.class_name, box=label.box, source_class=label.source_class, origin=label.origin)


def _close(a: Box, b: Box) -> bool:
    return all(abs(u - v) <= TOLERANCE for u, v in zip(a, b, strict=True))


def _iou(a: Box, b: Box) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
