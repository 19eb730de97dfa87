"""Choose the score at which a finding counts as a likely false alarm (a rejected finding it matches).

An inspector rejects findings; a later finding that looks closely like a rejected one is flagged
(`likely_false_alarm`). The score must flag the same false alarm seen again (the same photo, and
copies of it flipped, rescaled or recompressed) while flagging few findings of other photos.

With the active packs, this script
1. scans photos of every dataset's **val** split and files each real false alarm (a finding that
   overlaps no labelled box of its class at IoU 0.5, where its dataset labels that class) as a
   rejected annotation on a case of its photo, what an inspector would reject, and indexes them;
2. scans those photos again, and flipped, rescaled (0.75) and recompressed (JPEG quality 60)
   copies: the share of the rejected false alarms seen again that are flagged, at each candidate
   score (want: high);
3. scans every dataset's **test** split: the share of its findings flagged (want: under 2%, as
   those photos were never rejected; a flag there is a finding that happens to look like a
   rejected one of another photo).

    python benchmarks/false_alarms.py [--per-dataset 40]

The tables give the share flagged at each box cosine (columns), scene cosine and place IoU (the
boxes' overlap in photo-relative coordinates, upright or mirrored), among the 10 nearest rejected
boxes of the class; the last table is the service's own check at its default settings.

Measured 2026-12-02 on the 2-core CPU box (site 0.4.0, all val photos, 3 min): 130 false alarms
filed; at the defaults (box >= 0.85, scene >= 0.98, place >= 0.5) the same photo, a mirrored
copy, a 0.75 rescale and JPEG quality 60 are all flagged (100%), and 1.5% of the test splits' 461
findings. With the scene at 0.80 and no place check (the earlier defaults) the test share was 3.9%.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from hazardvision.bank.bank import SampleBank, new_photo
from hazardvision.boxes import box_iou
from hazardvision.catalogue import load_catalogue
from hazardvision.data.cases import NewAnnotation, NewCase
from hazardvision.datasets.classmap import build_class_map
from hazardvision.datasets.readers import read_dataset
from hazardvision.images import DecodedImage, decode_image
from hazardvision.packs.embedding import scene_similarity
from hazardvision.packs.registry import active_packs
from hazardvision.results import Finding
from hazardvision.scan import Scanner
from hazardvision.service.settings import FALSE_ALARM_PLACE, FALSE_ALARM_SCENE, FALSE_ALARM_SCORE
from hazardvision.similar.maintenance import sync_indexes
from hazardvision.similar.query import SimilarQuery
from hazardvision.similar.search import FALSE_ALARM_CANDIDATES, Photo, SimilarCaseSearch, same_place
from hazardvision.training.data import bundled_mapping

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
NAMES = ("ppe-vest", "hardhat-head", "forklift-person", "fire-smoke")
SCORES = (0.80, 0.85, 0.88, 0.90, 0.92, 0.95)
SCENES = (-1.0, 0.80, 0.90, 0.95, 0.97, 0.98, 0.99)
PLACES = (-1.0, 0.5)
DEFAULTS = SimilarQuery(k=1, false_alarm_score=FALSE_ALARM_SCORE, false_alarm_scene=FALSE_ALARM_SCENE,
                        false_alarm_place=FALSE_ALARM_PLACE)
"""The service's default check, run by the scanner itself; the grid of thresholds is applied here."""


def encode(pixels: np.ndarray, quality: int = 95) -> bytes:
    return bytes(cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, quality])[1])


COPIES: dict[str, tuple[Callable[[np.ndarray], bytes], Callable[[np.ndarray, int], np.ndarray]]] = {
    # a copy, and how a box of the copy maps back onto the original (given the original's width)
    "same photo": (lambda pixels: encode(pixels, 100), lambda box, width: box),
    "flipped": (lambda pixels: encode(cv2.flip(pixels, 1)), lambda box, width: np.array(
        [width - box[2], box[1], width - box[0], box[3]])),
    "rescaled 0.75": (lambda pixels: encode(cv2.resize(pixels, None, fx=0.75, fy=0.75, interpolation=cv2.INTER_AREA)),
                      lambda box, width: box / 0.75),
    "JPEG q60": (lambda pixels: encode(pixels, 60), lambda box, width: box),
}


def photos(split: str, per_dataset: int) -> list[Path]:
    chosen = []
    for name in NAMES:
        folder = DATASETS / name / "images" / split
        files = sorted(folder.iterdir())
        chosen += files[:: max(1, len(files) // per_dataset)][:per_dataset] if per_dataset else files
    return chosen


def labelled_boxes(split: str) -> dict[str, tuple[set[str], list[tuple[str, np.ndarray]]]]:
    """Per photo file name of `split`: the catalogue classes its dataset labels, and its labelled boxes (pixels)."""
    catalogue = load_catalogue()
    found = {}
    for name in NAMES:
        dataset = read_dataset(DATASETS / name)
        mapping, drop = bundled_mapping(name)
        classes = build_class_map(dataset.classes, catalogue, mapping, drop)
        labels = {t for t in map(classes.target, dataset.classes) if t is not None}
        for file in dataset.files:
            if file.split != split:
                continue
            size = cv2.imread(str(file.image)).shape[:2]
            boxes = [(target, np.array(box.pixels(size[1], size[0]))) for box in file.boxes
                     if (target := classes.target(box.source_class)) is not None]
            found[file.image.name] = (labels, boxes)
    return found


def false_alarm(finding_class: str, box: np.ndarray, labels: tuple[set[str], list[tuple[str, np.ndarray]]]) -> bool:
    """A finding of a class its dataset labels that overlaps none of the labelled boxes of that class."""
    classes, boxes = labels
    same = [b for c, b in boxes if c == finding_class]
    return finding_class in classes and (not same or float(box_iou(box[None], np.stack(same)).max()) < 0.5)


Candidate = tuple[float, float, float]
"""One rejected finding a finding may match: box cosine, scene cosine of their photos, IoU of their places."""


def candidates(scanner: Scanner, search: SimilarCaseSearch, images: list[DecodedImage],
               keep: Callable[[int, Finding], bool]) -> tuple[list[list[Candidate]], list[bool]]:
    """For every kept finding of these photos: its nearest rejected findings of its class (box cosine, scene
    cosine, place IoU), and whether the service's own check (its default settings) flags it."""
    live = search.indexes
    found, flagged = [], []
    for number, image in enumerate(images):
        detections, _, maps = scanner.detect([image])
        result = scanner.explain(image, "photo", detections[0])
        scanner.attach_similar(result, image, maps[0])
        photo = Photo.of(image.pixels)
        for finding in result.findings:
            if not keep(number, finding):
                continue
            flagged.append(finding.likely_false_alarm is not None)
            features = maps[0][finding.pack]
            box = np.array([[finding.box.x1, finding.box.y1, finding.box.x2, finding.box.y2]])
            hits = live[finding.pack]["rejected"].search(features.embed_boxes(box), FALSE_ALARM_CANDIDATES,
                                                         class_name=finding.class_name)[0]
            places = search.records.relative_boxes(annotation_ids=[hit.id for hit in hits])
            found.append([(hit.score, scene_similarity(live[finding.pack]["photos"].vector(hit.case_id), photo.views),
                           same_place(photo.relative(box[0]), np.array(places[hit.id], np.float32)))
                          for hit in hits])
    return found, flagged


def share(rows: list[list[Candidate]], box: float, scene: float, place: float) -> float:
    """The share of findings with a candidate that passes all three thresholds."""
    return float(np.mean([any(b >= box and s >= scene and p >= place for b, s, p in row) for row in rows])) \
        if rows else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-dataset", type=int, default=0, help="val photos per dataset (0: all)")
    args = parser.parse_args()
    catalogue = load_catalogue()
    packs = active_packs()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        bank = SampleBank(Path(folder))
        plain = Scanner(packs, catalogue)
        rejected = [(path, path.read_bytes()) for path in photos("val", args.per_dataset)]
        cases, boxes = [], 0
        truth = labelled_boxes("val")
        for path, data in rejected:
            image = decode_image(data)
            findings = [f for f in plain.scan([image], [path.name])[0].findings if false_alarm(
                f.class_name, np.array([f.box.x1, f.box.y1, f.box.x2, f.box.y2]), truth[path.name])]
            boxes += len(findings)
            notes = tuple(NewAnnotation(class_name=f.class_name, box=(f.box.x1, f.box.y1, f.box.x2, f.box.y2),
                                        origin="rejected", source_class=f.class_name) for f in findings)
            cases.append(NewCase(photo=new_photo(image, data), source_file=path.name, annotations=notes))
        provenance = bank.records.provenance(source="rejected-val", kind="scan")
        with bank.database.writer():
            bank.records.add(cases=cases, provenance=provenance)
        sync_indexes(bank, packs)
        print(f"bank: {len(cases)} val photos, {boxes} false alarms among their findings filed as rejected "
              f"({time.perf_counter() - started:.0f} s)")
        search = SimilarCaseSearch.open(bank, packs, catalogue)
        scanner = Scanner(packs, catalogue, similar=search, similar_query=DEFAULTS)  # detect() returns feature maps
        rows = {}
        originals = [decode_image(data) for _, data in rejected]
        for name, (make, back) in COPIES.items():
            images = [decode_image(make(original.pixels)) for original in originals]

            def at_rejected(number: int, finding: Finding,
                            back: Callable[[np.ndarray, int], np.ndarray] = back) -> bool:
                """Whether the finding of copy `number` is one of the false alarms filed for its original."""
                box = back(np.array([finding.box.x1, finding.box.y1, finding.box.x2, finding.box.y2]),
                           originals[number].width)
                same = [np.array(a.box) for a in cases[number].annotations if a.class_name == finding.class_name]
                return bool(same) and float(box_iou(box[None], np.stack(same)).max()) >= 0.5

            rows[name] = candidates(scanner, search, images, at_rejected)
        test = [decode_image(path.read_bytes()) for path in photos("test", 0)]
        rows["test photos (never rejected)"] = candidates(scanner, search, test, lambda number, finding: True)
        bank.close()
    print(f"\nshare of findings flagged as a likely false alarm ({time.perf_counter() - started:.0f} s in all)")
    for place in PLACES:
        for scene in SCENES:
            print(f"\nbox cosine at least ..., scene (thumbnail, upright or mirrored) cosine at least {scene:.2f}, "
                  f"place IoU at least {place:.2f}, among the {FALSE_ALARM_CANDIDATES} nearest rejected boxes")
            print(f"{'photos':32}{'findings':>9}" + "".join(f"{s:>8.2f}" for s in SCORES))
            for name, (found, _) in rows.items():
                shares = "".join(f"{share(found, box, scene, place):>8.3f}" for box in SCORES)
                print(f"{name:32}{len(found):>9}{shares}")
    print(f"\nthe service's check at its defaults (box {FALSE_ALARM_SCORE}, scene {FALSE_ALARM_SCENE}, place "
          f"{FALSE_ALARM_PLACE}): share flagged")
    for name, (_, flagged) in rows.items():
        print(f"{name:32}{len(flagged):>9}{np.mean(flagged) if flagged else 0.0:>8.3f}  ({sum(flagged)} findings)")


if __name__ == "__main__":
    main()
