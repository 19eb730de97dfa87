"""`IndexSync`: the similar-case index follows reviews in the background, off their requests.

A review answers as soon as its verdict is committed; bringing the indexes in step with the bank
(embedding the reviewed photo, writing the index file, serving with it) runs on one background
thread. A request names the cases that changed, and the sync embeds and appends only their vectors
(one small delta file, see `similar.index_files`); requests made while a sync runs are folded into
one more sync after it, so a burst of reviews costs a sync or two, not one each. A request without
cases (and the sync after a failed one) compares the whole bank with the index; the service asks
for one when its models are loaded. The bank stays the source of truth: a sync that fails (or a
process killed before it ran) leaves a difference that the next such sync, `bank verify` and
`bank reindex` find and repair.

The same thread reads an index again when another process replaced its base file (`bank reindex
--rebuild`): reading 100,000 vectors takes seconds, so the scan that notices the new file asks for
a `reload` and goes on with the index it has; the reload swaps the new one in when it is read.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

log = logging.getLogger("hazardvision.service")


class Reloadable(Protocol):
    """An index that reads what changed in its files, and swaps a replaced base in at once (`CaseIndex`)."""

    def catch_up(self) -> None: ...


class IndexSync:
    def __init__(self, sync: Callable[[set[int] | None], object]) -> None:
        """`sync` is called with the ids of the cases that changed, or None for all of them."""
        self._sync = sync
        self._lock = threading.Lock()
        self._pending = False
        self._cases: set[int] | None = set()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="hazardvision-index")
        self._reloading: set[Reloadable] = set()
        self.syncs = 0
        """Syncs run so far (for tests and metrics)."""
        self.reloads = 0
        """Indexes read again so far."""

    def request(self, case_ids: Iterable[int] | None = None) -> None:
        """Ask for a sync of these cases (None: of the whole bank) soon; returns at once."""
        with self._lock:
            if case_ids is None:
                self._cases = None
            elif self._cases is not None:
                self._cases.update(case_ids)
            if self._pending:
                return  # one is queued already and will see this change too
            self._pending = True
        try:
            self._executor.submit(self._run)
        except RuntimeError:  # shutting down: the next start's sync, or `bank reindex`, catches up
            log.warning("similar-case index sync not queued: the service is stopping")

    def reload(self, index: Reloadable) -> None:
        """Ask for `index` to be read again soon, on the sync's thread; returns at once (a search calls it). Asked
        again before it ran, it runs once."""
        with self._lock:
            if index in self._reloading:
                return
            self._reloading.add(index)
        try:
            self._executor.submit(self._reload, index)
        except RuntimeError:  # shutting down: nothing will search it any more
            with self._lock:
                self._reloading.discard(index)

    def _reload(self, index: Reloadable) -> None:
        try:
            index.catch_up()  # nothing to read when a sync on this thread caught up meanwhile
        except Exception as error:  # a background thread: say what failed; the next search that notices asks again
            log.warning("similar-case index not read again after another process replaced it: %s: %s",
                        type(error).__name__, error)
        finally:
            with self._lock:
                self._reloading.discard(index)
            self.reloads += 1

    def _run(self) -> None:
        with self._lock:
            self._pending = False
            cases, self._cases = self._cases, set()
        try:
            self._sync(cases)
        except Exception as error:  # a background thread: say what failed, and keep serving
            with self._lock:
                self._cases = None  # the next sync compares the whole bank, and so repairs this one's cases
            log.warning("similar-case index not synced after a review: %s: %s; `hazardvision bank reindex` "
                        "repairs it", type(error).__name__, error)
        finally:
            self.syncs += 1

    def close(self) -> None:
        """Finish the queued sync, then stop."""
        self._executor.shutdown(wait=True)
