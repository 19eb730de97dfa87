"""ONNX runtime for detection models exported by ultralytics (YOLOv8, YOLO11, YOLO26).

Explicit `preprocess -> predict -> postprocess`: letterbox a batch of photos, run the graph,
turn its output into `Detections` in original-image pixels. Reads class names, input size and
stride from the ONNX metadata that ultralytics writes; never imports torch.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from hazardvision.boxes import box_area
from hazardvision.detections import Detections
from hazardvision.errors import InferenceError, InvalidModel
from hazardvision.images import BGRImage
from hazardvision.packs.letterbox import Letterbox, letterbox, target_shape

DEFAULT_CONFIDENCE = 0.25
DEFAULT_IOU = 0.7
DEFAULT_MAX_DET = 300
MAX_DYNAMIC_BATCH = 16
"""Largest batch sent at once to a model with a dynamic batch axis, to bound memory."""


@dataclass(frozen=True)
class Batch:
    """A preprocessed batch: the NCHW float32 tensor and where each photo sits in it."""

    tensor: NDArray[np.float32]
    letterboxes: tuple[Letterbox, ...]


@dataclass(frozen=True)
class ModelInfo:
    """What the detector learned about its ONNX file."""

    class_names: tuple[str, ...]
    input_height: int
    input_width: int
    stride: int
    batch_size: int | None
    """Fixed batch size of the graph, or None when the batch axis is dynamic."""
    dynamic_shape: bool
    """Whether height and width are dynamic axes (then padding can be minimal)."""
    metadata: dict[str, str]


class OnnxDetector:
    """Runs one ultralytics ONNX detection export on BGR photos."""

    def __init__(self, path: str | Path, *, threads: int | None = None, features: bool = False) -> None:
        """Load an export; with `features`, the graph also returns the feature maps its head reads.

        Those maps (one per stride) are what similar-case embeddings pool from, so that one
        forward pass serves both detection and search.
        """
        self.path = Path(path)
        if not self.path.is_file():
            raise InvalidModel(f"model file not found: {self.path}")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        model: str | bytes = str(self.path)
        self.feature_names: tuple[str, ...] = ()
        if features:
            model, self.feature_names = with_feature_outputs(self.path)
        try:
            self.session = ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own untyped errors for bad graphs
            raise InvalidModel(f"{self.path} is not a loadable ONNX model: {error}") from error
        self.info = _read_info(self.session, self.path)
        self.input_name = self.session.get_inputs()[0].name

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.info.class_names

    def preprocess(self, images: Sequence[BGRImage]) -> Batch:
        """Letterbox photos into one RGB float32 NCHW tensor scaled to 0..1."""
        info = self.info
        shapes = {image.shape[:2] for image in images}
        # Minimal padding only where the graph accepts any size and all photos share one shape.
        stride = info.stride if info.dynamic_shape and len(shapes) == 1 else None
        height, width = next(iter(shapes)) if stride else (info.input_height, info.input_width)
        out_h, out_w = target_shape(height, width, info.input_height, info.input_width, stride)
        tensor = np.empty((len(images), 3, out_h, out_w), dtype=np.float32)
        boxes = []
        for i, image in enumerate(images):
            canvas, placement = letterbox(image, info.input_height, info.input_width, out_h, out_w)
            # BGR to RGB and HWC to CHW in one C++ pass.
            tensor[i] = cv2.dnn.blobFromImage(canvas, 1.0, swapRB=True)[0]
            boxes.append(placement)
        # Divide, as ultralytics does: multiplying by 1/255 differs in the last bit, and YOLO26's
        # top-k head can turn such noise into a different box near its cut-off.
        tensor /= np.float32(255)
        return Batch(tensor, tuple(boxes))

    def predict(self, tensor: NDArray[np.float32]) -> NDArray[np.float32]:
        """Run the graph; pads a short batch with zeros when the graph's batch size is fixed."""
        return self.run(tensor)[0]

    def run(self, tensor: NDArray[np.float32]) -> list[NDArray[np.float32]]:
        """The detection output, then the feature maps when the detector was loaded with `features`."""
        fixed = self.info.batch_size
        n = tensor.shape[0]
        if fixed is not None and n != fixed:
            if n > fixed:
                raise ValueError(f"batch of {n} exceeds the model's fixed batch size {fixed}")
            tensor = np.concatenate([tensor, np.zeros((fixed - n, *tensor.shape[1:]), np.float32)])
        try:
            outputs = self.session.run(None, {self.input_name: tensor})
        except Exception as error:  # onnxruntime raises its own untyped errors
            raise InferenceError(f"{self.path} failed on a batch of shape {tensor.shape}: {error}") from error
        return [np.asarray(output, dtype=np.float32)[:n] for output in outputs]

    def postprocess(
        self,
        output: NDArray[np.float32],
        letterboxes: Sequence[Letterbox],
        *,
        confidence: float = DEFAULT_CONFIDENCE,
        iou: float = DEFAULT_IOU,
        max_det: int = DEFAULT_MAX_DET,
    ) -> list[Detections]:
        """Turn the raw batch output into per-photo detections in original-image pixels."""
        results = []
        for image_output, placement in zip(output, letterboxes, strict=True):
            detections = Detections.from_onnx_output(
                image_output, self.class_names, confidence_threshold=confidence, iou_threshold=iou,
                max_det=max_det,
            )
            detections.xyxy = placement.to_original(detections.xyxy)
            # A box that lies wholly in the padding has no area left once clipped to the photo.
            results.append(detections[box_area(detections.xyxy) > 0])
        return results

    def detect(
        self,
        images: Sequence[BGRImage],
        *,
        confidence: float = DEFAULT_CONFIDENCE,
        iou: float = DEFAULT_IOU,
        max_det: int = DEFAULT_MAX_DET,
    ) -> list[Detections]:
        """Detect objects in each photo, in batches the graph accepts."""
        results: list[Detections] = []
        for batch, outputs in self.runs(images):
            results.extend(
                self.postprocess(outputs[0], batch.letterboxes, confidence=confidence, iou=iou, max_det=max_det)
            )
        return results

    def runs(self, images: Sequence[BGRImage]) -> Iterator[tuple[Batch, list[NDArray[np.float32]]]]:
        """Each batch the graph accepts and its outputs (see `run`)."""
        chunk = self.info.batch_size or MAX_DYNAMIC_BATCH
        for start in range(0, len(images), chunk):
            batch = self.preprocess(images[start : start + chunk])
            yield batch, self.run(batch.tensor)


def with_feature_outputs(path: Path) -> tuple[bytes, tuple[str, ...]]:
    """The graph of `path` with the feature maps entering its detection head added as outputs.

    ultralytics names every node after its module (`/model.<i>/...`); the head is the last
    module, and the tensors it reads from earlier modules are the neck's maps, finest first.
    """
    import onnx  # noqa: PLC0415  (protobuf's parser: ~1 s of every CLI start, and only feature graphs need it)

    try:
        model = onnx.load(str(path))
    except Exception as error:  # onnx raises protobuf's untyped decode errors
        raise InvalidModel(f"{path} is not a loadable ONNX model: {error}") from error
    graph = model.graph
    module_of = {}
    for node in graph.node:
        found = _MODULE.match(node.name)
        if found:
            for output in node.output:
                module_of[output] = int(found.group(1))
    if not module_of:
        raise InvalidModel(f"{path} has no ultralytics module names; similar-case search needs an ultralytics export")
    head = max(module_of.values())
    inputs: dict[str, int] = {}
    for node in graph.node:
        found = _MODULE.match(node.name)
        if found and int(found.group(1)) == head:
            for name in node.input:
                if module_of.get(name, head) != head:
                    inputs[name] = module_of[name]
    if not inputs:
        raise InvalidModel(f"{path}: cannot find the feature maps that its detection head reads")
    names = tuple(sorted(inputs, key=lambda name: inputs[name]))
    # The head's class branch (`cv3.<level>`) ends in a 1x1 convolution to the class scores; the
    # maps it reads are the most class-specific features of the graph.
    branch = re.compile(rf"^/model\.{head}/(?:one2one_)?cv3\.(\d+)/(?:one2one_)?cv3\.\1\.2/Conv$")
    levels = {int(found.group(1)): node.input[0] for node in graph.node if (found := branch.match(node.name))}
    names += tuple(levels[level] for level in sorted(levels))
    known = {output.name for output in graph.output}
    for name in names:
        if name not in known:
            graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    return model.SerializeToString(), names


_MODULE = re.compile(r"^/model\.(\d+)/")


def _read_info(session: ort.InferenceSession, path: Path) -> ModelInfo:
    """Read class names, input size, stride and batch layout from an ultralytics export."""
    metadata: dict[str, str] = dict(session.get_modelmeta().custom_metadata_map)
    task = metadata.get("task", "detect")
    if task != "detect":
        raise InvalidModel(f"{path} is a {task!r} model; hazardvision needs a detection ('detect') model")
    if "names" not in metadata:
        raise InvalidModel(
            f"{path} has no 'names' metadata; export it with ultralytics (model.export(format='onnx'))"
        )
    try:
        names_map = ast.literal_eval(metadata["names"])
        class_names = tuple(str(names_map[i]) for i in range(len(names_map)))
    except (ValueError, SyntaxError, KeyError, TypeError) as error:
        raise InvalidModel(f"{path} has unreadable class names metadata: {metadata['names']!r}") from error
    shape = session.get_inputs()[0].shape
    if len(shape) != 4:
        raise InvalidModel(f"{path} takes input of shape {shape}; expected (batch, 3, height, width)")
    dynamic_shape = not (isinstance(shape[2], int) and isinstance(shape[3], int))
    if "imgsz" in metadata:
        input_height, input_width = (int(v) for v in ast.literal_eval(metadata["imgsz"]))
    elif not dynamic_shape:
        input_height, input_width = int(shape[2]), int(shape[3])
    else:
        raise InvalidModel(f"{path} has dynamic input size and no 'imgsz' metadata")
    return ModelInfo(
        class_names=class_names,
        input_height=input_height,
        input_width=input_width,
        stride=int(metadata.get("stride", 32)),
        batch_size=shape[0] if isinstance(shape[0], int) else None,
        dynamic_shape=dynamic_shape,
        metadata=metadata,
    )

