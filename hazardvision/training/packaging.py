"""Turning trained weights into a model pack: ONNX float32 and int8, evaluation, card.

    weights.pt -> model.onnx (dynamic shape) -> model-int8.onnx (static quantisation, calibrated on
    training photos) -> both scored on every evaluation set through our own runtime (float32 also
    drawn as plots/<dataset>-confusion.png and -pr.png), and timed on the same photos -> card.json +
    README.md in HOME/models/<pack>/<version>/ (the registry's home layer; `models bundle` releases it).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import logging
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hazardvision.catalogue import load_catalogue
from hazardvision.datasets.classmap import build_class_map
from hazardvision.datasets.readers import read_yolo, source_notes
from hazardvision.errors import DatasetError, InvalidModel
from hazardvision.images import load_image
from hazardvision.packs.card import (
    CARD_FILE,
    DataSource,
    EvaluatedSet,
    Evaluation,
    Metrics,
    ModelCard,
    Plots,
    Precision,
    PretrainedStart,
    Quantization,
    RecordedRecipe,
    Speed,
    ThresholdSelection,
    Training,
)
from hazardvision.packs.evaluation import Accumulator, score_dataset
from hazardvision.packs.evaluation_plots import write_evaluation_plots
from hazardvision.packs.integrity import hash_files
from hazardvision.packs.model_pack import ModelPack, load_pack
from hazardvision.packs.promotion import split_id
from hazardvision.packs.registry import PackRegistry
from hazardvision.packs.thresholds import choose_thresholds
from hazardvision.resources import bundled_path
from hazardvision.training.pretrained import credit_of, default_pretrained_root
from hazardvision.training.recipe import EvaluationSet, Recipe, load_recipe, recipe_path
from hazardvision.training.trainer import pretrained_record

CALIBRATION_PHOTOS = 64
SPEED_PHOTOS = 50
PERCENTILE = 99.99
EVALUATOR = "hazardvision ONNX runtime, conf 0.001, iou 0.7, one box per object, COCO-style 101-point AP"
INT8_TOLERANCE = 0.015
"""int8 is a pack's default precision when its test mAP50 is at most this far below float32 on every split."""


def export_onnx(weights: Path, target: Path, imgsz: int) -> Path:
    """Export ultralytics weights to a dynamic-shape ONNX file at `target`."""
    from ultralytics import YOLO  # noqa: PLC0415  (the [train] extra)
    from ultralytics.utils import LOGGER  # noqa: PLC0415

    level = LOGGER.level
    LOGGER.setLevel(logging.WARNING)  # not ultralytics' export banner and hints to the user of every pack build
    try:
        with tempfile.TemporaryDirectory() as scratch:
            local = Path(scratch) / "weights.pt"
            shutil.copy(weights, local)  # export writes beside the weights; keep that out of the pack
            exported = Path(YOLO(str(local)).export(format="onnx", dynamic=True, imgsz=imgsz, simplify=True))
            shutil.move(exported, target)
    finally:
        LOGGER.setLevel(level)
    return target


def scratch_pack(weights: Path, recipe: Recipe, folder: Path, imgsz: int | None = None) -> ModelPack:
    """`weights` exported to `folder/model.onnx` at `imgsz` (default: the recipe's) as a bare pack, to score it."""
    folder.mkdir(parents=True, exist_ok=True)
    export_onnx(weights, folder / "model.onnx", imgsz or recipe.imgsz)
    card = ModelCard(pack=recipe.pack, version=weights.stem, architecture=recipe.architecture,
                     classes=tuple(recipe.classes), operating_confidence=recipe.operating_confidence)
    return ModelPack(folder, card)


def quantize_int8(model: Path, target: Path, calibration: Sequence[Path], method: str = "minmax",
                  keep_float: Sequence[int] = ()) -> Path:
    """Static int8 quantisation calibrated on real photos (`method`: minmax or percentile); the head stays float32,
    and so do the modules numbered in `keep_float` (`/model.<i>/` nodes: layers that lose too much in int8).

    Quantising the head (box regression and class scores) collapses accuracy (measured: mAP50
    0.47 to 0.00 on fire-smoke); the backbone and neck carry nearly all the compute.
    """
    import onnx  # noqa: PLC0415  (the [train] extra)
    from onnxruntime.quantization import (  # noqa: PLC0415
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process  # noqa: PLC0415

    from hazardvision.packs.detector import OnnxDetector  # noqa: PLC0415

    detector = OnnxDetector(model)
    photos = iter(calibration)

    class Photos(CalibrationDataReader):  # type: ignore[misc]
        def get_next(self) -> dict[str, Any] | None:
            path = next(photos, None)
            if path is None:
                return None
            return {detector.input_name: detector.preprocess([load_image(path).pixels]).tensor}

    with tempfile.TemporaryDirectory() as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        quant_pre_process(str(model), str(prepared), skip_symbolic_shape=True)
        graph = onnx.load(str(prepared))
        modules = [int(m.group(1)) for node in graph.graph.node if (m := re.match(r"/model\.(\d+)/", node.name))]
        if not modules:
            raise InvalidModel(f"{model} does not look like an ultralytics export (no /model.N/ nodes)")
        floats = tuple(f"/model.{i}/" for i in {max(modules), *keep_float})
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # onnxruntime warns, through the root logger, of every tensor it leaves float
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # its percentile calibration prints progress
                quantize_static(
                    str(prepared), str(target), Photos(), quant_format=QuantFormat.QOperator, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    nodes_to_exclude=[node.name for node in graph.graph.node if node.name.startswith(floats)],
                    calibrate_method=(CalibrationMethod.Percentile if method == "percentile"
                                      else CalibrationMethod.MinMax),
                    extra_options={"CalibPercentile": PERCENTILE} if method == "percentile" else {},
                )
        finally:
            root.setLevel(level)
    quantized = onnx.load(str(target))
    del quantized.metadata_props[:]  # carry names, imgsz and stride over from the float model
    for prop in onnx.load(str(model)).metadata_props:
        quantized.metadata_props.add(key=prop.key, value=prop.value)
    onnx.save(quantized, str(target))
    return target


def images_per_second(packs: Sequence[ModelPack], photos: Sequence[Path], repeat: int = 3) -> list[float]:
    """Median images/s of each pack on the same photos, one photo per call, runs alternating."""
    pixels = [load_image(p).pixels for p in photos]
    for pack in packs:
        pack.detect(pixels[:2])  # warm up
    runs: list[list[float]] = [[] for _ in packs]
    for _ in range(repeat):
        for i, pack in enumerate(packs):
            start = time.perf_counter()
            for image in pixels:
                pack.detect([image])
            runs[i].append(len(pixels) / (time.perf_counter() - start))
    return [round(statistics.median(r), 2) for r in runs]


def _credit(datasets: Path, name: str) -> DataSource:
    origin, licence = source_notes(datasets / name)
    origin, licence = origin or name, licence or "unknown"
    return DataSource(name=name, origin=origin, licence=licence,
                      credit=f"{origin}, licensed {licence}; labels remapped to the hazardvision catalogue.")


def build_pack(
    weights: Path,
    recipe: Recipe,
    version: str,
    *,
    registry: PackRegistry,
    datasets: Path,
    status: str = "trained by `hazardvision train`",
    int8: bool = True,
) -> Path:
    """Make `<pack>/<version>/` in the registry's home from trained weights; activate it if the pack has no active
    version (stage it, when the recipe replaces other packs)."""
    from ultralytics import YOLO  # noqa: PLC0415  (the [train] extra)
    from ultralytics.utils.torch_utils import strip_optimizer  # noqa: PLC0415

    folder = registry.new_version(recipe.pack, version)
    scratch = folder.with_name(f".{version}.building")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    strip_optimizer(weights, str(scratch / "weights.pt"))
    model = YOLO(str(scratch / "weights.pt"))
    names = [str(model.names[i]) for i in range(len(model.names))]
    if names != recipe.classes:
        raise InvalidModel(f"{weights} predicts {names}, but recipe {recipe.pack} lists {recipe.classes}")
    train_args = dict(model.ckpt.get("train_args", {}))
    trained_imgsz = int(train_args.get("imgsz", recipe.imgsz))
    imgsz = recipe.serve_imgsz or trained_imgsz
    export_onnx(scratch / "weights.pt", scratch / "model.onnx", imgsz)

    sets = recipe.evaluation
    calibration = recipe.calibration or ([sets[0].dataset] if sets else [])
    calibration_sets = [calibration] if isinstance(calibration, str) else list(calibration)
    calibration_set = ", ".join(calibration_sets) or None
    if int8 and calibration_sets:
        quantize_int8(scratch / "model.onnx", scratch / "model-int8.onnx",
                      calibration_photos(datasets, calibration_sets), recipe.calibration_method,
                      recipe.int8_float_modules)
    variants = {"float32": "model.onnx"} | ({"int8": "model-int8.onnx"} if (scratch / "model-int8.onnx").exists()
                                            else {})
    # A run from random weights names its architecture file; one from pretrained weights its start.pt.
    trained_from = str(train_args.get("model", recipe.architecture))
    architecture = Path(trained_from if trained_from.endswith(".yaml") else recipe.architecture).stem
    base = ModelCard(pack=recipe.pack, version=version, architecture=architecture, classes=tuple(names),
                     operating_confidence=recipe.operating_confidence,
                     exclusive_classes=tuple(map(tuple, recipe.exclusive_classes)), tiling=recipe.tiling)
    selection = _choose_thresholds(ModelPack(scratch, base), recipe, datasets) if recipe.per_class_thresholds else {}
    base = base.model_copy(update={"class_thresholds": {name: chosen[0] for name, chosen in selection.items()}})
    packs = {p: ModelPack(scratch, base.model_copy(update={"model_file": f})) for p, f in variants.items()}
    metrics, unlabelled, evaluation_sets, plots = _score_tests(packs, recipe, datasets, scratch,
                                                               f"{recipe.pack} {version} float32")
    speed_photos = _speed_photos(datasets, sets)
    speeds = dict(zip(variants, images_per_second(list(packs.values()), speed_photos), strict=True)) \
        if speed_photos else {}
    data = str(train_args.get("data", ""))
    recorded = RecordedRecipe.model_validate_json(recipe.model_dump_json())
    card = base.model_copy(update={
        "model_file": "model.onnx",
        "model_file_int8": variants.get("int8"),
        "default_precision": _default_precision(metrics),
        "weights_file": "weights.pt",
        "imgsz": imgsz,
        "status": status,
        "training": Training(epochs=train_args.get("epochs"), imgsz=trained_imgsz, batch=train_args.get("batch"),
                             data=data, snapshot_id=_snapshot_id(Path(data)), recipe=recorded,
                             pretrained=_pretrained(weights)),
        "threshold_selection": ThresholdSelection(
            split="val", method="maximum F1 at IoU 0.5, per class, over the val splits that label the class",
            f1={name: chosen[1] for name, chosen in selection.items()}) if selection else None,
        "quantization": Quantization(calibration_dataset=calibration_set, photos=CALIBRATION_PHOTOS,
                                     method=recipe.calibration_method, float_modules=recipe.int8_float_modules)
        if "int8" in variants else None,
        "metrics": Metrics(split="test", evaluator=EVALUATOR, datasets=metrics["float32"],
                           int8=metrics.get("int8", {}), unlabelled_per_100_photos=unlabelled),
        "speed": Speed(images_per_second=speeds, photos=len(speed_photos),
                       note="one photo per call on the machine that built the pack, same photos for both"),
        "evaluation_sets": tuple(evaluation_sets),
        "plots": plots,
        "data_sources": tuple(_credit(datasets, s.dataset) for s in sets if s.train),
        "held_out": tuple(s.dataset for s in sets if not s.train),
        "code_version": _code_version(),
        "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    })
    card = card.model_copy(update={"file_sha256": hash_files(scratch, card)})  # checked whenever the pack loads
    card = ModelCard.model_validate(card.to_json())  # what model_copy skipped: validation of the whole card
    card.write(scratch / CARD_FILE)
    (scratch / "README.md").write_text(card_markdown(card), encoding="utf-8")
    load_pack(scratch)  # the card must load before the version goes live
    scratch.rename(folder)
    # A pack that replaces others is staged (an empty ACTIVE) until the per-class gate lets it in.
    registry.added(recipe.pack, version, staged=bool(recipe.replaces))
    return folder


Scored = tuple[dict[str, dict[str, Evaluation]], dict[str, dict[str, float]], list[EvaluatedSet], dict[str, Plots]]


def _score_tests(packs: dict[str, ModelPack], recipe: Recipe, datasets: Path, folder: Path, label: str) -> Scored:
    """Each precision's test metrics per evaluation set, boxes of unlabelled classes per 100 photos, the sets with
    their split ids, and the float32 plots drawn into `folder`."""
    metrics: dict[str, dict[str, Evaluation]] = {p: {} for p in packs}
    unlabelled: dict[str, dict[str, float]] = {}
    evaluation_sets, plots = [], {}
    for spec in recipe.evaluation:
        data_yaml = datasets / spec.dataset / "data.yaml"
        evaluation_sets.append(EvaluatedSet(**spec.model_dump(), split_id=split_id(data_yaml, spec.split)))
        for precision, pack in packs.items():
            scored = score_dataset(pack, data_yaml, split=spec.split, mapping=spec.map, drop=spec.drop)
            metrics[precision][spec.dataset] = scored.result(recipe.operating_confidence, pack.card.class_thresholds)
            if precision == "float32":
                unlabelled[spec.dataset] = _unlabelled_per_100(scored, pack, labelled_classes(data_yaml, spec))
                plots[spec.dataset] = Plots.model_validate(write_evaluation_plots(
                    scored, folder, spec.dataset, operating_confidence=recipe.operating_confidence,
                    label=label, split=spec.split))
    return metrics, unlabelled, evaluation_sets, plots


def calibration_photos(datasets: Path, names: Sequence[str]) -> list[Path]:
    """CALIBRATION_PHOTOS training photos, shared evenly between the datasets and spread over each."""
    share = CALIBRATION_PHOTOS // len(names)
    chosen = []
    for name in names:
        photos = [f.image for f in read_yolo(datasets / name / "data.yaml").files if f.split == "train"]
        chosen += photos[:: max(1, len(photos) // share)][:share]
    return chosen


def labelled_classes(data_yaml: Path, spec: EvaluationSet) -> set[str]:
    """The catalogue classes that a dataset's labels speak for, under the evaluation set's map."""
    dataset = read_yolo(data_yaml)
    class_map = build_class_map(dataset.classes, load_catalogue(), spec.map, spec.drop)
    return {target for name in dataset.classes if (target := class_map.target(name)) is not None}


def _choose_thresholds(pack: ModelPack, recipe: Recipe, datasets: Path) -> dict[str, tuple[float, float]]:
    """Per-class (threshold, F1) on the val splits of the recipe's training datasets."""
    scored = []
    for spec in recipe.evaluation:
        if spec.train:
            data_yaml = datasets / spec.dataset / "data.yaml"
            accumulator = score_dataset(pack, data_yaml, split="val", mapping=spec.map, drop=spec.drop)
            scored.append((accumulator, labelled_classes(data_yaml, spec)))
    return choose_thresholds(recipe.classes, scored)


def _unlabelled_per_100(scored: Accumulator, pack: ModelPack, labelled: set[str]) -> dict[str, float]:
    """Reported boxes per 100 photos of each class the dataset does not label (false alarms where it is known
    absent, such as fire on PPE photos; unlabelled true objects otherwise)."""
    counts = {}
    for name in pack.card.classes:
        if name not in labelled:
            confidence, _, _ = scored.hits(name)
            counts[name] = round(100 * int((confidence >= pack.card.threshold(name)).sum()) / max(scored.images, 1), 2)
    return counts


def _default_precision(metrics: dict[str, dict[str, Evaluation]]) -> Precision:
    """int8 where its mAP50 is within INT8_TOLERANCE of float32 on every test split, else float32."""
    if not metrics.get("int8"):
        return Precision.FLOAT32
    close = all(metrics["int8"][d].map50 >= m.map50 - INT8_TOLERANCE for d, m in metrics["float32"].items())
    return Precision.INT8 if close else Precision.FLOAT32


def _pretrained(weights: Path) -> PretrainedStart | None:
    """The run's record of its starting weights, with their credit, when it started from pretrained ones."""
    record = pretrained_record(weights.parent.parent)
    if record is None:
        return None
    if not record.get("credit"):  # a record of the run folder (pretrained.json), not a card
        record["credit"] = credit_of(default_pretrained_root() / record["weights"], record["sha256"])
    return PretrainedStart.model_validate(record)


def plot_pack(folder: Path, datasets: Path) -> dict[str, float]:
    """(Re)draw a pack version's float32 evaluation plots, link them from its card and page; mAP50 per set.

    The sets are those the card's metrics were computed on (else its recipe's); a test split that
    changed since is refused, since its plots would not match the card.
    """
    pack = load_pack(folder)
    card = pack.card
    specs = [EvaluationSet.model_validate(s.model_dump(exclude={"split_id"})) for s in card.evaluation_sets] \
        or load_recipe(recipe_path(pack.name)).evaluation
    expected = {s.dataset: s.split_id for s in card.evaluation_sets}
    if not specs:
        raise InvalidModel(f"{folder} names no evaluation sets, and neither does recipe {pack.name}")
    plots, scores = {}, {}
    for spec in specs:
        data_yaml = datasets / spec.dataset / "data.yaml"
        if not data_yaml.is_file():
            raise DatasetError(f"{data_yaml} not found; pass --datasets DIR holding {spec.dataset}/")
        if expected.get(spec.dataset) and split_id(data_yaml, spec.split) != expected[spec.dataset]:
            raise DatasetError(f"the {spec.split} split of {data_yaml} differs from the one {pack.name} "
                               f"{pack.version} was scored on (split id {expected[spec.dataset]})")
        scored = score_dataset(pack, data_yaml, split=spec.split, mapping=spec.map, drop=spec.drop)
        plots[spec.dataset] = Plots.model_validate(write_evaluation_plots(
            scored, folder, spec.dataset, operating_confidence=card.operating_confidence,
            label=f"{pack.name} {pack.version} float32", split=spec.split))
        scores[spec.dataset] = scored.result(card.operating_confidence).map50
    card = card.model_copy(update={"plots": plots})
    card.write(folder / CARD_FILE)
    page = folder / f".README.md.{os.getpid()}"
    page.write_text(card_markdown(card), encoding="utf-8")
    page.replace(folder / "README.md")  # a reloading service never reads half a page
    return scores


def _speed_photos(datasets: Path, sets: Sequence[EvaluationSet]) -> list[Path]:
    if not sets:
        return []
    files = [f.image for f in read_yolo(datasets / sets[0].dataset / "data.yaml").files if f.split == sets[0].split]
    return files[:SPEED_PHOTOS]


def _snapshot_id(data_yaml: Path) -> str | None:
    """The bank snapshot the weights were trained on, when they were (its manifest sits beside data.yaml)."""
    manifest = data_yaml.parent / "manifest.json"
    try:
        return str(json.loads(manifest.read_text(encoding="utf-8"))["id"])
    except (OSError, ValueError, KeyError):
        return None


def _code_version() -> str:
    # "-dirty" when the working tree differs from the commit: the card then names code no commit holds
    done = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=bundled_path("."), capture_output=True,
                          text=True, check=False)
    return done.stdout.strip() or "unknown"


def card_markdown(card: ModelCard) -> str:
    """The human page of a card (one packaging built: with its training, metrics and credits)."""
    training, metrics = card.training or Training(), card.metrics or Metrics()
    lines = [f"# Model pack `{card.pack}` {card.version}", "", f"{card.status}.", "",
             f"Architecture {card.architecture}, serving at {card.imgsz} px, trained at "
             f"{training.imgsz} px for {training.epochs} epochs. "
             f"Classes: {', '.join(card.classes)}. Operating confidence {card.operating_confidence}."
             + (f" Trained on bank snapshot {training.snapshot_id}." if training.snapshot_id else ""), "",
             f"## Test-split metrics ({metrics.evaluator})", ""]
    if card.class_thresholds:
        f1 = card.threshold_selection.f1 if card.threshold_selection else {}
        lines[-2:-2] = ["Operating thresholds per class, chosen on the val splits by maximum F1 (precision and recall "
                        "below are at these): " + ", ".join(
                            f"{n} {t:.3f}" + (f" (val F1 {f1[n]:.3f})" if n in f1 else "")
                            for n, t in card.class_thresholds.items()) + ".", ""]
    if "default_precision" in card.model_fields_set:
        lines[-2:-2] = [f"Default precision: {card.default_precision.value} (int8 where its test mAP50 is within "
                        f"{INT8_TOLERANCE} of float32 on every split).", ""]
    for dataset, result in metrics.datasets.items():
        quantized = metrics.int8.get(dataset)
        lines += [f"### {dataset} ({result.images} test photos)", "",
                  f"float32: mAP50 {result.map50:.3f}, mAP50-95 {result.map50_95:.3f}"
                  + (f"; int8: mAP50 {quantized.map50:.3f}, mAP50-95 {quantized.map50_95:.3f}" if quantized
                     else ""), "",
                  "| class | boxes | mAP50 | mAP50-95 | precision | recall | int8 mAP50 |",
                  "|---|---|---|---|---|---|---|"]
        for n, m in result.per_class.items():
            if not m.instances:
                continue  # a class this dataset does not label: see the boxes per 100 photos below
            int8_map50 = f"{quantized.per_class[n].map50:.3f}" if quantized else ""
            lines.append(f"| {n} | {m.instances} | {m.map50:.3f} | {m.map50_95:.3f} | {m.precision:.3f} | "
                         f"{m.recall:.3f} | {int8_map50} |")
        lines.append("")
        if extra := metrics.unlabelled_per_100_photos.get(dataset):
            lines += ["Boxes per 100 photos of classes this dataset does not label (false alarms where they are "
                      "known absent, e.g. fire on PPE photos): " + ", ".join(f"{n} {v:.1f}" for n, v in extra.items())
                      + ".", ""]
        if plots := card.plots.get(dataset):
            lines += [f"![float32 confusion matrix on {dataset}, IoU 0.45 at the operating confidence]"
                      f"({plots.confusion})", "",
                      f"![float32 precision-recall curves on {dataset}, IoU 0.5]({plots.pr})", ""]
    if quantization := card.quantization:
        lines += [f"int8: static, {quantization.method} calibration on {quantization.photos} training photos "
                  f"of {quantization.calibration_dataset}; the detection head stays float32.", ""]
    if card.speed is not None and card.speed.images_per_second:
        lines += ["## Speed", "", ", ".join(f"{k}: {v:.1f} images/s" for k, v in card.speed.images_per_second.items())
                  + f" ({card.speed.photos} test photos, {card.speed.note}).", ""]
    recipe = training.recipe
    lines += ["## Provenance", "",
              f"Code version {card.code_version or 'unknown'}, built {card.created or 'unknown'}; recipe "
              f"`training/recipes/{card.pack}.yaml` as recorded in `card.json`"
              + (f" (imgsz {recipe.imgsz}, {recipe.epochs} epochs, batch {recipe.batch})" if recipe else "") + ".", ""]
    if training.snapshot_id:
        lines += [f"Reproduce from the datasets: `hazardvision train --recipe {card.pack} --version "
                  f"{card.version}`.", ""]
    lines += ["## Training data and credits", ""]
    lines += [f"- {s.name}: {s.origin} ({s.licence})" for s in card.data_sources]
    if start := training.pretrained:
        lines.append(f"- starting weights `{start.weights}` (sha256 {start.sha256}; {start.tensors} of "
                     f"{start.of_tensors} tensors transferred): {start.credit}")
    if card.held_out:
        lines.append(f"- held out of training, scored only: {', '.join(card.held_out)}")
    return "\n".join(lines) + "\n"
