"""One merged detector against one detector per pack, at an equal training budget.

Compares the weights that `hazardvision train` keeps every `save_period` epochs
(`weights/epoch<K>.pt`, written after K+1 epochs) of three runs with the same schedule:
the `ppe` and `fire-smoke` packs and the merged 6-class experiment
(`training/experiments/merged.yaml`). A merged epoch passes over the photos of both packs once, so
the merged run at epoch K cost what the two separate runs at epoch K cost together.

For each model it prints test-split mAP50 per evaluation dataset (through hazardvision's own ONNX
runtime, as the cards), the detections of the other pack's classes per 100 test photos of a
dataset that does not label them (false alarms the partial labels invite: fire on a ppe photo),
and the serving speed of one merged pass against the two packs' passes on the same photos.

    python benchmarks/merged_vs_separate.py --epoch 5 \\
        --ppe RUN_FOLDER --fire-smoke RUN_FOLDER --merged RUN_FOLDER
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from hazardvision.datasets.readers import read_yolo
from hazardvision.images import load_image
from hazardvision.packs.evaluation import score_dataset
from hazardvision.packs.model_pack import ModelPack
from hazardvision.resources import bundled_path, default_datasets
from hazardvision.training.packaging import images_per_second, scratch_pack
from hazardvision.training.recipe import load_recipe

PHOTOS_PER_DATASET = 25


def test_photos(data_yaml: Path) -> list[Path]:
    return [f.image for f in read_yolo(data_yaml).files if f.split == "test"]


def foreign_per_100(pack: ModelPack, data_yaml: Path, labelled: set[str]) -> float:
    """Detections at the operating confidence of classes the dataset does not label, per 100 test photos."""
    files = test_photos(data_yaml)
    found = 0
    for path in files:
        detections = pack.detect([load_image(path).pixels])[0]
        found += sum(1 for name in detections.class_name if str(name) not in labelled)
    return round(100 * found / max(len(files), 1), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epoch", type=int, required=True, help="Compare weights/epoch<K>.pt of each run.")
    parser.add_argument("--ppe", type=Path, required=True, help="Run folder of the ppe pack.")
    parser.add_argument("--fire-smoke", type=Path, required=True, help="Run folder of the fire-smoke pack.")
    parser.add_argument("--merged", type=Path, required=True, help="Run folder of the merged experiment.")
    parser.add_argument("--datasets", type=Path, default=default_datasets())
    args = parser.parse_args()

    recipes = {
        "ppe": (load_recipe(bundled_path("training/recipes/ppe.yaml")), args.ppe),
        "fire-smoke": (load_recipe(bundled_path("training/recipes/fire-smoke.yaml")), args.fire_smoke),
        "merged": (load_recipe(bundled_path("training/experiments/merged.yaml")), args.merged),
    }
    with tempfile.TemporaryDirectory() as scratch:
        packs = {name: scratch_pack(run / "weights" / f"epoch{args.epoch}.pt", recipe, Path(scratch) / name)
                 for name, (recipe, run) in recipes.items()}
        merged_recipe = recipes["merged"][0]
        print(f"weights after {args.epoch + 1} epochs (epoch{args.epoch}.pt); test-split mAP50, our runtime")
        print(f"{'dataset':<14} {'separate':>9} {'merged':>7}   per class (separate / merged)")
        for spec in merged_recipe.evaluation:
            data_yaml = args.datasets / spec.dataset / "data.yaml"
            own = next(n for n in ("ppe", "fire-smoke")
                       if spec.dataset in {s.dataset for s in recipes[n][0].evaluation})
            results = {}
            for name in (own, "merged"):
                scored = score_dataset(packs[name], data_yaml, split=spec.split, mapping=spec.map, drop=spec.drop)
                results[name] = scored.result(recipes[name][0].operating_confidence)
            classes = [c for c, m in results[own].per_class.items() if m.instances]
            detail = ", ".join(f"{c} {results[own].per_class[c].map50:.3f}/{results['merged'].per_class[c].map50:.3f}"
                               for c in classes)
            print(f"{spec.dataset:<14} {results[own].map50:>9.3f} {results['merged'].map50:>7.3f}   {detail}")
            labelled = set(recipes[own][0].classes)
            other = next(n for n in ("ppe", "fire-smoke") if n != own)
            print(f"{'':<14} other pack's classes per 100 photos: separate ({other} pack) "
                  f"{foreign_per_100(packs[other], data_yaml, labelled)}, merged "
                  f"{foreign_per_100(packs['merged'], data_yaml, labelled)}")

        sample = [path for spec in merged_recipe.evaluation
                  for path in test_photos(args.datasets / spec.dataset / "data.yaml")[:PHOTOS_PER_DATASET]]
        ppe_speed, fire_speed, merged_speed = images_per_second(
            [packs["ppe"], packs["fire-smoke"], packs["merged"]], sample)
        separate_speed = 1 / (1 / ppe_speed + 1 / fire_speed)
        print(f"serving speed on {len(sample)} test photos, one photo per call: both packs "
              f"{separate_speed:.1f} images/s (ppe {ppe_speed}, fire-smoke {fire_speed}), merged {merged_speed} "
              f"images/s: merged is {merged_speed / separate_speed:.2f}x")


if __name__ == "__main__":
    main()
