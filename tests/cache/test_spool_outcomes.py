"""A coalesced validation whose answer is the stored response tells the waiters of OTHER workers through the
spool (rsp.cache.spool's FRESH and STALE records), so they are answered as the fetcher's own worker answers
its waiters: from the freshened response after a 304, with the stale one after a backend error where
stale-if-error or grace allow it for each waiter's request (RFC 5861 §4), at the backend otherwise. Two
filters on one store (two workers), a fake clock and timers the test runs."""

from __future__ import annotations

import os

from rsp.cache.cache_filter import LOCK_HOLD, CacheFilter
from rsp.cache.spool import FRESH, OUTCOME_KEEP, STALE, WANTED, Spools, outcome_time, spool_dir
from rsp.cache.store import CLAIMED, NO_MARK, CacheStore
from rsp.config.model import CacheSettings
from rsp.pipeline.messages import Header, header_get
from rsp.pipeline.phases import SUSPEND
from support.cache_exchange import Clock, Exchange, Timers, access_at, respond, xcache

URL = b"http://example.com/r"
TAG = b'"v1"'


def request(flt: CacheFilter, headers: list[Header] | None = None) -> tuple[Exchange, object]:
    return access_at(flt, b"/r", headers)


def two_workers(store: CacheStore, clock: Clock, cc: bytes = b"max-age=5", **settings: object
                ) -> tuple[CacheFilter, Timers, CacheFilter, Timers]:
    """The fetcher's worker and another one, each with its timers; v1 stored (with `cc`), then stale 10 s on."""
    here_timers, there_timers = Timers(), Timers()
    here = CacheFilter(CacheSettings("t", **settings), store, clock, call_later=here_timers)  # type: ignore[arg-type]
    there = CacheFilter(CacheSettings("t", **settings), store, clock, call_later=there_timers)  # type: ignore[arg-type]
    ex, verdict = request(here)
    assert verdict is None
    respond(here, ex, 200, [(b"Cache-Control", cc), (b"ETag", TAG)], b"body-v1")
    clock.t += 10
    return here, here_timers, there, there_timers


def outcome(store: CacheStore) -> tuple[int, float] | None:
    """The outcome record the spool of URL holds, if any."""
    reader = Spools(spool_dir(store.path), 1 << 20).open(URL)
    if reader is None:
        return None
    ((kind, payload),) = reader.read()
    reader.close()
    return kind, outcome_time(payload)


def test_a_304_is_told_to_the_waiters_of_another_worker(store: CacheStore, clock: Clock) -> None:
    here, _, there, timers = two_workers(store, clock, cc=b"no-cache")
    fetcher, verdict = request(here)
    assert verdict is None and fetcher.request.get(b"if-none-match") == TAG
    far, verdict = request(there)
    assert verdict is SUSPEND
    timers.run()  # under way: it polls on
    assert not far.answers and not far.resumed
    clock.t += 0.2
    respond(here, fetcher, 304, [(b"ETag", TAG), (b"Cache-Control", b"no-cache"), (b"X-New", b"1")], b"")
    assert outcome(store) == (FRESH, clock.t)  # the outcome, for the waiter's next poll
    timers.run()
    (reply,) = far.answers
    assert (reply.body, xcache(reply.response), far.resumed) == (b"body-v1", b"HIT", 0)
    assert header_get(reply.response.headers, b"x-new") == b"1" and there.stats.coalesced == 1
    assert timers.due == [] and not Spools(spool_dir(store.path), 1).asked(URL)


def test_a_backend_error_gives_the_waiters_of_another_worker_the_stale_response(store: CacheStore,
                                                                                clock: Clock) -> None:
    here, _, there, timers = two_workers(store, clock, cc=b"max-age=5, stale-if-error=60")
    fetcher, _ = request(here)
    far, _ = request(there)
    near, _ = request(here)
    assert respond(here, fetcher, 503, [(b"Content-Type", b"text/plain")], b"down") == b"body-v1"
    assert [xcache(r.response) for r in near.answers] == [b"STALE"]
    assert outcome(store) == (STALE, clock.t)
    timers.run()
    (reply,) = far.answers  # not at the backend: as the fetcher's worker answers its own waiters
    assert (reply.response.status, reply.body, xcache(reply.response)) == (200, b"body-v1", b"STALE")
    assert (far.resumed, header_get(reply.response.headers, b"age")) == (0, b"10")
    assert store.mark(URL, clock.t) == NO_MARK


def test_after_an_error_each_waiter_gets_what_its_own_request_allows(store: CacheStore, clock: Clock) -> None:
    """The response has no stale-if-error: the fetcher's client gets the error; a waiter whose request has
    stale-if-error gets the stale response (here and in another worker); the others validate on their own."""
    here, _, there, timers = two_workers(store, clock)
    fetcher, _ = request(here)
    allowing = [(b"Cache-Control", b"stale-if-error=60")]
    near_ok, near_not = request(here, allowing)[0], request(here)[0]
    far_ok, far_not = request(there, allowing)[0], request(there)[0]
    assert respond(here, fetcher, 503, [], b"down") == b"down"
    timers.run()
    for ok in (near_ok, far_ok):
        assert [(r.body, xcache(r.response)) for r in ok.answers] == [(b"body-v1", b"STALE")] and not ok.resumed
    for other in (near_not, far_not):
        assert other.answers == [] and other.resumed == 1 and other.request.get(b"if-none-match") == TAG


def test_an_outcome_older_than_the_waiter_is_not_its_answer(store: CacheStore, clock: Clock) -> None:
    """The outcome's file stays a while; a waiter that came after it waits for the fetch it found under way."""
    here, here_timers, there, timers = two_workers(store, clock, cc=b"no-cache")
    fetcher, _ = request(here)
    request(there)
    respond(here, fetcher, 304, [(b"ETag", TAG), (b"Cache-Control", b"no-cache")], b"")
    assert outcome(store) is not None
    clock.t += 0.1
    timers.run()
    assert store.claim(URL, clock.t, LOCK_HOLD) == CLAIMED  # a new validation (another worker's)
    late, verdict = request(there)
    assert verdict is SUSPEND
    timers.run()
    assert (late.answers, late.resumed) == ([], 0)  # still waiting for the new one
    clock.t += OUTCOME_KEEP
    here_timers.run()  # the fetcher's watch removes the outcome's file after OUTCOME_KEEP
    assert outcome(store) is None and sorted(os.listdir(spool_dir(store.path))) == [WANTED]


def test_nobody_waiting_in_another_worker_a_validation_writes_no_outcome(store: CacheStore, clock: Clock) -> None:
    here, _, _, _ = two_workers(store, clock, cc=b"max-age=5, stale-if-error=60")
    for status in (304, 503):
        fetcher, _ = request(here)
        near, verdict = request(here)
        assert verdict is SUSPEND
        respond(here, fetcher, status, [(b"ETag", TAG), (b"Cache-Control", b"max-age=5, stale-if-error=60")], b"")
        assert len(near.answers) == 1 and outcome(store) is None
        clock.t += 10
