"""Liveness, readiness and metrics: no API key needed, except for /metrics (unless `metrics_public`)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from hazardvision.service.deps import RuntimeDep, address_of
from hazardvision.service.metrics import CONTENT_TYPE
from hazardvision.service.schemas.common import ErrorBody
from hazardvision.service.schemas.health import Health, Readiness

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health, response_model_exclude_none=True, summary="Liveness")
async def healthz(runtime: RuntimeDep) -> Health:
    """The process answers; `down` names the packs that failed to load."""
    return Health(status="ok", down=runtime.host.down or None)


@router.get("/readyz", response_model=Readiness, summary="Readiness",
            responses={503: {"model": Readiness, "description": "Models not loaded (yet)."}})
async def readyz(runtime: RuntimeDep) -> Response:
    """200 once the models are loaded (some may be `down`: they failed to load, the others serve), 503 before, or
    when none could be loaded (see `message` and `down`)."""
    host = runtime.host
    if not host.ready:
        body = Readiness(ready=False, models={}, similar_cases=False,
                         message=host.load_error or "loading the models", down=host.down)
        return JSONResponse(body.model_dump(), 503, headers={"Retry-After": "2"})
    state = host.current
    message = ("not serving: " + "; ".join(f"{k} ({v})" for k, v in state.down.items())) if state.down else None
    return JSONResponse(Readiness(ready=True, models=state.versions, similar_cases=state.search is not None,
                                  message=message, down=state.down).model_dump())


@router.get("/metrics", response_class=Response, summary="Prometheus metrics",
            responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Text exposition format."},
                       401: {"model": ErrorBody, "description": "A key is required (unless metrics_public)."},
                       429: {"model": ErrorBody, "description": "Too many failed keys from this address."}})
async def metrics(request: Request, runtime: RuntimeDep) -> Response:
    """Requests by route and status, latency, findings per hazard, alerts, batch sizes, model versions in use,
    webhook deliveries by outcome (never by target). Needs any valid key unless metrics_public."""
    if not runtime.settings.metrics_public:
        header = request.headers.get("authorization", "")
        await runtime.authenticate(header[7:] if header.lower().startswith("bearer ") else None,
                                   address_of(request, runtime))
    return Response(runtime.metrics.exposition(), media_type=CONTENT_TYPE)
