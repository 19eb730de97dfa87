"""ASGI middleware: request log and metrics, the request deadline, and the body size limit.

Plain ASGI rather than Starlette's BaseHTTPMiddleware, so that bodies stream through untouched
and a limit can answer before the body has arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hazardvision.data.database import COMMIT_CHECK
from hazardvision.errors import HazardVisionError, ImageTooLarge, RequestTimeout, UploadTimeout
from hazardvision.service.errors import answer, status_of
from hazardvision.service.metrics import ServiceMetrics

access_log = logging.getLogger("hazardvision.service.access")
VIDEOS_PATH = "/v1/videos"
"""Where videos are uploaded: their bodies have their own limit and deadline."""


async def send_error(send: Send, error: HazardVisionError, path: str = "") -> None:
    """Answer with a domain error's status and JSON body (in the dialect of `path`), from outside the app."""
    status, payload = answer(path, status_of(error), type(error).__name__, str(error))
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class RequestObserver:
    """One JSON log line and the metrics of every request: method, path, route, status, ms, key name."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            seconds = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.request(scope["method"], route, status, seconds)
            state = scope.get("state") or {}
            access_log.info("request", extra={
                "method": scope["method"], "path": scope["path"], "route": route, "status": status,
                "ms": round(seconds * 1000, 1), "key": state.get("key_name"),
            })


class WorkDeadline:
    """Whether a request's work may still commit: before its deadline, or once its answer has started.

    Its worker threads call `claim` before they commit (`COMMIT_CHECK`); at the deadline the event loop calls
    `expire`. Whichever comes first wins, under one lock: a request answered 503 committed nothing, and one
    whose work committed in time gets its own answer.
    """

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._state = "open"  # then "committed", "answered" or "expired"

    def claim(self, action: bool) -> None:
        """Called before a commit: `RequestTimeout` (which rolls it back) once the deadline has passed. The commit
        of an audited `action` is the request's work: from then on the request gets its own answer."""
        with self._lock:
            if self._state == "open" and time.monotonic() > self.at:
                self._state = "expired"
            if self._state == "expired":
                raise RequestTimeout("the request's deadline passed before its work could be kept; nothing was "
                                     "stored, retry later")
            if self._state == "open" and action:
                self._state = "committed"

    def expire(self) -> bool:
        """At the deadline: True when nothing committed (the request is answered 408 or 503)."""
        with self._lock:
            if self._state == "open":
                self._state = "expired"
            return self._state == "expired"

    def answered(self) -> None:
        """The answer has started: what still commits (a streamed body's work) commits."""
        with self._lock:
            if self._state == "open":
                self._state = "answered"


class Deadline:
    """A request not answered within `seconds` gets 408 (body still arriving) or 503 (still working), and its
    work does not commit (`WorkDeadline`).

    A response that has started is left to finish: its status line is already sent; so is a request whose work
    committed before the deadline. `seconds_for(path)`, when given, sets a path's own deadline (a video upload
    may take longer than a photo).
    """

    def __init__(self, app: ASGIApp, seconds: float, seconds_for: Callable[[str], float] | None = None) -> None:
        self.app = app
        self.seconds = seconds
        self.seconds_for = seconds_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        body_done = scope["method"] in ("GET", "HEAD", "DELETE", "OPTIONS")
        seconds = self.seconds_for(scope["path"]) if self.seconds_for is not None else self.seconds
        deadline = WorkDeadline(seconds)

        async def receiving() -> Message:
            nonlocal body_done
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                body_done = True
            return message

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                deadline.answered()
            await send(message)

        token = COMMIT_CHECK.set(deadline.claim)
        try:  # the task copies the context: its threads (anyio's copy it too) check this request's deadline
            work = asyncio.ensure_future(self.app(scope, receiving, sending))
        finally:
            COMMIT_CHECK.reset(token)
        try:
            done, _ = await asyncio.wait({work}, timeout=seconds)
            if work in done:
                work.result()
                return
            if started or not deadline.expire():
                await work
                return
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
        finally:
            if not work.done():  # this request itself was cancelled (the server stopping)
                work.cancel()
        error: HazardVisionError = (
            RequestTimeout(f"no answer within {seconds:g} s; the service is busy, retry later")
            if body_done else UploadTimeout(f"the request body did not arrive within {seconds:g} s"))
        await send_error(send, error, scope["path"])


class BodyLimit:
    """Refuses bodies over the limit with 413: at once from Content-Length, else as soon as the count passes it.

    `limit_for(path)` gives the limit of a path (a batch of photos may be larger than one photo).
    """

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        advice = ("send a smaller video (HAZARDVISION_MAX_VIDEO_BYTES sets the limit)" if scope["path"] == VIDEOS_PATH
                  else "send a smaller photo (or fewer photos per batch)")
        too_large = ImageTooLarge(f"the request body exceeds the limit of {limit} bytes; {advice}")
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await send_error(send, too_large, scope["path"])
            return
        received = 0
        refused = False

        async def counting() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit and not refused:
                    refused = True
                    await send_error(send, too_large, scope["path"])
                    return {"type": "http.disconnect"}  # the app stops reading; its own answer is dropped below
            return message

        async def sending(message: Message) -> None:
            if not refused:
                await send(message)

        try:
            await self.app(scope, counting, sending)
        except ClientDisconnect:
            if not refused:
                raise
