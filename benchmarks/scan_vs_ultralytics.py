"""Scan speed: our ONNX path against `ultralytics.YOLO(onnx).predict`, same files, same process.

For each bundled pack (or --model), both sides read the same 100 real photos from disk
(../shared/datasets test splits; `--size 1280x720` re-encodes them to that size first) with the
same ONNX file, confidence, IoU and input size, one photo per call. Prints images/s for each
side (median of --repeat runs, alternating sides) and the ratio ours / ultralytics.

    python benchmarks/scan_vs_ultralytics.py [--photos 100] [--repeat 5] [--size 1280x720]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")

import cv2
from ultralytics import YOLO

from hazardvision.catalogue import load_catalogue
from hazardvision.images import load_image
from hazardvision.packs.card import Precision
from hazardvision.packs.model_pack import ModelPack
from hazardvision.packs.registry import active_packs, resolve_model
from hazardvision.scan import Scanner

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
NAMES = ("ppe-vest", "fire-smoke", "forklift-person", "hardhat-head")


def pick_photos(count: int, size: str | None, workdir: Path) -> list[Path]:
    per = [sorted((DATASETS / n / "images" / "test").iterdir()) for n in NAMES]
    photos = [p for group in zip(*per, strict=False) for p in group][:count]  # interleave the datasets
    if not size:
        return photos
    width, height = (int(v) for v in size.split("x"))
    resized = []
    for i, photo in enumerate(photos):
        target = workdir / f"{i:03d}.jpg"
        cv2.imwrite(str(target), cv2.resize(load_image(photo).pixels, (width, height)), [cv2.IMWRITE_JPEG_QUALITY, 92])
        resized.append(target)
    return resized


def time_ours(scanner: Scanner, photos: list[Path]) -> float:
    start = time.perf_counter()
    for photo in photos:
        scanner.scan([load_image(photo)], [str(photo)])
    return len(photos) / (time.perf_counter() - start)


def time_ultralytics(model: YOLO, photos: list[Path], conf: float, imgsz: int) -> float:
    start = time.perf_counter()
    for photo in photos:
        model.predict(str(photo), conf=conf, iou=0.7, imgsz=imgsz, verbose=False)
    return len(photos) / (time.perf_counter() - start)


def bench_pack(pack: ModelPack, photos: list[Path], repeat: int) -> None:
    scanner = Scanner([pack], load_catalogue())
    model_file = str(pack.model_path)
    reference = YOLO(model_file, task="detect")
    conf, imgsz = pack.card.operating_confidence, pack.detector.info.input_height
    time_ours(scanner, photos[:5])  # warm both sessions up
    time_ultralytics(reference, photos[:5], conf, imgsz)
    ours, theirs = [], []
    for _ in range(repeat):
        ours.append(time_ours(scanner, photos))
        theirs.append(time_ultralytics(reference, photos, conf, imgsz))
    ours_median, theirs_median = statistics.median(ours), statistics.median(theirs)
    print(f"{pack.name} {pack.version} ({model_file}, conf {conf}, imgsz {imgsz}, {len(photos)} photos, "
          f"median of {repeat})")
    print(f"  hazardvision scan       {ours_median:7.1f} images/s   runs: {', '.join(f'{v:.1f}' for v in ours)}")
    print(f"  ultralytics predict     {theirs_median:7.1f} images/s   runs: {', '.join(f'{v:.1f}' for v in theirs)}")
    print(f"  ratio ours/ultralytics  {ours_median / theirs_median:7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--size", help="re-encode the photos at WIDTHxHEIGHT first, e.g. 1280x720")
    parser.add_argument("--model", action="append", help="ONNX file or pack folder (default: bundled packs)")
    parser.add_argument("--precision", choices=[p.value for p in Precision], default="float32",
                        help="which of each pack's models both sides run")
    args = parser.parse_args()
    precision = Precision(args.precision)
    packs = [resolve_model(m, precision) for m in args.model] if args.model else active_packs(precision=precision)
    with tempfile.TemporaryDirectory() as workdir:
        photos = pick_photos(args.photos, args.size, Path(workdir))
        print(f"cpu cores available: {len(os.sched_getaffinity(0))}; photos: {len(photos)}"
              f"{' at ' + args.size if args.size else ' as published'}")
        for pack in packs:
            bench_pack(pack, photos, args.repeat)


if __name__ == "__main__":
    main()
