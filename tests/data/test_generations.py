"""`Generations`: counters that every process of one database reads, bumped with the change they announce."""

from __future__ import annotations

import threading

import pytest

from hazardvision.data.database import Database
from hazardvision.data.generations import Generations, Kind
from hazardvision.home import Home


@pytest.fixture
def generations(tmp_path, database_url) -> Generations:
    (tmp_path / "home").mkdir()
    return Generations(Database(database_url, Home.at(tmp_path / "home")))


def test_generations_start_at_zero_and_count_each_bump(generations):
    assert generations.read() == {Kind.MODELS: 0, Kind.CASES: 0, Kind.CAMERAS: 0}
    assert [generations.bump(Kind.CASES) for _ in range(3)] == [1, 2, 3]
    assert generations.read() == {Kind.MODELS: 0, Kind.CASES: 3, Kind.CAMERAS: 0}


def test_generations_bump_commits_with_the_change_it_announces(generations):
    with pytest.raises(RuntimeError), generations.database.session():
        generations.bump(Kind.MODELS)
        raise RuntimeError("the change failed")
    assert generations.read()[Kind.MODELS] == 0


def test_generations_bumps_from_threads_all_count(generations):
    threads = [threading.Thread(target=lambda: [generations.bump(Kind.MODELS) for _ in range(10)]) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert generations.read()[Kind.MODELS] == 40
