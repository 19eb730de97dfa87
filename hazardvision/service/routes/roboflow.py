"""Roboflow Inference's V1 protocol (/model/registry, /model/add, /infer/object_detection), for `inference-sdk`.

Every serving pack is a model (`ppe`, or `ppe/0.2.1` at its serving version), and `hazardvision` is
all of them at once. The key comes in the query's or the body's `api_key`, or `Authorization: Bearer`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials

from hazardvision.access import KeyRecord, Permission, check
from hazardvision.errors import InvalidImage, InvalidUpload, UnknownModel
from hazardvision.service.deps import RuntimeDep, address_of, bearer
from hazardvision.service.runtime import ClientScan, Runtime
from hazardvision.service.schemas.common import responses
from hazardvision.service.schemas.roboflow import (
    ALL_PACKS,
    ImageSize,
    InferenceImage,
    ModelAddRequest,
    ObjectDetectionPrediction,
    ObjectDetectionRequest,
    ObjectDetectionResponse,
    RegisteredModel,
    RegisteredModels,
)
from hazardvision.service.uploads import Upload

PROTOCOL = "roboflow"
INFER_PATH = "/infer/object_detection"

router = APIRouter(tags=["roboflow inference"], responses=responses())

QueryKey = Annotated[str | None, Query(alias="api_key", description="An API key (hv_...); or the body's api_key, "
                                       "or Authorization: Bearer.")]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


async def _key(request: Request, runtime: Runtime, permission: Permission, *candidates: str | None) -> KeyRecord:
    """The first key given (body, query, then Authorization header), checked for `permission`."""
    record = await runtime.authenticate(next((key for key in candidates if key), None), address_of(request, runtime))
    request.state.key_name = record.name  # for the request log
    check(record, permission)
    return record


def registry(runtime: Runtime) -> RegisteredModels:
    """Each serving pack by name and by name/version, and all of them at once."""
    packs = runtime.host.current.packs
    batch = runtime.settings.max_batch_images
    models = []
    for pack in packs:
        size = pack.card.imgsz
        models += [RegisteredModel(model_id=model_id, batch_size=batch, input_height=size, input_width=size)
                   for model_id in (pack.name, f"{pack.name}/{pack.version}")]
    models.append(RegisteredModel(model_id=ALL_PACKS, batch_size=batch))
    return RegisteredModels(models=models)


def pack_of(runtime: Runtime, model_id: str) -> str | None:
    """The pack a model id names (None: every pack); `UnknownModel` for any other id."""
    if model_id == ALL_PACKS:
        return None
    name, _, version = model_id.partition("/")
    serving = runtime.host.current.versions
    if name in serving and version in ("", serving[name]):
        return name
    known = ", ".join(model.model_id for model in registry(runtime).models)
    raise UnknownModel(f"no model {model_id!r} serves here (a pack serves only its active version); the models "
                       f"are {known}")


def _photo(image: InferenceImage, index: int) -> Upload:
    if image.type != "base64":
        raise InvalidUpload(f"image {index} is of type {image.type!r}; send the photo's bytes as base64 (type "
                            "'base64'): this service never fetches URLs or reads other payloads")
    value = image.value.split(",", 1)[1] if image.value.startswith("data:") else image.value
    try:
        return Upload(base64.b64decode(value, validate=True), f"image-{index}")
    except (binascii.Error, ValueError) as error:
        raise InvalidImage(f"image {index} is not valid base64") from error


def _answer(scan: ClientScan, request: ObjectDetectionRequest, seconds: float) -> ObjectDetectionResponse:
    chosen = [p for p in scan.predictions if request.class_filter is None or p.label in request.class_filter]
    return ObjectDetectionResponse(
        inference_id=scan.scan_id or uuid.uuid4().hex, time=round(seconds, 4),
        image=ImageSize(width=scan.result.image.width, height=scan.result.image.height),
        predictions=[ObjectDetectionPrediction(
            x=round((p.box.x1 + p.box.x2) / 2, 2), y=round((p.box.y1 + p.box.y2) / 2, 2),
            width=round(p.box.x2 - p.box.x1, 2), height=round(p.box.y2 - p.box.y1, 2), confidence=p.confidence,
            class_name=p.label, class_id=p.class_id, detection_id=p.finding_id or uuid.uuid4().hex,
            hazard=p.hazard) for p in chosen[:request.max_detections]],
        scan_id=scan.scan_id)


@router.get("/model/registry", response_model=RegisteredModels, summary="The models (Roboflow Inference)")
async def model_registry(request: Request, runtime: RuntimeDep, api_key: QueryKey = None,
                         credentials: Credentials = None) -> RegisteredModels:
    """Every model id /infer/object_detection answers: each pack, and all of them at once."""
    await _key(request, runtime, Permission.MODELS_READ, api_key, credentials.credentials if credentials else None)
    return registry(runtime)


@router.post("/model/add", response_model=RegisteredModels, responses=responses(404),
             summary="Load a model (Roboflow Inference)")
async def model_add(body: ModelAddRequest, request: Request, runtime: RuntimeDep, api_key: QueryKey = None,
                    credentials: Credentials = None) -> RegisteredModels:
    """Every model is loaded already: checks that the model serves (404 otherwise) and answers the registry."""
    await _key(request, runtime, Permission.MODELS_READ, body.api_key, api_key,
               credentials.credentials if credentials else None)
    pack_of(runtime, body.model_id)
    return registry(runtime)


@router.post(INFER_PATH, response_model=ObjectDetectionResponse | list[ObjectDetectionResponse],
             response_model_exclude_none=True, responses=responses(400, 404, 413),
             summary="Detect objects (Roboflow Inference)")
async def infer_object_detection(body: ObjectDetectionRequest, request: Request, runtime: RuntimeDep,
                                 api_key: QueryKey = None, credentials: Credentials = None
                                 ) -> ObjectDetectionResponse | list[ObjectDetectionResponse]:
    """The photos' detections as the key's client profile shows them, one answer per photo (a list for a list)."""
    key = await _key(request, runtime, Permission.SCAN, body.api_key, api_key,
                     credentials.credentials if credentials else None)
    images = body.image if isinstance(body.image, list) else [body.image]
    if len(images) > runtime.settings.max_batch_images:
        raise InvalidUpload(f"{len(images)} photos sent; at most {runtime.settings.max_batch_images} per request")
    pack = pack_of(runtime, body.model_id)
    uploads = [_photo(image, i) for i, image in enumerate(images)]
    started = time.perf_counter()
    scans = await asyncio.gather(*(runtime.scan_for_client(upload, key, PROTOCOL, pack=pack,
                                                           min_confidence=body.confidence) for upload in uploads))
    answers = [_answer(scan, body, time.perf_counter() - started) for scan in scans]
    return answers if isinstance(body.image, list) else answers[0]
