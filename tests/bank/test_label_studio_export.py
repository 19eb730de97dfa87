"""Label Studio exports (YOLO zip or folder, COCO JSON) import into the bank with their provenance and classes."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import zipfile
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from hazardvision.bank.bank import SampleBank
from hazardvision.bank.label_studio_export import ExportFormat, import_export, is_label_studio_export
from hazardvision.catalogue import load_catalogue
from hazardvision.cli import app
from hazardvision.datasets.label_names import label_classes
from hazardvision.errors import ClassMappingError, DatasetError
from tests.conftest import DATASETS, test_photos

# How the ppe-vest classes were named in the Label Studio project: by class, English name, or neither.
LABELS = {"helmet": "Helmet", "vest": "High-visibility vest worn", "no_helmet": "no-helmet", "no_vest": "No hi-vis"}
PPE_NAMES = ["helmet", "vest", "no_helmet", "no_vest"]
MAPPING = {"No hi-vis": "no_vest"}  # the one label that is neither a class nor an English name
EXPORT_NAME = "project-7-at-2026-11-30-14-05-3f2a9b1c"


def ppe_photos(count: int = 3) -> list[Path]:
    photos = test_photos("ppe-vest")[:count]
    if not photos:
        pytest.skip("../shared/datasets is absent: these tests import real photos")
    return photos


def ppe_rows(photo: Path) -> list[tuple[str, float, float, float, float]]:
    """The photo's real boxes: Label Studio label and normalised centre and size."""
    rows = []
    for line in (DATASETS / "ppe-vest" / "labels" / "test" / f"{photo.stem}.txt").read_text().splitlines():
        index, cx, cy, w, h = line.split()
        rows.append((LABELS[PPE_NAMES[int(index)]], float(cx), float(cy), float(w), float(h)))
    return rows


def uploaded_name(photo: Path, i: int) -> str:
    """Label Studio prefixes an uploaded file's name with 8 hex digits."""
    return f"{i:08x}-{photo.name}"


def yolo_export(folder: Path, photos: list[Path], labels: list[str]) -> Path:
    """A folder laid out as Label Studio's 'YOLO with Images' export."""
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    for i, photo in enumerate(photos):
        name = uploaded_name(photo, i)
        shutil.copy(photo, folder / "images" / name)
        rows = [f"{labels.index(label)} {cx} {cy} {w} {h}" for label, cx, cy, w, h in ppe_rows(photo)]
        (folder / "labels" / f"{Path(name).stem}.txt").write_text("\n".join(rows) + "\n")
    (folder / "classes.txt").write_text("\n".join(labels) + "\n")
    notes = {"categories": [{"id": i, "name": label} for i, label in enumerate(labels)],
             "info": {"year": 2026, "version": "1.0", "contributor": "Label Studio"}}
    (folder / "notes.json").write_text(json.dumps(notes))
    return folder


def zipped(folder: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w") as out:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                out.write(file, file.relative_to(folder).as_posix())
    return archive


def coco_export(folder: Path, photos: list[Path], labels: list[str], created: str) -> Path:
    """A folder laid out as Label Studio's COCO export (with images): result.json and images/."""
    (folder / "images").mkdir(parents=True)
    images, annotations = [], []
    for i, photo in enumerate(photos):
        name = uploaded_name(photo, i)
        shutil.copy(photo, folder / "images" / name)
        width, height = Image.open(photo).size
        images.append({"width": width, "height": height, "id": i, "file_name": f"images/{name}"})
        for label, cx, cy, w, h in ppe_rows(photo):
            box = [(cx - w / 2) * width, (cy - h / 2) * height, w * width, h * height]
            annotations.append({"id": len(annotations), "image_id": i, "category_id": labels.index(label),
                                "segmentation": [], "bbox": box, "ignore": 0, "iscrowd": 0, "area": box[2] * box[3]})
    spec = {"images": images, "categories": [{"id": i, "name": label} for i, label in enumerate(labels)],
            "annotations": annotations,
            "info": {"year": 2026, "version": "1.0", "description": "", "contributor": "Label Studio", "url": "",
                     "date_created": created}}
    (folder / "result.json").write_text(json.dumps(spec))
    return folder / "result.json"


def expected_boxes(photos: list[Path]) -> dict[str, int]:
    counts: dict[str, int] = {}
    inverse = {label: name for name, label in LABELS.items()}
    for photo in photos:
        for label, *_ in ppe_rows(photo):
            counts[inverse[label]] = counts.get(inverse[label], 0) + 1
    return counts


def bank_boxes(bank: SampleBank, source: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for case in bank.cases(source=source, limit=100):
        for annotation in case.annotations:
            counts[annotation.class_name] = counts.get(annotation.class_name, 0) + 1
    return counts


def source_of(bank: SampleBank, name: str):
    return next(source for source in bank.stats().sources if source.name == name)


def test_label_studio_yolo_zip_imports_with_its_project_and_export_time(tmp_path):
    photos = ppe_photos()
    archive = zipped(yolo_export(tmp_path / "export", photos, list(LABELS.values())), tmp_path / f"{EXPORT_NAME}.zip")
    bank = SampleBank(tmp_path / "home")
    report = import_export(bank, archive, load_catalogue(), mapping=MAPPING)
    assert (report.imported, report.failed) == (len(photos), 0)
    assert report.source == "label-studio-project-7-20261130T1405"
    source = source_of(bank, report.source)
    assert source.kind == "label-studio"
    assert source.origin == "Label Studio project 7, exported 2026-11-30T14:05"
    assert bank_boxes(bank, report.source) == expected_boxes(photos)
    case = bank.cases(source=report.source, limit=1)[0]
    assert case.source_file.startswith("images/") and {a.source_class for a in case.annotations} <= set(LABELS.values())


def test_label_studio_coco_json_imports_with_its_export_time(tmp_path):
    photos = ppe_photos()
    result = coco_export(tmp_path / "export", photos, list(LABELS.values()), "2026-11-30 14:05:33.123456")
    bank = SampleBank(tmp_path / "home")
    report = import_export(bank, result, load_catalogue(), mapping=MAPPING, project="7")
    assert (report.imported, report.failed) == (len(photos), 0)
    source = source_of(bank, report.source)
    assert (source.kind, source.origin) == ("label-studio", "Label Studio project 7, exported 2026-11-30T14:05")
    assert bank_boxes(bank, report.source) == expected_boxes(photos)


def test_label_studio_export_reimported_adds_nothing(tmp_path):
    photos = ppe_photos(2)
    folder = yolo_export(tmp_path / EXPORT_NAME, photos, list(LABELS.values()))
    bank = SampleBank(tmp_path / "home")
    import_export(bank, folder, load_catalogue(), mapping=MAPPING)
    again = import_export(bank, folder, load_catalogue(), mapping=MAPPING)
    assert (again.imported, again.already_in_bank) == (0, len(photos))


def test_label_studio_label_without_class_stops_the_import_unless_dropped(tmp_path):
    photos = ppe_photos(2)
    labels = [*LABELS.values(), "Ladder"]
    folder = yolo_export(tmp_path / EXPORT_NAME, photos, labels)
    bank = SampleBank(tmp_path / "home")
    with pytest.raises(ClassMappingError, match="Ladder"):
        import_export(bank, folder, load_catalogue(), mapping=MAPPING)
    assert bank.stats().cases == 0
    report = import_export(bank, folder, load_catalogue(), mapping=MAPPING, drop=["Ladder"])
    assert report.imported == len(photos)


@pytest.mark.parametrize("case", ["renamed-without-project", "labels-only"])
def test_label_studio_export_that_cannot_be_imported_says_why(tmp_path, case):
    photos = ppe_photos(1)
    folder = yolo_export(tmp_path / ("my-export" if case == "renamed-without-project" else EXPORT_NAME), photos,
                         list(LABELS.values()))
    if case == "labels-only":
        shutil.rmtree(folder / "images")
    with pytest.raises(DatasetError, match="--project and --exported-at" if case != "labels-only" else "with Images"):
        import_export(SampleBank(tmp_path / "home"), folder, load_catalogue(), mapping=MAPPING)


def test_label_studio_zip_member_outside_its_folder_is_refused(tmp_path):
    archive = tmp_path / f"{EXPORT_NAME}.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("classes.txt", "Helmet\n")
        out.writestr("../escape.txt", "x")
    with pytest.raises(DatasetError, match="outside"):
        import_export(SampleBank(tmp_path / "home"), archive, load_catalogue())
    assert not (tmp_path / "escape.txt").exists()


def test_label_studio_export_is_told_from_datasets(tmp_path):
    photos = ppe_photos(1)
    folder = yolo_export(tmp_path / EXPORT_NAME, photos, list(LABELS.values()))
    assert is_label_studio_export(folder) and is_label_studio_export(zipped(folder, tmp_path / "e.zip"))
    assert not is_label_studio_export(DATASETS / "ppe-vest")


def test_bank_import_command_takes_a_label_studio_export(tmp_path):
    photos = ppe_photos(2)
    result = coco_export(tmp_path / "export", photos, list(LABELS.values()), "2026-11-30 14:05:33")
    home = tmp_path / "home"
    done = CliRunner().invoke(app, ["bank", "import", str(result), "--home", str(home), "--format",
                                    ExportFormat.COCO.value, "--project", "12", "--map", "No hi-vis=no_vest",
                                    "--name", "site-a-labelled", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["imported"] == len(photos)
    source = source_of(SampleBank(home), "site-a-labelled")
    assert source.origin == "Label Studio project 12, exported 2026-11-30T14:05"
    done = CliRunner().invoke(app, ["bank", "import", str(result), "--home", str(home), "--exported-at",
                                    dt.datetime(2026, 12, 1).isoformat()])
    assert done.exit_code != 0 and "--project" in done.output


@pytest.mark.parametrize(("label", "expected"), [
    ("no_helmet", "no_helmet"), ("No helmet", "no_helmet"), ("NO-HELMET", "no_helmet"),
    ("Worker without a safety helmet", "no_helmet"), (" Safety helmet worn ", "helmet"), ("Forklift", "forklift"),
    ("No hi-vis", "no_vest"), ("Ladder", None), ("", None),
])
def test_label_names_map_by_class_english_name_or_mapping(label, expected):
    assert label_classes([label], load_catalogue(), MAPPING) == {label: expected}


def test_label_names_mapping_to_a_class_the_catalogue_lacks_is_refused():
    with pytest.raises(ClassMappingError, match="hard_hat"):
        label_classes(["Hard hat"], load_catalogue(), {"Hard hat": "hard_hat"})
