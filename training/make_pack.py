"""Package a finished ultralytics run as a model pack in models/<pack>/<version>/ (provisional).

Exports a dynamic-shape ONNX file, keeps the stripped PyTorch weights beside it (for later
fine-tuning and for the parity tests), measures the test split with ultralytics' validator,
and writes the card (card.json, README.md) and the ACTIVE marker. `hazardvision train` will
replace this script with the full pipeline (own-runtime evaluation, int8, registry).

    python training/make_pack.py --run /work/runs/fire-smoke-yolo11n --pack fire-smoke \
        --version 0.1.0 --data /work/runs/data/fire-smoke/data.yaml --source fire-smoke
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
    parser.add_argument("--data", required=True)
    parser.add_argument("--source", action="append", required=True)
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
    metrics = model.val(data=args.data, split="test", imgsz=imgsz, batch=16, conf=0.001, plots=False,
                        device="cpu", project=str(args.run), name="test-eval", exist_ok=True)
    per_class = {}
    for i, name in enumerate(names):
        p, r, ap50, ap = metrics.box.class_result(i)
        per_class[name] = {"precision": round(float(p), 4), "recall": round(float(r), 4),
                           "map50": round(float(ap50), 4), "map50_95": round(float(ap), 4)}
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
            "evaluator": "ultralytics val on weights.pt, conf 0.001, iou 0.7",
            "map50": round(float(metrics.box.map50), 4),
            "map50_95": round(float(metrics.box.map), 4),
            "per_class": per_class,
        },
        "data_sources": [source_credit(name) for name in args.source],
        "code_version": code_version,
        "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    (folder / "card.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    rows = "\n".join(
        f"| {n} | {m['map50']:.3f} | {m['map50_95']:.3f} | {m['precision']:.3f} | {m['recall']:.3f} |"
        for n, m in per_class.items()
    )
    credits = "\n".join(f"- {s['name']}: {s['origin']} ({s['licence']})" for s in card["data_sources"])
    (folder / "README.md").write_text(
        f"# Model pack `{args.pack}` {args.version}\n\n{card['status']}.\n\n"
        f"Architecture {card['architecture']} at {imgsz} px, {card['epochs']} epochs, CPU. Classes: "
        f"{', '.join(names)}. Operating confidence {args.conf}.\n\n"
        f"## Test-split metrics ({card['metrics']['evaluator']})\n\n"
        f"mAP50 {card['metrics']['map50']:.3f}, mAP50-95 {card['metrics']['map50_95']:.3f}\n\n"
        f"| class | mAP50 | mAP50-95 | precision | recall |\n|---|---|---|---|---|\n{rows}\n\n"
        f"## Training data and credits\n\n{credits}\n"
    )
    (args.out / args.pack / "ACTIVE").write_text(args.version + "\n")
    print(json.dumps(card["metrics"], indent=2))


if __name__ == "__main__":
    main()
