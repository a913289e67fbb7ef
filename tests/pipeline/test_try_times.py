"""rsp.pipeline.try_times on given clock readings: nginx's per-try upstream times and their text."""

from __future__ import annotations

import pytest

from rsp.pipeline.try_times import NOT_REACHED, TryTimes, TryTiming, nginx_times


def test_a_refused_try_then_a_good_one() -> None:
    times = TryTimes()
    times.begin(10.0)
    times.begin(10.25)  # the first try failed before connecting: it ended here
    times.connected(10.2505)
    times.header(10.3)
    times.end(10.5)
    times.end(11.0)  # a second end changes nothing
    durations = times.durations(99.0)
    assert durations[0] == (NOT_REACHED, NOT_REACHED, 0.25)
    assert durations[1] == pytest.approx((0.0005, 0.05, 0.25))
    assert nginx_times(durations, 0) == b"-, 0.001"  # nginx rounds to milliseconds too
    assert nginx_times(durations, 1) == b"-, 0.050"
    assert nginx_times(durations, 2) == b"0.250, 0.250"


def test_no_try_has_no_value_and_an_open_try_counts_to_now() -> None:
    assert nginx_times(TryTimes().durations(5.0), 2) is None
    times = TryTimes()
    times.begin(1.0)
    assert nginx_times(times.durations(1.0126), 2) == b"0.013"  # header_filter before the end: so far


def test_a_try_timing_gives_each_try_the_timeouts_set_for_it_and_none_to_the_next() -> None:
    timing = TryTiming(timed=False)
    timing.timeouts = (0.5, 1.0, 2.0)
    assert timing.begin(10.0) == (0.5, 2.0)
    timing.next_try()
    assert timing.begin(11.0) == (0.0, 0.0)  # 0: the pool's own
    assert timing.durations(12.0) == ()  # not timed: nothing kept


def test_a_timed_try_timing_keeps_each_tries_steps() -> None:
    timing = TryTiming(timed=True)
    assert timing.durations(1.0) == ()
    timing.begin(10.0)
    timing.begin(11.0)  # the first try failed: it ended here
    timing.connected(11.25)
    timing.header(11.5)
    timing.end(12.0)
    assert timing.durations(13.0) == ((NOT_REACHED, NOT_REACHED, 1.0), (0.25, 0.5, 1.0))
