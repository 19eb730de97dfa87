"""The app factory: `create_app(settings)` builds one service instance."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from hazardvision import __version__
from hazardvision.service import docs, errors
from hazardvision.service.middleware import VIDEOS_PATH, BodyLimit, Deadline, RequestObserver
from hazardvision.service.routes import (
    cameras,
    cases,
    catalogue,
    deepstack,
    health,
    inspections,
    label_studio,
    models,
    page,
    rectifications,
    reviews,
    roboflow,
    scans,
    session,
    videos,
    webhooks,
)
from hazardvision.service.runtime import Runtime
from hazardvision.service.settings import Settings

BATCH_PATH = "/v1/scans/batch"
DESCRIPTION = """Finds hidden safety hazards in site photos and video frames, and backs every finding with similar
past cases from the sample bank.

Every endpoint except `/healthz` and `/readyz` needs an API key (`/metrics` too, unless `metrics_public`):
`Authorization: Bearer hv_...`; `hazardvision keys create --role inspector --name NAME` makes one.
Errors answer `{"error": ..., "message": ...}`."""


def create_app(settings: Settings | None = None) -> FastAPI:
    """A service instance; the bank, keys and audit log open now, the models load in the background once it starts."""
    settings = settings or Settings()
    runtime = Runtime(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        runtime.start()
        try:
            yield
        finally:
            await runtime.close()

    app = FastAPI(title="hazardvision", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None)  # docs.install serves them without a CDN
    app.state.runtime = runtime
    for router in (session.router, scans.router, reviews.router, inspections.router, rectifications.router,
                   cameras.router, videos.router, models.router, cases.router, catalogue.router, deepstack.router,
                   roboflow.router, label_studio.router, webhooks.router, health.router):
        app.include_router(router)
    errors.install(app)
    docs.install(app)
    page.install(app)

    def limit_for(path: str) -> int:
        single = settings.max_upload_bytes
        if path == VIDEOS_PATH:  # a video streams to disk under its own limit
            return settings.max_video_bytes
        if path == roboflow.INFER_PATH:  # photos in base64, in JSON
            return (single * 4 // 3 + 4096) * settings.max_batch_images
        return single * settings.max_batch_images if path == BATCH_PATH else single

    # The last added runs first: observe everything, then the deadline, then the body limit.
    app.add_middleware(BodyLimit, limit_for=limit_for)
    def deadline_for(path: str) -> float:
        if path == VIDEOS_PATH:
            return settings.video_upload_seconds
        if path.startswith("/v1/models/") and path.endswith("/activate"):
            return settings.activation_timeout_seconds  # the gate scores both versions first
        return settings.request_timeout_seconds

    app.add_middleware(Deadline, seconds=settings.request_timeout_seconds, seconds_for=deadline_for)
    app.add_middleware(RequestObserver, metrics=runtime.metrics)
    return app
