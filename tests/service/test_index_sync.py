"""`IndexSync`: reviews ask for an index sync and return; a burst of requests costs a sync or two."""

from __future__ import annotations

import threading
import time

from hazardvision.service.index_sync import IndexSync


def test_index_sync_folds_a_burst_of_requests_into_few_syncs():
    started = threading.Event()
    release = threading.Event()
    runs = []

    def sync(_cases: set[int] | None) -> None:
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

    def sync(_cases: set[int] | None) -> None:
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


def test_index_sync_is_given_the_changed_cases_and_after_a_failure_the_whole_bank():
    seen: list[set[int] | None] = []

    def sync(cases: set[int] | None) -> None:
        seen.append(cases)
        if len(seen) == 1:
            raise OSError("disk full")

    syncer = IndexSync(sync)
    for cases, runs in (([3], 1), ([4, 5], 2), ([6], 3)):
        syncer.request(cases)
        deadline = time.monotonic() + 10
        while syncer.syncs < runs and time.monotonic() < deadline:
            time.sleep(0.01)
    syncer.close()
    assert seen == [{3}, None, {6}]  # the failed sync's cases are repaired by a sync of everything
