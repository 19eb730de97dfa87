"""Readers of labelled datasets: YOLO folders and COCO detection JSON.

A reader lists the dataset's files with their raw boxes and the problems found in each file;
it reads labels but no pixels, so the importer decides what to store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hazardvision.errors import DatasetError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
SPLITS = ("train", "val", "test")
OUT_OF_RANGE_TOLERANCE = 1e-3
"""Normalised coordinates this far outside 0..1 are rounding noise and get clipped."""


@dataclass(frozen=True)
class RawBox:
    """A labelled box as the dataset gives it: normalised xyxy (YOLO) or pixel xyxy (COCO)."""

    source_class: str
    x1: float
    y1: float
    x2: float
    y2: float
    normalised: bool

    def pixels(self, width: int, height: int) -> tuple[float, float, float, float]:
        """x1, y1, x2, y2 in pixels of a photo of that size."""
        sx, sy = (width, height) if self.normalised else (1, 1)
        return self.x1 * sx, self.y1 * sy, self.x2 * sx, self.y2 * sy


@dataclass
class SampleFile:
    """One image of a dataset with its boxes, and what is wrong with it."""

    image: Path
    name: str
    split: str | None
    boxes: list[RawBox] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    """Problems that keep the file out of the bank."""
    warnings: list[str] = field(default_factory=list)
    """Problems that were repaired (polygon rows turned into boxes, tiny overshoots clipped)."""
    empty_label: bool = False
    expected_size: tuple[int, int] | None = None
    """Width and height the label file declares (COCO), checked against the decoded photo."""


@dataclass
class Dataset:
    """A dataset on disk: its name, classes and files."""

    name: str
    root: Path
    classes: tuple[str, ...]
    files: list[SampleFile]
    problems: list[str] = field(default_factory=list)
    """Problems with files that have no image to attach them to (orphan labels, bad COCO rows)."""
    origin: str | None = None
    licence: str | None = None
    kind: str = "dataset"
    """What the bank records it as: dataset, or label-studio for a Label Studio export."""


def read_dataset(path: Path, name: str | None = None, images: Path | None = None) -> Dataset:
    """Read a YOLO `data.yaml` (or its folder), a YOLO images/labels pair, or a COCO JSON file."""
    if path.is_file() and path.suffix == ".json":
        dataset = read_coco(path, images or path.parent, name)
    elif path.is_file() and path.suffix in {".yaml", ".yml"}:
        dataset = read_yolo(path, name)
    elif (path / "data.yaml").is_file():
        dataset = read_yolo(path / "data.yaml", name)
    elif (path / "images").is_dir() and (path / "labels").is_dir():
        raise DatasetError(
            f"{path} has images/ and labels/ but no data.yaml naming the classes; "
            "write one with 'names: [...]' (and train/val/test folders) and import that"
        )
    else:
        raise DatasetError(f"{path} is neither a data.yaml, a folder holding one, nor a COCO .json file")
    _read_source_notes(dataset)
    return dataset


def read_yolo(data_yaml: Path, name: str | None = None) -> Dataset:
    """Read a YOLO dataset described by `data_yaml` (Ultralytics layout)."""
    spec, classes = _yolo_spec(data_yaml)
    root = (data_yaml.parent / str(spec.get("path") or ".")).resolve()
    dataset = Dataset(name or data_yaml.parent.name, root, classes, [])
    splits = [s for s in SPLITS if spec.get(s)]
    if not splits:
        raise DatasetError(f"{data_yaml} names no train, val or test image folder")
    for split in splits:
        image_dir = root / str(spec[split])
        if not image_dir.is_dir():
            dataset.problems.append(f"{split}: image folder {image_dir} does not exist")
            continue
        add_yolo_folder(dataset, image_dir, _label_dir(image_dir), split)
    if not dataset.files:
        raise DatasetError(f"{data_yaml} lists no image files: " + ("; ".join(dataset.problems) or "folders are empty"))
    return dataset


def add_yolo_folder(dataset: Dataset, image_dir: Path, label_dir: Path, split: str | None) -> None:
    """Add the images of `image_dir` with their YOLO label files in `label_dir` (and orphan labels as problems)."""
    root = dataset.root
    images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    stems = {p.stem for p in images}
    for image in images:
        dataset.files.append(_yolo_file(image, label_dir / f"{image.stem}.txt", split, dataset.classes, root))
    if label_dir.is_dir():
        for label in sorted(label_dir.glob("*.txt")):
            if label.stem not in stems:
                dataset.problems.append(f"{_relative(label, root)}: label file without an image")


def _label_dir(image_dir: Path) -> Path:
    """ultralytics' rule: the last 'images' folder in the path becomes 'labels'."""
    parts = list(image_dir.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts)
    return image_dir.parent / "labels" / image_dir.name


def _yolo_spec(data_yaml: Path) -> tuple[dict[str, Any], tuple[str, ...]]:
    try:
        spec = yaml.safe_load(data_yaml.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(f"cannot read {data_yaml}: {error}") from error
    except yaml.YAMLError as error:
        raise DatasetError(f"{data_yaml} is not valid YAML: {error}") from error
    if not isinstance(spec, dict) or "names" not in spec:
        raise DatasetError(f"{data_yaml} must be a mapping with a 'names' list of classes")
    return spec, _class_names(spec["names"], data_yaml)


def yolo_class_names(data_yaml: Path) -> tuple[str, ...]:
    """The class names a YOLO data.yaml declares, without listing its files."""
    return _yolo_spec(data_yaml)[1]


def _class_names(names: Any, source: Path) -> tuple[str, ...]:
    if isinstance(names, dict):
        try:
            return tuple(str(names[i]) for i in range(len(names)))
        except KeyError as error:
            raise DatasetError(f"{source}: 'names' keys must be 0..{len(names) - 1}") from error
    if isinstance(names, list) and names:
        return tuple(str(n) for n in names)
    raise DatasetError(f"{source}: 'names' must be a non-empty list or an index-to-name mapping")


def _yolo_file(image: Path, label: Path, split: str | None, classes: tuple[str, ...], root: Path) -> SampleFile:
    sample = SampleFile(image=image, name=_relative(image, root), split=split)
    if not label.exists():
        sample.warnings.append("no label file: imported as a background image")
        sample.empty_label = True
        return sample
    try:
        lines = label.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        sample.errors.append(f"{label.name}: unreadable label file ({error})")
        return sample
    polygons = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        box, problem = _parse_yolo_row(line.split(), classes)
        if problem:
            sample.errors.append(f"{label.name} line {number}: {problem}")
        elif box is not None:
            polygons += len(line.split()) > 5
            box, clipped = _clip_normalised(box)
            if clipped:
                sample.warnings.append(f"{label.name} line {number}: coordinates clipped to 0..1")
            sample.boxes.append(box)
    if polygons:
        sample.warnings.append(f"{label.name}: {polygons} polygon row(s) converted to enclosing boxes")
    sample.empty_label = not sample.boxes and not sample.errors
    return sample


def parse_yolo_line(line: str, classes: tuple[str, ...]) -> tuple[RawBox | None, str | None]:
    """The box of one YOLO label line (tiny overshoots clipped to 0..1), or why it is not one."""
    box, problem = _parse_yolo_row(line.split(), classes)
    return (None, problem) if box is None else (_clip_normalised(box)[0], None)


def _parse_yolo_row(parts: list[str], classes: tuple[str, ...]) -> tuple[RawBox | None, str | None]:
    """A box from one label row (class cx cy w h, or class x1 y1 x2 y2 ... for a polygon)."""
    try:
        index = int(parts[0])
        values = [float(v) for v in parts[1:]]
    except ValueError:
        return None, f"not numbers: {' '.join(parts)[:60]!r}"
    if not 0 <= index < len(classes):
        return None, f"class index {index} out of range 0..{len(classes) - 1}"
    if len(values) == 4:
        cx, cy, w, h = values
        if w < 0 or h < 0:
            return None, "negative width or height"
        x1, y1, x2, y2 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
    elif len(values) >= 6 and len(values) % 2 == 0:
        xs, ys = values[0::2], values[1::2]
        x1, y1, x2, y2 = min(xs), min(ys), max(xs), max(ys)
    else:
        return None, f"expected 'class cx cy w h' or a polygon, got {len(values)} numbers"
    if min(x1, y1) < -OUT_OF_RANGE_TOLERANCE or max(x2, y2) > 1 + OUT_OF_RANGE_TOLERANCE:
        return None, f"coordinates outside 0..1 ({x1:.3f}, {y1:.3f}, {x2:.3f}, {y2:.3f})"
    return RawBox(classes[index], x1, y1, x2, y2, normalised=True), None


def _clip_normalised(box: RawBox) -> tuple[RawBox, bool]:
    x1, y1, x2, y2 = (min(1.0, max(0.0, v)) for v in (box.x1, box.y1, box.x2, box.y2))
    changed = (x1, y1, x2, y2) != (box.x1, box.y1, box.x2, box.y2)
    return RawBox(box.source_class, x1, y1, x2, y2, normalised=True), changed


def read_coco(path: Path, images: Path, name: str | None = None) -> Dataset:
    """Read a COCO detection JSON whose `file_name`s are relative to `images`."""
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
        categories = {int(c["id"]): str(c["name"]) for c in spec["categories"]}
        entries = list(spec["images"])
        annotations = list(spec.get("annotations", []))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DatasetError(f"cannot read COCO file {path}: {error}") from error
    except (KeyError, TypeError, ValueError) as error:
        raise DatasetError(f"{path} is not COCO detection JSON (needs categories and images): {error}") from error
    classes = tuple(categories[k] for k in sorted(categories))
    dataset = Dataset(name or path.stem, images.resolve(), classes, [])
    by_id: dict[int, SampleFile] = {}
    for entry in entries:
        try:
            file = SampleFile(image=images / str(entry["file_name"]), name=str(entry["file_name"]), split=None,
                              expected_size=(int(entry["width"]), int(entry["height"])))
            by_id[int(entry["id"])] = file
        except (KeyError, TypeError, ValueError) as error:
            dataset.problems.append(f"images entry {str(entry)[:80]}: missing id, file_name, width or height ({error})")
            continue
        if not file.image.is_file():
            file.errors.append(f"image file {file.image} does not exist")
        dataset.files.append(file)
    for annotation in annotations:
        _add_coco_box(annotation, by_id, categories, dataset)
    for file in dataset.files:
        file.empty_label = not file.boxes and not file.errors
    return dataset


def _add_coco_box(
    annotation: dict[str, Any], by_id: dict[int, SampleFile], categories: dict[int, str], dataset: Dataset
) -> None:
    try:
        file = by_id[int(annotation["image_id"])]
    except (KeyError, TypeError, ValueError):
        dataset.problems.append(f"annotation {annotation.get('id')}: unknown image_id {annotation.get('image_id')}")
        return
    try:
        x, y, w, h = (float(v) for v in annotation["bbox"])
        category = categories[int(annotation["category_id"])]
    except (KeyError, TypeError, ValueError):
        file.errors.append(f"annotation {annotation.get('id')}: bad bbox or category_id")
        return
    width, height = file.expected_size or (0, 0)
    if w < 0 or h < 0 or x < -1 or y < -1 or x + w > width + 1 or y + h > height + 1:
        file.errors.append(
            f"annotation {annotation.get('id')}: box ({x:.0f}, {y:.0f}, {w:.0f}, {h:.0f}) lies outside "
            f"the {width}x{height} image"
        )
        return
    x1, y1 = max(0.0, x), max(0.0, y)
    file.boxes.append(RawBox(category, x1, y1, min(float(width), x + w), min(float(height), y + h), False))


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return path.name


def source_notes(root: Path) -> tuple[str | None, str | None]:
    """Origin and licence from a SOURCE.md in a dataset folder, where there is one."""
    origin = licence = None
    notes = root / "SOURCE.md"
    if notes.is_file():
        for line in notes.read_text(encoding="utf-8").splitlines():
            if line.startswith("- Origin:"):
                origin = line.split(":", 1)[1].strip()
            elif line.startswith("- License:"):
                licence = line.split(":", 1)[1].split("(")[0].strip()
    return origin, licence


def _read_source_notes(dataset: Dataset) -> None:
    dataset.origin, dataset.licence = source_notes(dataset.root)
