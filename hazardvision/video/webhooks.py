"""`WebhookSender`: HMAC-signed webhook delivery in background threads, off the frame path.

Every delivery is an HTTP POST of the payload as canonical JSON
(`json.dumps(payload, separators=(",", ":"), sort_keys=True)`) with these headers:

- `X-Hazardvision-Timestamp`: unix seconds when the attempt was made;
- `X-Hazardvision-Signature`: `sha256=` and the hex HMAC-SHA256, keyed with the shared secret,
  of `f"{timestamp}.{body}"`;
- `X-Hazardvision-Delivery`: a uuid that stays the same over retries, so that a receiver can
  ignore a delivery it has already handled.

Deliveries go only where `WebhookTargets` allows (public addresses, and networks an admin allowed):
each attempt resolves the URL's host, checks every address, and connects to a checked one with the
URL's host in the Host header and TLS server name, so a name re-pointed since (DNS rebinding) reaches
nothing internal. Redirects are never followed.

A receiver checks a request with `verify_signature(secret, timestamp, body, signature)` on the
raw body bytes, and should refuse timestamps more than a few minutes old (`tolerance_seconds`)
so that a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import random
import socket
import ssl
import threading
import time
import urllib.parse
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from enum import StrEnum
from heapq import heapify, heappop, heappush
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hazardvision.errors import InvalidWebhook
from hazardvision.video.webhook_targets import Network, Resolver, WebhookTargets, port_of, resolve

TIMESTAMP_HEADER = "X-Hazardvision-Timestamp"
SIGNATURE_HEADER = "X-Hazardvision-Signature"
DELIVERY_HEADER = "X-Hazardvision-Delivery"
_SCHEME = "sha256="

log = logging.getLogger("hazardvision.webhooks")


def canonical_body(payload: dict[str, Any]) -> bytes:
    """The JSON bytes that are sent and signed: compact, keys sorted."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


def sign(secret: str | bytes, timestamp: int | str, body: str | bytes) -> str:
    """The signature header value: `sha256=` and the hex HMAC-SHA256 of `f"{timestamp}.{body}"`."""
    message = _as_bytes(str(timestamp)) + b"." + _as_bytes(body)
    return _SCHEME + hmac.new(_as_bytes(secret), message, hashlib.sha256).hexdigest()


def verify_signature(
    secret: str | bytes,
    timestamp: int | str,
    body: str | bytes,
    signature: str,
    *,
    tolerance_seconds: float | None = None,
    now: float | None = None,
) -> bool:
    """True if `signature` (the `X-Hazardvision-Signature` header) signs this timestamp and body.

    Pass the raw request body, not re-serialised JSON. With `tolerance_seconds`, a timestamp
    further than that from `now` (default: the current time) is refused too, against replays.
    The comparison takes constant time (`hmac.compare_digest`).
    """
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    if tolerance_seconds is not None and abs((time.time() if now is None else now) - sent_at) > tolerance_seconds:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body).encode(), signature.encode())


def _redacted(url: str) -> str:
    """The URL without credentials, query or fragment, which may carry tokens, for outcomes and logs."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class WebhookSettings(BaseModel):
    """How webhooks are queued and retried."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = Field(default=5, ge=1, description="Attempts per delivery, the first included.")
    base_delay_seconds: float = Field(default=0.5, ge=0, description="Wait before the first retry; doubles after.")
    max_delay_seconds: float = Field(default=30.0, ge=0, description="Longest wait between two attempts.")
    timeout_seconds: float = Field(default=5.0, gt=0, description="Time limit of one HTTP request.")
    queue_size: int = Field(
        default=1000, ge=1, description="Deliveries waiting at most; when full, the oldest is dropped."
    )
    workers: int = Field(default=2, ge=1, le=32, description="Threads that send deliveries in parallel.")
    history: int = Field(default=100, ge=0, description="Finished deliveries kept for `recent()`.")
    allowed_networks: list[Network] = Field(
        default_factory=list, max_length=256,
        description="Networks (CIDR) webhooks may go to besides public addresses, e.g. [\"10.20.0.0/16\"]: "
        "loopback, private, link-local (169.254.169.254, the metadata service), multicast and reserved addresses "
        "are refused, at configuration and at each delivery, unless they lie in one of these.")


class DeliveryStatus(StrEnum):
    DELIVERED = "delivered"
    FAILED = "failed"
    DROPPED = "dropped"
    REFUSED = "refused"
    """The URL's host resolved to an address webhooks may not go to: nothing was sent."""


@dataclass(frozen=True)
class DeliveryOutcome:
    """How one delivery ended."""

    delivery_id: str
    url: str
    """The target without credentials, query or fragment."""
    status: DeliveryStatus
    attempts: int
    http_status: int | None
    """The last response's status code; None when no response came (or the delivery was dropped)."""
    error: str | None
    finished_at: float
    """Unix time."""


FailureListener = Callable[[DeliveryOutcome, bytes], None]
"""Told of a delivery that ended without reaching its receiver (failed, refused or dropped), with the body it
carried; called on a sender thread, never with the sender's lock held."""


@dataclass(frozen=True)
class WebhookStats:
    """Counters since the sender started, for metrics."""

    delivered: int
    failed: int
    dropped: int
    refused: int
    retries: int
    pending: int


@dataclass
class _Delivery:
    delivery_id: str
    url: str
    secret: bytes
    body: bytes
    sequence: int
    attempts: int = 0
    on_failure: FailureListener | None = None


@dataclass(frozen=True)
class _Attempt:
    http_status: int | None
    error: str | None
    retry_after: float | None = None
    refused: bool = False

    @property
    def delivered(self) -> bool:
        return self.http_status is not None and 200 <= self.http_status < 300

    @property
    def retryable(self) -> bool:
        """Connection errors, timeouts, 429 and 5xx may pass; other answers will not change."""
        if self.refused:
            return False
        return self.http_status is None or self.http_status == 429 or self.http_status >= 500


class _PinnedHTTP(http.client.HTTPConnection):
    """HTTP to an address checked beforehand; the Host header stays the URL's host."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to an address checked beforehand; SNI and the certificate check use the URL's host."""

    def __init__(self, host: str, port: int, address: str, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self.address = address
        self.tls = context

    def connect(self) -> None:
        raw = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self.tls.wrap_socket(raw, server_hostname=self.host)


def _retry_after(headers: Message | None) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


class WebhookSender:
    """Sends signed webhooks from background threads; `submit` never waits for the network.

    Deliveries wait in a bounded queue; when it is full, the oldest waiting delivery is dropped
    and counted. Failed attempts (connection errors, timeouts, 429, 5xx) are retried with
    exponential backoff and jitter; other 4xx answers and redirects fail at once. Call `close`
    at shutdown to give waiting deliveries a chance to finish.
    """

    def __init__(self, settings: WebhookSettings | None = None, *, resolver: Resolver = resolve,
                 tls: ssl.SSLContext | None = None) -> None:
        """`resolver` and `tls` (the certificates trusted for https receivers; default: the system's) are there
        for tests and private certificate authorities."""
        self.settings = settings or WebhookSettings()
        self.targets = WebhookTargets(self.settings.allowed_networks, resolver)
        self._tls = tls or ssl.create_default_context()
        self._random = random.Random()
        self._condition = threading.Condition()
        self._fresh: deque[_Delivery] = deque()
        self._retrying: list[tuple[float, int, _Delivery]] = []  # heap by due time (monotonic)
        self._in_flight = 0
        self._sequence = 0
        self._closing = False
        self._stopped = False
        self._counts = dict.fromkeys(("delivered", "failed", "dropped", "refused", "retries"), 0)
        self._recent: deque[DeliveryOutcome] = deque(maxlen=self.settings.history)
        self._threads = [
            threading.Thread(target=self._work, name=f"hazardvision-webhook-{i}", daemon=True)
            for i in range(self.settings.workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, url: str, secret: str | bytes, payload: dict[str, Any], *,
               on_failure: FailureListener | None = None) -> str:
        """Queue a delivery of `payload` to `url` and return its delivery id at once; `on_failure` hears of it if it
        ends without reaching the receiver.

        Raises `InvalidWebhook` for a URL that is not http or https, carries credentials or names an
        address webhooks may not go to, or an empty secret, and `TypeError` for a payload that JSON
        cannot encode. A host name is resolved and checked at each attempt, not here.
        """
        self.targets.check_url(url)
        if not secret:
            raise InvalidWebhook("a webhook needs a non-empty secret to sign its deliveries")
        body = canonical_body(payload)  # now, so that later changes to the payload are not sent
        with self._condition:
            if self._closing:
                raise RuntimeError("the webhook sender is closed")
            self._sequence += 1
            delivery = _Delivery(uuid.uuid4().hex, url, _as_bytes(secret), body, self._sequence,
                                 on_failure=on_failure)
            dropped = (self._drop_oldest() if len(self._fresh) + len(self._retrying) >= self.settings.queue_size
                       else None)
            self._fresh.append(delivery)
            self._condition.notify()
        if dropped is not None:
            _tell(*dropped)
        return delivery.delivery_id

    def send_now(self, url: str, secret: str | bytes, body: bytes, delivery_id: str) -> DeliveryOutcome:
        """One signed attempt to deliver `body` again, waiting for the answer (a redelivery of a failed delivery,
        under its delivery id); the same checks of `url` and its addresses as a first delivery."""
        self.targets.check_url(url)
        if not secret:
            raise InvalidWebhook("a webhook needs a non-empty secret to sign its deliveries")
        delivery = _Delivery(delivery_id, url, _as_bytes(secret), body, 0, attempts=1)
        try:
            attempt = self._attempt(delivery)
        except Exception as error:  # as in a worker: the caller gets an outcome, not a crash
            attempt = _Attempt(None, f"{type(error).__name__}: {error}")
        status = (DeliveryStatus.DELIVERED if attempt.delivered
                  else DeliveryStatus.REFUSED if attempt.refused else DeliveryStatus.FAILED)
        with self._condition:
            return self._finish(delivery, status, attempt)

    def stats(self) -> WebhookStats:
        """Delivered, failed, dropped and retry counts, and the deliveries not finished yet."""
        with self._condition:
            pending = len(self._fresh) + len(self._retrying) + self._in_flight
            return WebhookStats(**self._counts, pending=pending)

    def recent(self) -> list[DeliveryOutcome]:
        """The last finished deliveries (`settings.history` at most), oldest first."""
        with self._condition:
            return list(self._recent)

    def close(self, timeout: float = 10.0) -> int:
        """Stop taking deliveries, wait up to `timeout` seconds for those queued; returns how many were dropped."""
        deadline = time.monotonic() + timeout
        with self._condition:
            self._closing = True
            while self._fresh or self._retrying or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._condition.wait(remaining)
            abandoned = [*self._fresh, *(entry[2] for entry in self._retrying)]
            self._fresh.clear()
            self._retrying.clear()
            closed = _Attempt(None, "the sender closed first")
            told = [(delivery, self._finish(delivery, DeliveryStatus.DROPPED, closed)) for delivery in abandoned]
            self._stopped = True
            self._condition.notify_all()
        for delivery, outcome in told:
            _tell(delivery, outcome)
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
        return len(abandoned)

    def __enter__(self) -> WebhookSender:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _drop_oldest(self) -> tuple[_Delivery, DeliveryOutcome]:
        """Drop the oldest waiting delivery; the lock is held.

        Deliveries waiting for a retry left the FIFO queue before any still in it, so they are
        the oldest when there are any.
        """
        if self._retrying:
            oldest = min(range(len(self._retrying)), key=lambda i: self._retrying[i][1])
            victim = self._retrying.pop(oldest)[2]
            heapify(self._retrying)
        else:
            victim = self._fresh.popleft()
        return victim, self._finish(victim, DeliveryStatus.DROPPED, _Attempt(None, "the queue was full"))

    def _finish(self, delivery: _Delivery, status: DeliveryStatus, attempt: _Attempt) -> DeliveryOutcome:
        """Count and remember a finished delivery; the lock is held."""
        self._counts[status.value] += 1
        outcome = DeliveryOutcome(delivery.delivery_id, _redacted(delivery.url), status, delivery.attempts,
                                  attempt.http_status, attempt.error, time.time())
        self._recent.append(outcome)
        self._condition.notify_all()
        return outcome

    def _next(self) -> _Delivery | None:
        """Wait for a delivery that is due (retries first); None when the sender stops."""
        with self._condition:
            while not self._stopped:
                now = time.monotonic()
                if self._retrying and self._retrying[0][0] <= now:
                    delivery = heappop(self._retrying)[2]
                elif self._fresh:
                    delivery = self._fresh.popleft()
                else:
                    self._condition.wait(self._retrying[0][0] - now if self._retrying else None)
                    continue
                self._in_flight += 1
                return delivery
            return None

    def _work(self) -> None:
        while (delivery := self._next()) is not None:
            delivery.attempts += 1
            try:
                attempt = self._attempt(delivery)
            except Exception as error:  # a worker must outlive any one delivery's failure
                attempt = _Attempt(None, f"{type(error).__name__}: {error}")
            outcome = None
            with self._condition:
                self._in_flight -= 1
                if attempt.delivered:
                    self._finish(delivery, DeliveryStatus.DELIVERED, attempt)
                elif attempt.refused:
                    outcome = self._finish(delivery, DeliveryStatus.REFUSED, attempt)
                elif attempt.retryable and delivery.attempts < self.settings.max_attempts and not self._stopped:
                    self._counts["retries"] += 1
                    due = time.monotonic() + self._backoff(delivery.attempts, attempt.retry_after)
                    heappush(self._retrying, (due, delivery.sequence, delivery))
                    self._condition.notify_all()
                else:
                    outcome = self._finish(delivery, DeliveryStatus.FAILED, attempt)
            if outcome is not None:
                _tell(delivery, outcome)

    def _backoff(self, attempts: int, retry_after: float | None) -> float:
        """Seconds before the next attempt: doubling, capped, with jitter so that retries spread out."""
        settings = self.settings
        delay = min(settings.max_delay_seconds, settings.base_delay_seconds * 2.0 ** min(attempts - 1, 60))
        # "Equal jitter": at least half the delay, so a struggling receiver gets a real pause.
        jittered = delay / 2 + self._random.uniform(0, delay / 2)
        if retry_after is not None:
            jittered = max(jittered, min(retry_after, settings.max_delay_seconds))
        return jittered

    def _attempt(self, delivery: _Delivery) -> _Attempt:
        """One HTTP POST to a checked address; signed afresh, so that a retry carries a current timestamp."""
        parts = urllib.parse.urlsplit(delivery.url)
        host, port = parts.hostname or "", port_of(parts)
        try:
            addresses = self.targets.addresses(host, port)
        except InvalidWebhook as error:
            return _Attempt(None, str(error), refused=True)
        except OSError as error:
            return _Attempt(None, f"cannot resolve {host}: {error}")
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(delivery.secret, timestamp, delivery.body),
            DELIVERY_HEADER: delivery.delivery_id,
            "User-Agent": "hazardvision-webhooks",
        }
        target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
        timeout = self.settings.timeout_seconds
        connection = (_PinnedHTTPS(host, port, addresses[0], timeout, self._tls) if parts.scheme == "https"
                      else _PinnedHTTP(host, port, addresses[0], timeout))
        try:
            connection.request("POST", target, body=delivery.body, headers=headers)
            response = connection.getresponse()
            status = int(response.status)
            if 200 <= status < 300:
                return _Attempt(status, None)
            if 300 <= status < 400:  # never followed: it would drop the body or resend it elsewhere
                return _Attempt(status, f"HTTP {status} {response.reason}: redirects are not followed")
            return _Attempt(status, f"HTTP {status} {response.reason}", _retry_after(response.headers))
        except (OSError, http.client.HTTPException) as error:
            return _Attempt(None, f"cannot reach the receiver: {type(error).__name__}: {error}")
        finally:
            connection.close()


def _tell(delivery: _Delivery, outcome: DeliveryOutcome) -> None:
    """Tell the delivery's listener how it failed; a listener's error is logged, never a worker's end."""
    if delivery.on_failure is None:
        return
    try:
        delivery.on_failure(outcome, delivery.body)
    except Exception as error:  # the failure is lost, but the sender goes on
        log.warning("failed delivery %s was not recorded: %s: %s", delivery.delivery_id, type(error).__name__, error)
