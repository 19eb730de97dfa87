"""Package a finished ultralytics run as a model pack in models/<pack>/<version>/ (provisional).

Exports a dynamic-shape ONNX file, keeps the stripped PyTorch weights beside it (for later
fine-tuning and for the parity tests), evaluates the exported pack through hazardvision's own
ONNX runtime on the test split of every source dataset, and writes the card (card.json,
README.md) and the ACTIVE marker. `hazardvision train` will replace this script with the full
pipeline (recipes, int8, registry).

    python training/make_pack.py --run /work/runs/fire-smoke-yolo11n --pack fire-smoke \
        --version 0.1.0 --source fire-smoke --drop fire-smoke:default
    python training/make_pack.py --run /work/runs/ppe-yolo26n --pack ppe --version 0.1.0 \
        --source ppe-vest --source hardhat-head --drop hardhat-head:person \
        --map hardhat-head:hard_hat=helmet --map hardhat-head:no_hard_hat=no_helmet \
        --map hardhat-head:no_head_wear=no_helmet
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")

from ultralytics import YOLO
from ultralytics.utils.torch_utils import strip_optimizer

from hazardvision.evaluation import evaluate_dataset
from hazardvision.model_pack import load_pack
from hazardvision.registry import split_id

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO.parent / "shared" / "datasets"


def source_credit(name: str) -> dict[str, str]:
    text = (DATASETS / name / "SOURCE.md").read_text(encoding="utf-8")
    origin = re.search(r"- Origin: (.+)", text)
    licence = re.search(r"- License: ([^(\n]+)", text)
    origin_text = origin.group(1).strip() if origin else name
    return {
        "name": name,
        "origin": origin_text,
        "licence": licence.group(1).strip() if licence else "unknown",
        "credit": f"{origin_text}, licensed CC BY 4.0; labels remapped to the hazardvision catalogue.",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--pack", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--source", action="append", required=True, help="dataset under ../shared/datasets")
    parser.add_argument("--map", action="append", default=[], help="DATASET:SRC=CLASS for evaluation")
    parser.add_argument("--drop", action="append", default=[], help="DATASET:SRC to ignore in evaluation")
    parser.add_argument("--conf", type=float, default=0.25, help="operating confidence")
    parser.add_argument("--out", type=Path, default=REPO / "models")
    parser.add_argument("--weights", default="best.pt")
    args = parser.parse_args()

    folder = args.out / args.pack / args.version
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    weights = folder / "weights.pt"
    strip_optimizer(args.run / "weights" / args.weights, str(weights))
    run_args = YOLO(str(weights)).ckpt.get("train_args", {})
    imgsz = int(run_args.get("imgsz", 320))
    exported = Path(YOLO(str(weights)).export(format="onnx", dynamic=True, imgsz=imgsz, simplify=True))
    shutil.move(exported, folder / "model.onnx")

    model = YOLO(str(weights))
    names = [model.names[i] for i in range(len(model.names))]
    (folder / "card.json").write_text(json.dumps({
        "pack": args.pack, "version": args.version, "architecture": "pending", "classes": names,
        "operating_confidence": args.conf}))
    pack = load_pack(folder)
    evaluation_sets, results = [], {}
    for name in args.source:
        mapping = dict(m.split(":", 1)[1].split("=", 1) for m in args.map if m.startswith(f"{name}:"))
        drop = [d.split(":", 1)[1] for d in args.drop if d.startswith(f"{name}:")]
        test_split = split_id(DATASETS / name / "data.yaml", "test")
        evaluation_sets.append({"dataset": name, "split": "test", "split_id": test_split, "map": mapping, "drop": drop})
        results[name] = json.loads(evaluate_dataset(pack, DATASETS / name / "data.yaml", mapping=mapping,
                                                    drop=drop).model_dump_json())
    code_version = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                  text=True, check=False).stdout.strip()
    card = {
        "pack": args.pack,
        "version": args.version,
        "architecture": Path(str(run_args.get("model", "unknown"))).stem,
        "model_file": "model.onnx",
        "weights_file": "weights.pt",
        "classes": names,
        "operating_confidence": args.conf,
        "imgsz": imgsz,
        "epochs": run_args.get("epochs"),
        "status": "provisional: trained by training/run_ultralytics.py before `hazardvision train` exists",
        "metrics": {
            "split": "test",
            "evaluator": "hazardvision ONNX runtime (model.onnx), conf 0.001, iou 0.7, COCO-style 101-point AP",
            "datasets": results,
        },
        "evaluation_sets": evaluation_sets,
        "data_sources": [source_credit(name) for name in args.source],
        "code_version": code_version,
        "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    (folder / "card.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    sections = []
    for name, result in results.items():
        rows = "\n".join(
            f"| {n} | {m['instances']} | {m['map50']:.3f} | {m['map50_95']:.3f} | {m['precision']:.3f} | "
            f"{m['recall']:.3f} |" for n, m in result["per_class"].items())
        sections.append(
            f"### {name} test split ({result['images']} photos)\n\nmAP50 {result['map50']:.3f}, mAP50-95 "
            f"{result['map50_95']:.3f}; precision and recall at confidence {args.conf}.\n\n"
            f"| class | boxes | mAP50 | mAP50-95 | precision | recall |\n|---|---|---|---|---|---|\n{rows}\n")
    credits = "\n".join(f"- {s['name']}: {s['origin']} ({s['licence']})" for s in card["data_sources"])
    (folder / "README.md").write_text(
        f"# Model pack `{args.pack}` {args.version}\n\n{card['status']}.\n\n"
        f"Architecture {card['architecture']} at {imgsz} px, {card['epochs']} epochs, CPU. Classes: "
        f"{', '.join(names)}. Operating confidence {args.conf}.\n\n"
        f"## Test-split metrics ({card['metrics']['evaluator']})\n\n" + "\n".join(sections) +
        f"\n## Training data and credits\n\n{credits}\n"
    )
    (args.out / args.pack / "ACTIVE").write_text(args.version + "\n")
    print(json.dumps(card["metrics"], indent=2))


if __name__ == "__main__":
    main()
