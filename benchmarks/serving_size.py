"""Which input size should a pack serve at? mAP50 of trained weights at several sizes, on validation splits.

A detector trained at 320 px may find small, distant workers better when it runs at a larger
size (each head covers more pixels), at a cost in speed. This exports the weights at each size,
scores every evaluation dataset of the recipe on its validation split (never the test split, which
only reports the choice) and prints mAP50 per dataset, their mean, and images/s. Put the chosen
size in the recipe's `serve_imgsz`.

    python benchmarks/serving_size.py --weights RUN/weights/best.pt --recipe ppe --sizes 320,416,512
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from hazardvision.datasets.readers import read_yolo
from hazardvision.packs.evaluation import evaluate_dataset
from hazardvision.resources import default_datasets
from hazardvision.training.packaging import images_per_second, scratch_pack
from hazardvision.training.recipe import load_recipe, recipe_path

SPEED_PHOTOS = 30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, required=True, help="Trained weights (.pt).")
    parser.add_argument("--recipe", required=True, help="Recipe file or pack name.")
    parser.add_argument("--sizes", default="320,384,416,480,512", help="Comma-separated input sizes.")
    parser.add_argument("--split", default="val", help="Split to score on (default: val).")
    parser.add_argument("--datasets", type=Path, default=default_datasets())
    parser.add_argument("--per-class", action="store_true", help="Also print AP50 per class of each dataset.")
    args = parser.parse_args()
    recipe = load_recipe(recipe_path(args.recipe))
    sizes = [int(size) for size in args.sizes.split(",")]
    first = args.datasets / recipe.evaluation[0].dataset / "data.yaml"
    photos = [f.image for f in read_yolo(first).files if f.split == args.split][:SPEED_PHOTOS]
    names = [spec.dataset for spec in recipe.evaluation]
    print(f"{recipe.pack}: mAP50 on the {args.split} splits of {', '.join(names)}")
    print(f"{'size':>5} " + " ".join(f"{name:>14}" for name in names) + f" {'mean':>7} {'images/s':>9}")
    with tempfile.TemporaryDirectory() as scratch:
        for size in sizes:
            pack = scratch_pack(args.weights, recipe, Path(scratch) / str(size), size)
            results = [evaluate_dataset(pack, args.datasets / spec.dataset / "data.yaml", split=args.split,
                                        mapping=spec.map, drop=spec.drop) for spec in recipe.evaluation]
            scores = [result.map50 for result in results]
            speed = images_per_second([pack], photos, repeat=1)[0]
            print(f"{size:>5} " + " ".join(f"{score:>14.3f}" for score in scores)
                  + f" {statistics.mean(scores):>7.3f} {speed:>9.1f}", flush=True)
            for name, result in zip(names, results, strict=True) if args.per_class else ():
                print(f"      {name}: " + ", ".join(f"{c} {m.map50:.3f}" for c, m in result.per_class.items()
                                                  if m.instances), flush=True)


if __name__ == "__main__":
    main()
