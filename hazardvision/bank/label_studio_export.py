"""Label Studio exports into the sample bank, with their provenance: the way back from pre-annotation.

Label Studio exports a project as `project-<id>-at-<YYYY-MM-DD-HH-MM>-<hash>.zip`: YOLO (`classes.txt`,
`notes.json`, `images/`, `labels/`) or COCO (`result.json`, `images/`). Either imports, as the zip, its
unpacked folder or COCO's JSON, under a source of kind `label-studio` whose origin names the project
and the export time (read from the export's name, COCO's `info.date_created`, or given). Labels map
onto catalogue classes as pre-annotation maps them (`hazardvision.datasets.label_names`).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any

from hazardvision.bank.bank import SampleBank
from hazardvision.bank.importer import DEFAULT_BATCH, ImportReport, Progress, import_dataset
from hazardvision.catalogue import Catalogue
from hazardvision.datasets.classmap import ClassMap, build_class_map
from hazardvision.datasets.label_names import label_classes
from hazardvision.datasets.readers import Dataset, add_yolo_folder, read_coco
from hazardvision.errors import DatasetError

KIND = "label-studio"
MAX_UNPACKED_BYTES = 64 * 1024**3
"""Most bytes a zipped export may unpack to (its members' declared sizes, which the reader holds them to)."""
_EXPORT_NAME = re.compile(r"project-(?P<project>\d+)-at-(?P<at>\d{4}-\d{2}-\d{2}-\d{2}-\d{2})")
_COCO = "result.json"


class ExportFormat(StrEnum):
    YOLO = "label-studio-yolo"
    COCO = "label-studio-coco"


@dataclass(frozen=True)
class ExportProvenance:
    """Which project an export is of, and when Label Studio made it (its server's clock)."""

    project: str
    exported_at: dt.datetime

    @property
    def origin(self) -> str:
        return f"Label Studio project {self.project}, exported {self.exported_at.isoformat(timespec='minutes')}"

    @property
    def source_name(self) -> str:
        return f"label-studio-project-{self.project}-{self.exported_at:%Y%m%dT%H%M}"


def is_label_studio_export(path: Path) -> bool:
    """Whether `path` looks like a Label Studio export (a zip, or a folder or JSON file as Label Studio writes
    them) rather than a dataset of the `bank import` kinds."""
    if path.is_file():
        return path.suffix.lower() == ".zip" or (path.suffix == ".json" and _coco_info(path) is not None)
    if not path.is_dir() or (path / "data.yaml").is_file():
        return False
    return (path / "classes.txt").is_file() or (path / "notes.json").is_file() or (path / _COCO).is_file()


def _coco_info(path: Path) -> dict[str, Any] | None:
    """COCO's `info` when Label Studio wrote the file (its contributor), else None."""
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    info = spec.get("info") if isinstance(spec, dict) else None
    return info if isinstance(info, dict) and info.get("contributor") == "Label Studio" else None


def _unpack(archive: Path, into: Path) -> Path:
    """Unpack a zipped export safely (no member outside `into`, bounded size); the folder holding its files."""
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = [m for m in zipped.infolist() if not m.is_dir()]
            if sum(m.file_size for m in members) > MAX_UNPACKED_BYTES:
                raise DatasetError(f"{archive} unpacks to more than {MAX_UNPACKED_BYTES} bytes; unpack it yourself "
                                   "and import the folder")
            for member in members:
                name = PurePosixPath(member.filename.replace("\\", "/"))
                if name.is_absolute() or ".." in name.parts:
                    raise DatasetError(f"{archive}: the member {member.filename!r} would unpack outside its folder")
                target = into.joinpath(*name.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with zipped.open(member) as source, target.open("wb") as sink:
                    shutil.copyfileobj(source, sink)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError) as error:
        raise DatasetError(f"cannot unpack {archive}: {error}") from error
    entries = list(into.iterdir())
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else into


def _format_of(root: Path) -> ExportFormat:
    if (root / _COCO).is_file():
        return ExportFormat.COCO
    if (root / "classes.txt").is_file() or (root / "notes.json").is_file():
        return ExportFormat.YOLO
    raise DatasetError(f"{root} is not a Label Studio export: it has neither result.json (COCO) nor classes.txt "
                       "or notes.json (YOLO)")


def _provenance(names: Iterable[str], coco: Path | None, project: str | None,
                exported_at: dt.datetime | None) -> ExportProvenance:
    """The project and export time: as given, else from the export's name, else (the time) from COCO's info."""
    for name in names:
        match = _EXPORT_NAME.search(name)
        if match:
            project = project or match["project"]
            exported_at = exported_at or dt.datetime.strptime(match["at"], "%Y-%m-%d-%H-%M")
            break
    if exported_at is None and coco is not None:
        created = (_coco_info(coco) or {}).get("date_created")
        try:
            exported_at = dt.datetime.fromisoformat(str(created)) if created else None
        except ValueError:
            exported_at = None
    if project is None or exported_at is None:
        missing = " and ".join(what for what, value in (("--project", project), ("--exported-at", exported_at))
                               if value is None)
        raise DatasetError(f"the export's name does not say its project and time (Label Studio names it "
                           f"project-<id>-at-<YYYY-MM-DD-HH-MM>-...): give {missing}")
    return ExportProvenance(project, exported_at)


def _yolo_classes(root: Path) -> tuple[str, ...]:
    try:
        if (root / "classes.txt").is_file():
            classes = [line.strip() for line in (root / "classes.txt").read_text(encoding="utf-8").splitlines()]
        else:
            notes = json.loads((root / "notes.json").read_text(encoding="utf-8"))
            classes = [str(c["name"]) for c in sorted(notes["categories"], key=lambda c: int(c["id"]))]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise DatasetError(f"cannot read the classes of {root} (classes.txt or notes.json): {error}") from error
    if not [c for c in classes if c]:
        raise DatasetError(f"{root}: classes.txt names no label")
    return tuple(classes)


def _read_yolo(root: Path, name: str) -> Dataset:
    dataset = Dataset(name, root.resolve(), _yolo_classes(root), [])
    if not (root / "images").is_dir():
        raise DatasetError(f"{root} holds labels but no images/ folder: export the project as 'YOLO with Images'")
    add_yolo_folder(dataset, root / "images", root / "labels", None)
    if not dataset.files:
        raise DatasetError(f"{root}/images holds no photos: export the project as 'YOLO with Images'")
    return dataset


@contextmanager
def open_export(path: Path, *, export_format: ExportFormat | None = None, name: str | None = None,
                project: str | None = None, exported_at: dt.datetime | None = None) -> Iterator[Dataset]:
    """The export as a dataset of kind `label-studio` with its provenance (a zip is unpacked meanwhile)."""
    with tempfile.TemporaryDirectory(prefix="hazardvision-label-studio-") as scratch:
        if path.is_file() and path.suffix.lower() == ".zip":
            root = _unpack(path, Path(scratch))
        elif path.is_file() and path.suffix == ".json":
            root = path.parent
        elif path.is_dir():
            root = path
        else:
            raise DatasetError(f"{path} is neither a Label Studio export zip, its folder, nor its result.json")
        chosen = export_format or _format_of(root)
        coco = (path if path.suffix == ".json" else root / _COCO) if chosen is ExportFormat.COCO else None
        names = [path.stem, path.parent.name] if path.is_file() else [path.name]
        provenance = _provenance(names, coco, project, exported_at)
        source = name or provenance.source_name
        if coco is not None:
            if not coco.is_file():
                raise DatasetError(f"{root} has no {_COCO}: is it a COCO export?")
            dataset = read_coco(coco, root, source)
        else:
            dataset = _read_yolo(root, source)
        dataset.kind, dataset.origin = KIND, provenance.origin
        yield dataset


def label_class_map(labels: Iterable[str], catalogue: Catalogue, mapping: Mapping[str, str],
                    drop: Iterable[str]) -> ClassMap:
    """Labels onto catalogue classes: `mapping` first, then class and English names; every other label must be
    dropped (`ClassMappingError` otherwise, before anything is imported)."""
    labels, drop = list(labels), set(drop)
    found = label_classes([label for label in labels if label not in drop], catalogue, mapping)
    chosen = {label: target for label, target in found.items() if target is not None}
    return build_class_map(labels, catalogue, {**chosen, **mapping}, drop)


def import_export(bank: SampleBank, path: Path, catalogue: Catalogue, *, export_format: ExportFormat | None = None,
                  name: str | None = None, project: str | None = None, exported_at: dt.datetime | None = None,
                  mapping: Mapping[str, str] | None = None, drop: Iterable[str] = (), site: str | None = None,
                  enterprise: str | None = None, batch_size: int = DEFAULT_BATCH,
                  on_start: Progress | None = None, on_progress: Progress | None = None,
                  update_labels: bool = False) -> ImportReport:
    """Import a Label Studio export; `on_start` is told how many files it has. Labels of photos already in the
    bank that differ are reported, and with `update_labels` made a new label version (see `import_dataset`)."""
    with open_export(path, export_format=export_format, name=name, project=project,
                     exported_at=exported_at) as dataset:
        class_map = label_class_map(dataset.classes, catalogue, mapping or {}, drop)
        if on_start:
            on_start(len(dataset.files))
        return import_dataset(bank, dataset, class_map, batch_size=batch_size, on_progress=on_progress, site=site,
                              enterprise=enterprise, update_labels=update_labels)
