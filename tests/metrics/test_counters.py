"""The hot-path counters: status classes and the histogram's `le` semantics (pure, no I/O)."""

from __future__ import annotations

import bisect

import pytest

from rsp.metrics.counters import RESPONSE_TIME_BUCKETS, Histogram, StatusCounts


def test_status_classes() -> None:
    counts = StatusCounts()
    for status in (100, 101, 199, 200, 204, 299, 301, 399, 400, 404, 499, 500, 503, 599, 0, 600, 99):
        counts.count(status)
    assert counts.as_dict() == {"1xx": 3, "2xx": 3, "3xx": 2, "4xx": 3, "5xx": 3, "other": 3}


@pytest.mark.parametrize(("seconds", "bucket"), [
    (0.0, 0),
    (0.001, 0),  # le: an observation equal to a bound belongs to that bound's bucket
    (0.0010001, 1),
    (0.0025, 1),
    (0.3, RESPONSE_TIME_BUCKETS.index(0.5)),
    (10.0, len(RESPONSE_TIME_BUCKETS) - 1),
    (10.5, len(RESPONSE_TIME_BUCKETS)),  # +Inf
    (1e9, len(RESPONSE_TIME_BUCKETS)),
])
def test_histogram_bucket_of(seconds: float, bucket: int) -> None:
    hist = Histogram()
    hist.observe(seconds)
    expected = [0] * (len(RESPONSE_TIME_BUCKETS) + 1)
    expected[bucket] = 1
    assert hist.counts == expected
    assert hist.count == 1
    assert hist.total == seconds


def test_histogram_sums() -> None:
    hist = Histogram()
    for seconds in (0.002, 0.004, 0.2):
        hist.observe(seconds)
    assert hist.count == 3
    assert hist.total == pytest.approx(0.206)
    snap = hist.as_dict()
    assert snap["bounds"] == list(RESPONSE_TIME_BUCKETS)
    assert snap["counts"] == hist.counts and sum(hist.counts) == 3


def test_histogram_chain_matches_the_bounds() -> None:
    """observe()'s if-chain repeats RESPONSE_TIME_BUCKETS as literals (speed): every bound is checked here."""
    for i, bound in enumerate(RESPONSE_TIME_BUCKETS):
        for seconds, bucket in ((bound, i), (bound * 1.0001, i + 1), (0.0, 0)):
            hist = Histogram()
            hist.observe(seconds)
            assert hist.counts.index(1) == bucket, (seconds, bucket)
            # Prometheus's rule, le = "less or equal" (bisect_left over the bounds): the same bucket.
            assert bisect.bisect_left(RESPONSE_TIME_BUCKETS, seconds) == bucket, (seconds, bucket)
            assert len(hist.counts) == len(RESPONSE_TIME_BUCKETS) + 1
