"""`WorkDeadline`: a request's commit and its deadline, whichever comes first, under one lock."""

from __future__ import annotations

import pytest

from hazardvision.errors import RequestTimeout
from hazardvision.service.middleware import WorkDeadline


def test_work_deadline_action_committed_in_time_keeps_its_answer():
    deadline = WorkDeadline(60)
    deadline.claim(True)
    assert deadline.expire() is False  # the middleware waits for the request's own answer


def test_work_deadline_plain_write_does_not_hold_off_the_deadline():
    deadline = WorkDeadline(60)
    deadline.claim(False)  # e.g. a key's last-used time
    assert deadline.expire() is True
    with pytest.raises(RequestTimeout, match="nothing was stored"):
        deadline.claim(True)


def test_work_deadline_passed_refuses_the_commit_before_the_loop_notices():
    deadline = WorkDeadline(-1)
    with pytest.raises(RequestTimeout):
        deadline.claim(True)
    assert deadline.expire() is True


def test_work_deadline_answer_started_lets_later_work_commit():
    deadline = WorkDeadline(-1)
    deadline.answered()
    deadline.claim(True)
