"""Serving speed of one merged pack against the packs it replaces, float32 and int8, in one run.

Every configuration scans the same real test photos (decoded once, one photo per call, as the
service's single scans do) through `ModelPack.detect`; a configuration of several packs runs each
of them on every photo, as a scan with those packs active does. Runs alternate between the
configurations and the median of --repeat runs is printed, with the ratio to the first one.

    python benchmarks/pack_speed.py --pack models/site/0.1.0 --replaced models/ppe/0.2.0,models/fire-smoke/0.2.0
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from hazardvision.datasets.readers import read_yolo
from hazardvision.images import load_image
from hazardvision.packs.card import Precision
from hazardvision.packs.model_pack import ModelPack, load_pack
from hazardvision.resources import default_datasets

NAMES = ("ppe-vest", "hardhat-head", "forklift-person", "fire-smoke")


def photos(datasets: Path, per_dataset: int) -> list:
    chosen = []
    for name in NAMES:
        files = [f.image for f in read_yolo(datasets / name / "data.yaml").files if f.split == "test" and not f.errors]
        chosen += [load_image(path).pixels for path in files[:per_dataset]]
    return chosen


def run(packs: list[ModelPack], images: list) -> float:
    start = time.perf_counter()
    for image in images:
        for pack in packs:
            pack.detect([image])
    return len(images) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pack", type=Path, required=True, help="The merged pack's version folder.")
    parser.add_argument("--replaced", required=True, help="Comma-separated version folders of the packs it replaces.")
    parser.add_argument("--datasets", type=Path, default=default_datasets())
    parser.add_argument("--per-dataset", type=int, default=15, help="Test photos per dataset.")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    images = photos(args.datasets, args.per_dataset)
    configs: dict[str, list[ModelPack]] = {}
    for precision in (Precision.FLOAT32, Precision.INT8):
        replaced = [load_pack(Path(p), precision) for p in args.replaced.split(",")]
        configs[f"{' + '.join(p.name for p in replaced)} {precision.value}"] = replaced
        merged = load_pack(args.pack, precision)
        configs[f"{merged.name} {precision.value}"] = [merged]
    for packs in configs.values():
        run(packs, images[:3])  # warm up: open the sessions
    speeds: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(args.repeat):
        for name, packs in configs.items():
            speeds[name].append(run(packs, images))
    base_name = next(iter(configs))
    base = statistics.median(speeds[base_name])
    print(f"{len(images)} test photos ({args.per_dataset} of each of {', '.join(NAMES)}), one per call, "
          f"median of {args.repeat} alternating runs")
    for name, runs in speeds.items():
        median = statistics.median(runs)
        print(f"  {name:>32}: {median:7.1f} images/s  ({median / base:.2f}x {base_name})")


if __name__ == "__main__":
    main()
