"""/v1/webhooks/failures: webhook deliveries that did not reach their receiver, listed and sent again."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from hazardvision.service.deps import FramesKey, RuntimeDep
from hazardvision.service.schemas.common import responses
from hazardvision.service.schemas.webhooks import WebhookFailureFilter, WebhookFailureList, WebhookFailureView

router = APIRouter(tags=["cameras"], responses=responses())

FailureId = Annotated[str, Path(min_length=1, max_length=64, description="Failure id, from GET "
                                                                        "/v1/webhooks/failures.")]


@router.get("/v1/webhooks/failures", response_model=WebhookFailureList, summary="List failed webhook deliveries")
async def list_failures(runtime: RuntimeDep, key: FramesKey,
                        query: Annotated[WebhookFailureFilter, Query()]) -> WebhookFailureList:
    """Newest first: deliveries that failed every attempt, were refused (an address webhooks may not go to) or
    dropped (a full queue, a shutdown). An admin's key sees every camera's; another key those of the cameras it
    owns."""
    return WebhookFailureList(failures=await runtime.offload(runtime.webhook_failures.failures, key, query))


@router.post("/v1/webhooks/failures/{failure_id}/redeliver", response_model=WebhookFailureView,
             responses=responses(404, 409), summary="Send a failed webhook delivery again")
async def redeliver(failure_id: FailureId, runtime: RuntimeDep, key: FramesKey) -> WebhookFailureView:
    """One attempt, now, to the camera's current webhook URL, signed with its current secret as a first delivery
    is and under the same X-Hazardvision-Delivery id, through the same address checks; the failure is marked
    delivered or records the new error (audited either way). Delivered already, or a camera without a webhook
    now: 409. A failure of a camera the key does not own (unless an admin's): 404."""
    return await runtime.offload(runtime.webhook_failures.redeliver, failure_id, key)
