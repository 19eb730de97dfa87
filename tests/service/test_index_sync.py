"""`IndexSync`: reviews ask for an index sync and return; a burst of requests costs a sync or two; an index
rebuilt by another process is read on the sync's thread while searches go on with the old one."""

from __future__ import annotations

import threading
import time

from hazardvision.service.index_sync import IndexSync
from hazardvision.similar.case_index import CaseIndex
from hazardvision.similar.maintenance import sync_indexes
from tests.conftest import pack_for
from tests.similar.conftest import copy_labelled, indexed_bank


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


def test_index_rebuilt_by_another_process_is_read_on_the_sync_thread_and_searches_keep_the_old_one(
    tmp_path, datasets
):
    pack = pack_for("no_helmet")
    bank = indexed_bank(tmp_path / "home", copy_labelled(tmp_path / "photos", "ppe-vest", "train", 3), [pack])
    busy, release = threading.Event(), threading.Event()

    def sync(_cases: set[int] | None) -> None:
        busy.set()
        release.wait(10)

    syncer = IndexSync(sync)
    served = CaseIndex(bank.home, pack, on_replaced=syncer.reload)  # as the service's search holds it
    old, epoch = served["instances"], served.epoch
    syncer.request()
    assert busy.wait(10)  # the sync thread is busy: the reload waits its turn there
    sync_indexes(bank, [pack], rebuild=True)  # another process (`bank reindex --rebuild`) replaces the base
    for _ in range(3):
        served.refresh()  # what each search does first: it notices, asks, and goes on
    assert served["instances"] is old and served.epoch == epoch
    release.set()
    syncer.close()
    assert syncer.reloads == 1  # asked three times, read once
    assert served.epoch != epoch and served["instances"] is not old
    assert served["instances"].ids() == old.ids()
    served.refresh()
    assert syncer.reloads == 1  # nothing new since
