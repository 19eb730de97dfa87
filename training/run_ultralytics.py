"""Train (or resume) one ultralytics detector offline; provisional until `hazardvision train` exists.

    python training/run_ultralytics.py --data /work/runs/data/ppe/data.yaml --arch yolo26n.yaml \
        --imgsz 320 --epochs 30 --project /work/runs --name ppe-yolo26n

Re-running the same command resumes from `<project>/<name>/weights/last.pt`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")

from ultralytics import YOLO


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--arch", required=True, help="an architecture .yaml, never a hub weight name")
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    last = args.project / args.name / "weights" / "last.pt"
    if last.exists():
        YOLO(str(last)).train(resume=True)
        return
    YOLO(args.arch).train(
        data=args.data, imgsz=args.imgsz, epochs=args.epochs, batch=args.batch, device=args.device,
        project=str(args.project), name=args.name, cache="ram", workers=2, seed=0, patience=0,
        exist_ok=False, verbose=True,
    )


if __name__ == "__main__":
    main()
