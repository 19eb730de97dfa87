"""Which layers should stay float32 in the int8 model? mAP50 on the validation splits per choice.

Exports trained weights once (float32 at the recipe's serving size), then quantises them as the
packaging step does (the recipe's calibration photos and method) once per candidate set of
modules kept in float32 besides the head, and scores each on every val split of the recipe's
training datasets, beside float32. Put the chosen set in the recipe's `int8_float_modules`.

    python benchmarks/int8_layers.py --weights RUN/weights/best.pt --recipe site --sets ";0;0,1,2;17,20,23"
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from hazardvision.packs.card import ModelCard
from hazardvision.packs.evaluation import evaluate_dataset
from hazardvision.packs.model_pack import ModelPack
from hazardvision.resources import default_datasets
from hazardvision.training.packaging import calibration_photos, quantize_int8, scratch_pack
from hazardvision.training.recipe import load_recipe, recipe_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--recipe", default="site")
    parser.add_argument("--sets", default=";0", help="Semicolon-separated candidate sets of module numbers "
                        "('' : the head only).")
    parser.add_argument("--datasets", type=Path, default=default_datasets())
    args = parser.parse_args()
    recipe = load_recipe(recipe_path(args.recipe))
    specs = [spec for spec in recipe.evaluation if spec.train]
    calibration = recipe.calibration or [specs[0].dataset]
    names = [calibration] if isinstance(calibration, str) else list(calibration)
    photos = calibration_photos(args.datasets, names)
    with tempfile.TemporaryDirectory() as scratch:
        base = scratch_pack(args.weights, recipe, Path(scratch) / "pack", recipe.serve_imgsz)
        card = base.card.model_copy(update={"exclusive_classes": tuple(map(tuple, recipe.exclusive_classes))})

        def score(pack: ModelPack) -> list[float]:
            return [evaluate_dataset(pack, args.datasets / spec.dataset / "data.yaml", split="val",
                                     mapping=spec.map, drop=spec.drop).map50 for spec in specs]

        print(f"{recipe.pack}: val mAP50 of {', '.join(s.dataset for s in specs)} "
              f"({recipe.calibration_method} calibration on {len(photos)} photos)")
        print(f"  float32: {', '.join(f'{v:.3f}' for v in score(ModelPack(base.folder, card)))}", flush=True)
        for text in args.sets.split(";"):
            modules = [int(v) for v in text.split(",") if v.strip()]
            target = base.folder / f"int8-{'-'.join(map(str, modules)) or 'head'}.onnx"
            quantize_int8(base.folder / "model.onnx", target, photos, recipe.calibration_method, modules)
            pack = ModelPack(base.folder, ModelCard.model_validate({**card.model_dump(), "model_file": target.name}))
            print(f"  int8, float32 head + {modules or 'nothing else'}: "
                  f"{', '.join(f'{v:.3f}' for v in score(pack))}", flush=True)


if __name__ == "__main__":
    main()
