"""Label Studio's ML backend (/label-studio/health, /setup, /predict): pre-annotations for labelling projects.

Label Studio authenticates with HTTP Basic (its ML backend's "Basic Authentication" settings): the
password is an API key of role ml (or admin); the user name is not read, since the key names its
holder. `Authorization: Bearer hv_...` works too.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from hazardvision.access import KeyRecord, Permission, check
from hazardvision.errors import Unauthenticated
from hazardvision.service.deps import RuntimeDep, address_of
from hazardvision.service.label_studio import LabelStudioBackend, model_version
from hazardvision.service.runtime import Runtime
from hazardvision.service.schemas.common import responses
from hazardvision.service.schemas.label_studio import (
    PREFIX,
    BackendHealth,
    PredictRequest,
    PredictResponse,
    SetupRequest,
    SetupResponse,
)

router = APIRouter(prefix=PREFIX, tags=["label studio"], responses=responses())


def _key_of(header: str) -> str | None:
    """The API key of an Authorization header: Basic's password, or a bearer token."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthenticated("the Basic Authorization header is not base64 of user:password") from None
    return decoded.partition(":")[2] or None


async def _authenticate(request: Request, runtime: Runtime) -> KeyRecord:
    header = request.headers.get("authorization", "")
    key = _key_of(header)
    if key is None:
        raise Unauthenticated("no API key: in Label Studio's ML backend settings, turn on Basic Authentication "
                              "with any user name and an API key of role ml as the password")
    record = await runtime.authenticate(key, address_of(request, runtime))
    request.state.key_name = record.name  # for the request log
    return record


async def preannotate_key(request: Request, runtime: RuntimeDep) -> KeyRecord:
    """The key of the request's Basic (or bearer) credentials, whose role may pre-annotate (ml or admin)."""
    record = await _authenticate(request, runtime)
    check(record, Permission.PREANNOTATE)
    return record


PreannotateKey = Annotated[KeyRecord, Depends(preannotate_key)]


def label_studio(request: Request, runtime: RuntimeDep) -> LabelStudioBackend:
    """The app's Label Studio backend, made on first use (it keeps each project's Label Studio host)."""
    backend: LabelStudioBackend | None = getattr(request.app.state, "label_studio", None)
    if backend is None:
        backend = request.app.state.label_studio = LabelStudioBackend(runtime)
    return backend


BackendDep = Annotated[LabelStudioBackend, Depends(label_studio)]


@router.get("/health", response_model=BackendHealth, summary="Health (Label Studio ML backend)",
            responses={503: {"model": BackendHealth, "description": "Models are loading."}})
async def health(request: Request, runtime: RuntimeDep) -> JSONResponse:
    """UP once the models serve; credentials, when sent, are checked (Label Studio sends them with every call)."""
    if request.headers.get("authorization"):
        check(await _authenticate(request, runtime), Permission.PREANNOTATE)
    if not runtime.host.ready:
        return JSONResponse(BackendHealth(status="LOADING").model_dump(), 503, headers={"Retry-After": "2"})
    return JSONResponse(BackendHealth(status="UP", model_version=model_version(runtime.host.current.versions))
                        .model_dump())


@router.post("/setup", response_model=SetupResponse, summary="Connect a project (Label Studio ML backend)")
async def setup(body: SetupRequest, key: PreannotateKey, backend: BackendDep) -> SetupResponse:
    """Remembers the project's Label Studio host and token; answers the model version and how its labels map."""
    return await backend.setup(body, key)


@router.post("/predict", response_model=PredictResponse, response_model_exclude_none=True,
             summary="Pre-annotate tasks (Label Studio ML backend)")
async def predict(body: PredictRequest, key: PreannotateKey, backend: BackendDep) -> PredictResponse:
    """Boxes of the catalogue classes the project's labels map to, in percent of each task's image."""
    return await backend.predict(body, key)
