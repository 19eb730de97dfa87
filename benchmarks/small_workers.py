"""Small, distant workers: mAP50 and speed with and without tiled inference, on a built small-worker set.

The datasets' photos show workers large; CCTV frames and large site photos show them a few dozen
pixels tall. This builds such frames from the datasets' own photos: each 1920x1080 frame is a
real negative frame of fire-smoke (no fire, no smoke) of the same split, upscaled, with six
photos of a PPE dataset shrunk into it (their labels shrunk with them), so that a worker is
about 30-70 px tall. Frames from val photos choose the tiling (tile size, on or off), frames from
test photos report it; the frames are written under --out (derived data: never committed).

    python benchmarks/small_workers.py --pack models/site/0.1.0 --split val --tiles 640,960
    python benchmarks/small_workers.py --weights RUN/weights/last.pt --recipe site --split val
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from hazardvision.datasets.readers import read_yolo
from hazardvision.images import load_image
from hazardvision.packs.evaluation import evaluate_dataset
from hazardvision.packs.model_pack import ModelPack, load_pack
from hazardvision.packs.tiling import Tiling
from hazardvision.resources import default_datasets
from hazardvision.training.data import bundled_mapping

FRAME = (1920, 1080)
GRID = (3, 2)
SHRINK = (0.40, 0.60)
"""Each pasted photo's side as a share of its grid cell's height."""
SOURCES = ("ppe-vest", "hardhat-head")


def build_set(datasets: Path, name: str, split: str, out: Path, *, frame_size: tuple[int, int] = FRAME,
              seed: int = 0) -> Path:
    """Write the small-worker frames of one PPE dataset's split as a YOLO dataset; its data.yaml."""
    source = read_yolo(datasets / name / "data.yaml")
    photos = [f for f in source.files if f.split == split and not f.errors and f.boxes]
    negatives = [f.image for f in read_yolo(datasets / "fire-smoke" / "data.yaml").files
                 if f.split == split and not f.errors and all(b.source_class == "default" for b in f.boxes)]
    rng = random.Random(seed)
    rng.shuffle(photos)
    (out / "images" / split).mkdir(parents=True, exist_ok=True)
    (out / "labels" / split).mkdir(parents=True, exist_ok=True)
    cells = GRID[0] * GRID[1]
    cell_w, cell_h = frame_size[0] // GRID[0], frame_size[1] // GRID[1]
    index = {c: i for i, c in enumerate(source.classes)}
    for number, start in enumerate(range(0, len(photos) - cells + 1, cells)):
        background = load_image(negatives[number % len(negatives)]).pixels
        frame = cv2.resize(background, frame_size, interpolation=cv2.INTER_LINEAR)
        lines = []
        for cell, sample in enumerate(photos[start:start + cells]):
            image = load_image(sample.image)
            side = int(cell_h * rng.uniform(*SHRINK))
            scale = side / max(image.width, image.height)
            w, h = max(1, round(image.width * scale)), max(1, round(image.height * scale))
            x0 = (cell % GRID[0]) * cell_w + rng.randint(0, cell_w - w)
            y0 = (cell // GRID[0]) * cell_h + rng.randint(0, cell_h - h)
            frame[y0:y0 + h, x0:x0 + w] = cv2.resize(image.pixels, (w, h), interpolation=cv2.INTER_AREA)
            for box in sample.boxes:
                x1, y1, x2, y2 = box.pixels(image.width, image.height)
                cx = (x0 + (x1 + x2) / 2 * scale) / frame_size[0]
                cy = (y0 + (y1 + y2) / 2 * scale) / frame_size[1]
                lines.append(f"{index[box.source_class]} {cx:.6f} {cy:.6f} {(x2 - x1) * scale / frame_size[0]:.6f} "
                             f"{(y2 - y1) * scale / frame_size[1]:.6f}")
        stem = f"{name}-{split}-{number:03d}"
        cv2.imwrite(str(out / "images" / split / f"{stem}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
        (out / "labels" / split / f"{stem}.txt").write_text("\n".join(lines) + "\n")
    data_yaml = out / "data.yaml"
    data_yaml.write_text(f"path: {out}\ntrain: images/{split}\nval: images/{split}\ntest: images/{split}\n"
                         f"names: {list(source.classes)}\n")
    return data_yaml


def images_per_second(pack: ModelPack, frames: list[np.ndarray], mode: str, repeat: int = 3) -> float:
    pack.detect(frames[:1], tiling=mode)  # warm up
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        for frame in frames:
            pack.detect([frame], tiling=mode)
        runs.append(len(frames) / (time.perf_counter() - start))
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pack", type=Path, help="Pack version folder.")
    parser.add_argument("--weights", type=Path, help="Or trained weights (.pt), exported with --recipe.")
    parser.add_argument("--recipe", default="site", help="Recipe for --weights.")
    parser.add_argument("--split", default="val", help="val to choose, test to report.")
    parser.add_argument("--tiles", default="0.333", help="Comma-separated tile sides to compare with no tiling, as "
                        "shares of the frame's longer side.")
    parser.add_argument("--min-tile", type=int, default=320)
    parser.add_argument("--overlap", type=float, default=0.25)
    parser.add_argument("--frame", default="1920x1080", help="Frame size WxH (1920x1080: a large photo or HD "
                        "camera; 640x360: a CCTV substream).")
    parser.add_argument("--datasets", type=Path, default=default_datasets())
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "hazardvision-small-workers")
    parser.add_argument("--speed-frames", type=int, default=10)
    args = parser.parse_args()
    if args.pack:
        pack = load_pack(args.pack)
    else:
        from hazardvision.training.packaging import scratch_pack  # noqa: PLC0415
        from hazardvision.training.recipe import load_recipe, recipe_path  # noqa: PLC0415

        recipe = load_recipe(recipe_path(args.recipe))
        pack = scratch_pack(args.weights, recipe, Path(tempfile.mkdtemp()) / "pack", recipe.serve_imgsz)
    modes = [("off", None), *((f"tile {float(t):.2f}", float(t)) for t in args.tiles.split(","))]
    width, height = (int(v) for v in args.frame.lower().split("x"))
    print(f"{pack.name} {pack.version} ({pack.precision.value}), {args.split} small-worker frames {width}x{height}")
    for name in SOURCES:
        data_yaml = build_set(args.datasets, name, args.split, args.out / f"{name}-{width}x{height}",
                              frame_size=(width, height))
        mapping, drop = bundled_mapping(name)
        frames = [load_image(f.image).pixels for f in read_yolo(data_yaml).files][: args.speed_frames]
        for label, tile in modes:
            tiled = pack if tile is None else ModelPack(pack.folder, pack.card.model_copy(update={
                "tiling": Tiling(fraction=tile, min_tile=args.min_tile, overlap=args.overlap, default="on")}),
                pack.precision)
            mode = "off" if tile is None else "on"
            result = evaluate_dataset(tiled, data_yaml, split=args.split, mapping=mapping, drop=drop, tiling=mode)
            per_class = ", ".join(f"{c} {m.map50:.3f}" for c, m in result.per_class.items() if m.instances)
            speed = images_per_second(tiled, frames, mode)
            print(f"  {name} ({result.images} frames) {label:>9}: mAP50 {result.map50:.3f} ({per_class}); "
                  f"{speed:.2f} images/s")


if __name__ == "__main__":
    main()
