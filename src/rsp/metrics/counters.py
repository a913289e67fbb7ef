"""Per-process counters, kept as plain ints and floats in slotted objects created once.

These sit on the hot path (compiled with mypyc, see native_modules.txt): a request adds to fields of an
object it already holds (its backend record's `stats`, its pool's, its listener's), so counting costs a few
native field updates, with no lock (one event loop per process), no dict lookup by label and no allocation.
Reading them (rsp.metrics.snapshot) is the rare, slow side: a scrape or a stats page poll.

Response codes are counted by class (1xx..5xx), like HAProxy's `hrsp_1xx`..`hrsp_5xx`, with the status the
access log shows: a client that left before its response counts as nginx's 499 (4xx). An exchange dropped
with no status of its own (the rest of the request refused mid-way, which the refusal answers; rsp closing
every connection at the end of a drain) is counted in `other`.
"""

from __future__ import annotations

from typing import Final

# Upper bounds (seconds) of the upstream response-time histogram, Prometheus `le` semantics: bucket i counts
# observations <= RESPONSE_TIME_BUCKETS[i]; one more bucket holds the rest (+Inf). Prometheus's default
# buckets (5 ms .. 10 s) plus 1 ms and 2.5 ms, because a proxy's backends on a LAN answer in a millisecond.
# The explicit type matters: compiled, a bare `Final = (...)` tuple is folded where indexed but left unset for
# other reads ("value for final name was not set" from list(RESPONSE_TIME_BUCKETS), mypyc 2.4).
RESPONSE_TIME_BUCKETS: Final[tuple[float, ...]] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

STATUS_CLASSES: Final[tuple[str, ...]] = ("1xx", "2xx", "3xx", "4xx", "5xx", "other")


class StatusCounts:
    """Responses by status class. One `count()` per response: a chain of int comparisons, one field add."""

    __slots__ = ("c1xx", "c2xx", "c3xx", "c4xx", "c5xx", "other")

    def __init__(self) -> None:
        self.c1xx = 0
        self.c2xx = 0
        self.c3xx = 0
        self.c4xx = 0
        self.c5xx = 0
        self.other = 0

    def count(self, status: int) -> None:
        if 200 <= status < 300:  # the usual case first
            self.c2xx += 1
        elif 300 <= status < 400:
            self.c3xx += 1
        elif 400 <= status < 500:
            self.c4xx += 1
        elif 500 <= status < 600:
            self.c5xx += 1
        elif 100 <= status < 200:
            self.c1xx += 1
        else:
            self.other += 1

    def as_dict(self) -> dict[str, int]:
        return {"1xx": self.c1xx, "2xx": self.c2xx, "3xx": self.c3xx, "4xx": self.c4xx, "5xx": self.c5xx,
                "other": self.other}


class Histogram:
    """A fixed-bucket histogram of seconds (RESPONSE_TIME_BUCKETS). Each bucket is a field counting the
    observations that fell in it alone (not cumulative: cumulating is the renderer's job, once per scrape).

    Fields and an if-chain rather than a list and a loop: compiled, a field is a native int, while a list
    holds boxed ints (a get, an allocating add and a set per observation: about 250 instructions more per
    request under cachegrind). tests/metrics/test_counters.py checks the chain against RESPONSE_TIME_BUCKETS.
    """

    __slots__ = ("count", "le_0", "le_1", "le_2", "le_3", "le_4", "le_5", "le_6", "le_7", "le_8", "le_9", "le_10",
                 "le_11", "le_12", "le_inf", "total")

    def __init__(self) -> None:
        self.le_0 = 0
        self.le_1 = 0
        self.le_2 = 0
        self.le_3 = 0
        self.le_4 = 0
        self.le_5 = 0
        self.le_6 = 0
        self.le_7 = 0
        self.le_8 = 0
        self.le_9 = 0
        self.le_10 = 0
        self.le_11 = 0
        self.le_12 = 0
        self.le_inf = 0
        self.total = 0.0
        self.count = 0

    def observe(self, seconds: float) -> None:
        if seconds <= 0.001:
            self.le_0 += 1
        elif seconds <= 0.0025:
            self.le_1 += 1
        elif seconds <= 0.005:
            self.le_2 += 1
        elif seconds <= 0.01:
            self.le_3 += 1
        elif seconds <= 0.025:
            self.le_4 += 1
        elif seconds <= 0.05:
            self.le_5 += 1
        elif seconds <= 0.1:
            self.le_6 += 1
        elif seconds <= 0.25:
            self.le_7 += 1
        elif seconds <= 0.5:
            self.le_8 += 1
        elif seconds <= 1.0:
            self.le_9 += 1
        elif seconds <= 2.5:
            self.le_10 += 1
        elif seconds <= 5.0:
            self.le_11 += 1
        elif seconds <= 10.0:
            self.le_12 += 1
        else:
            self.le_inf += 1
        self.total += seconds
        self.count += 1

    @property
    def counts(self) -> list[int]:
        """Per bucket, in RESPONSE_TIME_BUCKETS order, then +Inf."""
        return [self.le_0, self.le_1, self.le_2, self.le_3, self.le_4, self.le_5, self.le_6, self.le_7, self.le_8,
                self.le_9, self.le_10, self.le_11, self.le_12, self.le_inf]

    def as_dict(self) -> dict[str, object]:
        return {"bounds": list(RESPONSE_TIME_BUCKETS), "counts": self.counts, "sum": self.total,
                "count": self.count}


class BackendStats:
    """What one process counted for one backend (held by its BackendRecord as `stats`).

    bytes_sent / bytes_received: bytes written to and read from the backend (HTTP: heads and bodies as on
    the wire; TCP: what the relay moved, added when the connection closes). checks_*: active health check
    results; last_check_time: wall-clock time of the last one (0.0: none yet).
    """

    __slots__ = (
        "bytes_received",
        "bytes_sent",
        "checks_fail",
        "checks_ok",
        "connect_failures",
        "ejections",
        "last_check_time",
        "response_time",
        "responses",
    )

    def __init__(self) -> None:
        self.responses = StatusCounts()
        self.response_time = Histogram()
        self.bytes_sent = 0
        self.bytes_received = 0
        self.connect_failures = 0
        self.ejections = 0
        self.checks_ok = 0
        self.checks_fail = 0
        self.last_check_time = 0.0


class PoolStats:
    """What one process counted for one pool: retries (a request or connection sent to another backend
    after one failed it) and HTTP requests answered without any backend (503 none available, 502 after
    every backend tried failed: no backend to count them on)."""

    __slots__ = ("retries", "unserved")

    def __init__(self) -> None:
        self.retries = 0
        self.unserved = StatusCounts()


class ListenerStats:
    """What one process counted for one listener, the client side: connections accepted, bytes read from
    and written to clients, and (HTTP) every response by class, including refusals that never reached a
    pool (400, 408, 413, ...). http2_connections / http2_streams: of the connections accepted, those that
    spoke HTTP/2, and the streams they opened (each stream is one request)."""

    __slots__ = ("accepted", "bytes_received", "bytes_sent", "http2_connections", "http2_streams", "responses")

    def __init__(self) -> None:
        self.accepted = 0
        self.http2_connections = 0
        self.http2_streams = 0
        self.bytes_received = 0
        self.bytes_sent = 0
        self.responses = StatusCounts()
