"""`FailedSignIns`: failed sign-ins counted per client address, so that guessing keys is slow.

A failed sign-in is a bearer key or a `POST /v1/session` key that does not authenticate. Past
`limit` failures within `window_seconds` from one address, that address's sign-ins are answered
429 (`TooManySignIns`, with Retry-After) until its oldest failure in the window ages out, whatever
key it sends. The counts live in this process's memory: each service process keeps its own, and a
restart forgets them.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from starlette.requests import HTTPConnection

from hazardvision.errors import TooManySignIns

MAX_ADDRESSES = 100_000
"""Addresses remembered at most; past it the one that failed longest ago is forgotten (bounded memory)."""


class FailedSignIns:
    """Failures per address in a sliding window; thread-safe."""

    def __init__(self, limit: int, window_seconds: float, *, clock: Callable[[], float] = time.monotonic,
                 max_addresses: int = MAX_ADDRESSES) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self.clock = clock
        self.max_addresses = max_addresses
        self._lock = threading.Lock()
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def check(self, address: str) -> None:
        """`TooManySignIns` if `address` failed `limit` times within the window."""
        with self._lock:
            failures = self._recent(address)
            if failures is None or len(failures) < self.limit:
                return
            wait = max(1, math.ceil(failures[0] + self.window_seconds - self.clock()))
        raise TooManySignIns(f"too many failed sign-ins from {address}: at most {self.limit} in "
                             f"{self.window_seconds:g} s; try again in {wait} s", retry_after=wait)

    def failed(self, address: str) -> None:
        """Count a failed sign-in of `address`."""
        with self._lock:
            failures = self._recent(address)
            if failures is None:
                failures = self._failures[address] = deque(maxlen=self.limit)
            failures.append(self.clock())
            self._failures.move_to_end(address)
            while len(self._failures) > self.max_addresses:
                self._failures.popitem(last=False)

    def _recent(self, address: str) -> deque[float] | None:
        """The address's failures within the window (older ones dropped); the lock is held."""
        failures = self._failures.get(address)
        if failures is None:
            return None
        horizon = self.clock() - self.window_seconds
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            del self._failures[address]
            return None
        return failures


def client_address(connection: HTTPConnection, header: str | None) -> str:
    """The client's address: the last entry of `header` (set by a trusted proxy, e.g. X-Forwarded-For) when
    configured and present, else the peer of the connection."""
    if header:
        forwarded = connection.headers.get(header, "")
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            return last[:100]
    return connection.client.host if connection.client else "unknown"
