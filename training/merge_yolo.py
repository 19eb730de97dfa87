"""Merge YOLO datasets from ../shared/datasets into one YOLO folder with catalogue class names.

Provisional recipe helper used before the sample bank exists: it reads each source in place,
maps its classes onto catalogue classes (or drops them), turns polygon rows into enclosing
boxes, and writes labels plus image symlinks into OUT, so that ultralytics' label caches land
in OUT and never beside the read-only sources.

    python training/merge_yolo.py OUT --classes helmet,no_helmet,vest,no_vest \
        --source ../shared/datasets/ppe-vest --source ../shared/datasets/hardhat-head \
        --map hard_hat=helmet --map no_hard_hat=no_helmet --map no_head_wear=no_helmet --drop person
"""

from __future__ import annotations

import argparse
import ast
import os
from pathlib import Path

SPLITS = ("train", "val", "test")


def read_names(data_yaml: Path) -> list[str]:
    """Read the `names:` list of a data.yaml written in the one-line list form."""
    for line in data_yaml.read_text().splitlines():
        if line.startswith("names:"):
            names = ast.literal_eval(line.split(":", 1)[1].strip())
            return [str(n) for n in names]
    raise SystemExit(f"{data_yaml}: no 'names: [...]' line")


def convert_row(parts: list[str]) -> tuple[float, float, float, float]:
    """Return a normalised cx, cy, w, h box for a box row or the enclosing box of a polygon row."""
    coords = [float(v) for v in parts[1:]]
    if len(coords) == 4:
        return coords[0], coords[1], coords[2], coords[3]
    xs, ys = coords[0::2], coords[1::2]
    x1, x2 = max(0.0, min(xs)), min(1.0, max(xs))
    y1, y2 = max(0.0, min(ys)), min(1.0, max(ys))
    return (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--classes", required=True, help="comma-separated catalogue classes, in model order")
    parser.add_argument("--source", type=Path, action="append", required=True)
    parser.add_argument("--map", action="append", default=[], help="source_class=catalogue_class")
    parser.add_argument("--drop", action="append", default=[], help="source class to drop")
    args = parser.parse_args()

    classes = args.classes.split(",")
    mapping = dict(item.split("=", 1) for item in args.map)
    counts = {split: [0] * len(classes) for split in SPLITS}
    for source in args.source:
        names = read_names(source / "data.yaml")
        target: list[int | None] = []
        for name in names:
            if name in args.drop:
                target.append(None)
                continue
            mapped = mapping.get(name, name)
            if mapped not in classes:
                raise SystemExit(f"{source.name}: class {name!r} is neither mapped, kept nor dropped")
            target.append(classes.index(mapped))
        for split in SPLITS:
            img_out = args.out / "images" / split
            lab_out = args.out / "labels" / split
            img_out.mkdir(parents=True, exist_ok=True)
            lab_out.mkdir(parents=True, exist_ok=True)
            for image in sorted((source / "images" / split).iterdir()):
                stem = f"{source.name}__{image.stem}"
                link = img_out / f"{stem}{image.suffix}"
                if not link.exists():
                    os.symlink(image.resolve(), link)
                rows = []
                label = source / "labels" / split / f"{image.stem}.txt"
                for line in label.read_text().splitlines() if label.exists() else []:
                    parts = line.split()
                    if not parts:
                        continue
                    cls = target[int(parts[0])]
                    if cls is None:
                        continue
                    cx, cy, w, h = convert_row(parts)
                    rows.append(f"{cls} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}")
                    counts[split][cls] += 1
                (lab_out / f"{stem}.txt").write_text("\n".join(rows) + ("\n" if rows else ""))
    yaml = [f"path: {args.out.resolve()}", "train: images/train", "val: images/val", "test: images/test",
            f"nc: {len(classes)}", f"names: {classes!r}"]
    (args.out / "data.yaml").write_text("\n".join(yaml) + "\n")
    for split in SPLITS:
        print(split, dict(zip(classes, counts[split], strict=True)))


if __name__ == "__main__":
    main()
