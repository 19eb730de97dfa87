"""How the service holds connections: slow and idle clients are cut, and past a limit new ones get 503.

uvicorn's HTTP protocol (h11) waits for a request's headers for ever and keeps every connection it
accepts; `GuardedH11Protocol` adds a deadline for the headers (from the connection's opening, or
from the first byte after a response), a limit on silence while a body arrives, and a ceiling on
open connections, past which a new connection is answered 503 and closed at once (so that a
thousand half-open connections cannot use up the process's file descriptors).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from hazardvision.service.errors import error_body
from hazardvision.service.settings import Settings


def _raw_answer(status: int, reason: str, kind: str, message: str, retry_after: int | None = None) -> bytes:
    body = json.dumps(error_body(kind, message)).encode()
    headers = [f"HTTP/1.1 {status} {reason}", "content-type: application/json", f"content-length: {len(body)}",
               "connection: close"]
    if retry_after is not None:
        headers.append(f"retry-after: {retry_after}")
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


TOO_MANY = _raw_answer(503, "Service Unavailable", "TooManyConnections", "the service has as many connections open "
                       "as it takes (setting max_connections); retry shortly", retry_after=1)
TIMED_OUT = _raw_answer(408, "Request Timeout", "RequestTimeout", "the request did not arrive in time (setting "
                        "client_timeout_seconds); send it whole, without pauses")


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header deadline, a body silence limit and a connection ceiling."""

    client_timeout: float = 15.0
    max_connections: int = 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            transport.write(TOO_MANY)
            transport.close()
            return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        waiting = self.conn.their_state is h11.IDLE
        super().data_received(data)
        if self.conn.their_state is h11.SEND_BODY:
            self._arm()  # a body may take long, but not go silent for long
        elif self.conn.their_state is h11.IDLE:
            if not waiting or self._deadline is None:
                self._arm()  # the deadline of the next request's headers runs from its first byte
        else:
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._disarm()  # now the keep-alive timeout counts, until the next request's first byte

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.client_timeout, self._timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self) -> None:
        self._deadline = None
        state = self.conn.their_state
        if self.transport.is_closing() or state not in (h11.IDLE, h11.SEND_BODY):
            return
        if state is h11.SEND_BODY and self.flow.read_paused:
            self._arm()  # the service is not reading the body: the client is not the one that is slow
            return
        started = state is h11.SEND_BODY or bool(self.conn.trailing_data[0])
        if started and (self.cycle is None or not self.cycle.response_started):
            self.transport.write(TIMED_OUT)
        self.transport.close()  # connection_lost tells a request in progress that its client went away


def guarded_protocol(settings: Settings) -> type[GuardedH11Protocol]:
    """The protocol class with this service's limits."""
    return type("ServiceH11Protocol", (GuardedH11Protocol,), {
        "client_timeout": settings.client_timeout_seconds, "max_connections": settings.max_connections})


def server_config(app: Any, settings: Settings, *, host: str, port: int, **options: Any) -> uvicorn.Config:
    """uvicorn's configuration for this service: its connection limits and timeouts (`options` add to them)."""
    return uvicorn.Config(
        app, host=host, port=port, http=guarded_protocol(settings), timeout_keep_alive=settings.keep_alive_seconds,
        h11_max_incomplete_event_size=settings.max_header_bytes, limit_concurrency=settings.max_connections + 1,
        **options)
