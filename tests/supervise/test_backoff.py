"""Backoff: the restart delay doubles while a child keeps dying and resets after a healthy run."""

from __future__ import annotations

import pytest

from rsp.supervise.backoff import Backoff


def test_quick_exits_double_up_to_the_maximum() -> None:
    backoff = Backoff(initial=0.5, maximum=4.0, reset_after=10.0)
    delays = [backoff.delay_after_exit(started_at=t, exited_at=t + 1.0) for t in range(7)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0]


def test_a_long_run_resets_the_delay() -> None:
    backoff = Backoff(initial=0.5, maximum=30.0, reset_after=10.0)
    for _ in range(4):
        backoff.delay_after_exit(0.0, 1.0)
    assert backoff.delay_after_exit(100.0, 109.9) == 8.0  # just short of reset_after: still doubling
    assert backoff.delay_after_exit(200.0, 210.0) == 0.5  # ran reset_after seconds: healthy, start over
    assert backoff.delay_after_exit(300.0, 300.1) == 1.0


def test_reset_forgets_the_exits() -> None:
    backoff = Backoff(initial=1.0, maximum=30.0, reset_after=10.0)
    backoff.delay_after_exit(0.0, 0.1)
    backoff.delay_after_exit(0.0, 0.1)
    backoff.reset()
    assert backoff.delay_after_exit(0.0, 0.1) == 1.0


def test_zero_initial_stays_zero_and_bad_bounds_are_refused() -> None:
    backoff = Backoff(initial=0.0, maximum=1.0)
    assert [backoff.delay_after_exit(0.0, 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError):
        Backoff(initial=2.0, maximum=1.0)
