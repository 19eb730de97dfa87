"""`IndexSync`: reviews ask for an index sync and return; a burst of requests costs a sync or two."""

from __future__ import annotations

import threading
import time

from hazardvision.service.index_sync import IndexSync


def test_index_sync_folds_a_burst_of_requests_into_few_syncs():
    started = threading.Event()
    release = threading.Event()
    runs = []

    def sync() -> None:
        runs.append(time.monotonic())
        started.set()
        release.wait(10)

    syncer = IndexSync(sync)
    syncer.request()
    assert started.wait(10)  # the first sync runs ...
    for _ in range(20):
        syncer.request()  # ... and every request meanwhile returns at once, folded into one more sync
    release.set()
    syncer.close()
    assert len(runs) == 2 and syncer.syncs == 2


def test_index_sync_that_fails_is_logged_and_the_next_request_runs_again(caplog):
    calls = []

    def sync() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("disk full")

    syncer = IndexSync(sync)
    syncer.request()
    deadline = time.monotonic() + 10
    while syncer.syncs < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    syncer.request()
    syncer.close()
    assert len(calls) == 2
    assert "not synced after a review: OSError: disk full" in caplog.text
