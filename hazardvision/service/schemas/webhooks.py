"""Failed webhook deliveries: how they are listed and what a redelivery did."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FailureState = Literal["failed", "refused", "dropped", "delivered"]


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WebhookFailureView(_Schema):
    """A webhook delivery that did not reach its receiver, and what its redeliveries did."""

    failure_id: str = Field(description="Id of the failure, for POST /v1/webhooks/failures/{failure_id}/redeliver.")
    delivery_id: str = Field(description="The X-Hazardvision-Delivery header of every attempt, redeliveries "
                             "included, so a receiver can ignore a delivery it handled already.")
    camera_id: str = Field(description="The camera whose webhook it was.")
    alert_id: str | None = Field(default=None, description="The alert it carried; none for another event.")
    url: str = Field(description="Where it went, without credentials, query or fragment.")
    status: FailureState = Field(
        description="failed: every attempt failed; refused: the host resolved to an address webhooks may not go to; "
        "dropped: the queue was full or the service stopped first; delivered: a redelivery reached the receiver.")
    attempts: int = Field(description="HTTP attempts in all, redeliveries included.")
    http_status: int | None = Field(default=None, description="The last answer's status code; none when no answer "
                                    "came.")
    last_error: str | None = Field(default=None, description="Why the last failed attempt failed.")
    failed_at: dt.datetime = Field(description="When the delivery gave up (UTC).")
    last_attempt_at: dt.datetime = Field(description="When the last attempt was made (UTC).")
    redeliveries: int = Field(description="Redeliveries asked for.")
    delivered_at: dt.datetime | None = Field(default=None, description="When a redelivery reached the receiver (UTC).")
    redelivered_by: str | None = Field(default=None, description="Name of the API key that asked for the last "
                                       "redelivery.")


class WebhookFailureList(_Schema):
    """Failed deliveries, newest first."""

    failures: list[WebhookFailureView] = Field(description="The failures that match the filters (an admin's key "
                                               "sees every camera's; another key those of the cameras it owns).")


class WebhookFailureFilter(_Schema):
    """Which failed deliveries to list."""

    camera: str | None = Field(default=None, max_length=100, description="Only this camera's failures.")
    status: FailureState | None = Field(default=None, description="Only failures in this state (delivered: sent "
                                        "again successfully). Default: all.")
    limit: int = Field(default=100, ge=1, le=1000, description="Most failures to return.")
    offset: int = Field(default=0, ge=0, le=1_000_000_000, description="Failures to skip, for paging.")
