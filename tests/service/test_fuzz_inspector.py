"""The fuzz (tests/service/fuzzing.py) with an inspector's key."""

from __future__ import annotations

import pytest

from hazardvision.access import Role
from tests.service.fuzzing import MODES, fuzz_every_operation, fuzz_server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with fuzz_server(tmp_path_factory) as running:
        yield running


@MODES
def test_fuzz_every_operation_answers_as_documented(server, mode):
    fuzz_every_operation(server, Role.INSPECTOR, mode)
