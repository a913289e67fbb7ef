"""CacheFilter's concurrent misses for one URI (Varnish's waiting list, nginx's proxy_cache_lock): one fetch,
its waiters answered from it (in this process) or from the store (by polling, another process's fetch),
released when it fails or cannot be stored, giving up after LOCK_HOLD; the counters; misses that neither
hold nor wait. Driven through the filter's phases with plain ExchangeViews and timers the test runs
(support.cache_exchange); test_coalesced_streaming.py covers the streaming to waiters."""

from __future__ import annotations

from rsp.cache.cache_filter import LOCK_HOLD, POLL_FIRST, CacheFilter
from rsp.cache.entry import StoredResponse
from rsp.cache.store import CLAIMED, CacheStore
from rsp.config.model import CacheSettings
from rsp.pipeline.messages import Header, Request, Response
from rsp.pipeline.phases import SUSPEND
from support.cache_exchange import Clock, Exchange, Harness, Timers, static, xcache
from support.forked import run_forked


def start(flt: CacheFilter, target: bytes = b"/c") -> tuple[Exchange, object]:
    ex = Exchange(Request(b"GET", b"http", b"example.com", target, []))
    return ex, flt.access(ex)


def finish(flt: CacheFilter, ex: Exchange, status: int, headers: list[Header], body: bytes) -> None:
    ex.response = Response(status, headers, len(body))
    flt.header_filter(ex)
    flt.body_filter(ex, body, True)
    flt.log(ex)


def test_concurrent_misses_wait_for_one_fetch_and_get_its_response(store: CacheStore, clock: Clock) -> None:
    """Waiters in the fetcher's process get its response streamed (test_coalesced_streaming.py has more)."""
    timers = Timers()
    flt = CacheFilter(CacheSettings("t"), store, clock, call_later=timers)
    fetcher, verdict = start(flt)
    assert verdict is None  # goes to the backend, holding the URI
    waiters = [start(flt) for _ in range(5)]
    assert all(v is SUSPEND for _, v in waiters)  # nothing to poll: the fetch is here
    assert [delay for delay, _ in timers.due] == [LOCK_HOLD] * 5  # but none waits for its head for ever
    finish(flt, fetcher, 200, [(b"Cache-Control", b"max-age=60")], b"once")
    for ex, _ in waiters:
        assert ex.head is not None and ex.head.status == 200 and xcache(ex.head) == b"HIT"
        assert (b"".join(ex.parts), ex.ended, ex.resumed) == (b"once", True, 0)
    assert flt.stats.coalesced == 5
    timers.run()  # their give-up timers: too late, nothing happens
    assert all(ex.resumed == 0 for ex, _ in waiters)
    assert start(flt)[1] is not None  # afterwards: a plain hit


def test_misses_wait_for_a_fetch_in_another_process_by_polling(store: CacheStore, clock: Clock) -> None:
    timers = Timers()
    flt = CacheFilter(CacheSettings("t"), store, clock, call_later=timers)
    assert store.claim(b"http://example.com/c", clock.t, LOCK_HOLD) == CLAIMED  # as another worker would
    waiters = [start(flt) for _ in range(5)]
    assert all(v is SUSPEND for _, v in waiters)
    timers.run()  # the fetch is still under way: they poll again, later
    assert len(timers.due) == 5 and all(not ex.answers and not ex.resumed for ex, _ in waiters)
    assert timers.due[0][0] > POLL_FIRST
    store.put(StoredResponse(b"http://example.com/c", 200, [], b"once", response_time=clock.t, lifetime=60.0),
              True)
    timers.run()
    for ex, _ in waiters:
        (reply,) = ex.answers
        assert (reply.response.status, reply.body) == (200, b"once") and not ex.resumed


def test_waiters_go_to_the_backend_when_the_response_cannot_be_stored(store: CacheStore, clock: Clock) -> None:
    timers = Timers()
    flt = CacheFilter(CacheSettings("t"), store, clock, call_later=timers)
    fetcher, _ = start(flt)
    waiter, verdict = start(flt)
    assert verdict is SUSPEND
    finish(flt, fetcher, 200, [(b"Cache-Control", b"private")], b"mine")
    timers.run()
    assert (waiter.resumed, waiter.answers) == (1, [])
    # The URI is marked PASS for a while: later misses do not wait for each other.
    _, v1 = start(flt)
    _, v2 = start(flt)
    assert v1 is None and v2 is None and not timers.due


def test_a_failed_fetch_releases_its_waiters(store: CacheStore, clock: Clock) -> None:
    timers = Timers()
    flt = CacheFilter(CacheSettings("t"), store, clock, call_later=timers)
    fetcher, _ = start(flt)
    waiter, _ = start(flt)
    flt.log(fetcher)  # the backend failed before any response: only log runs
    timers.run()
    assert waiter.resumed == 1


def test_a_waiter_gives_up_after_lock_hold(store: CacheStore, clock: Clock) -> None:
    """On another process's fetch (one in this process ends by its own response timeout, and releases)."""
    timers = Timers()
    flt = CacheFilter(CacheSettings("t"), store, clock, call_later=timers)
    store.claim(b"http://example.com/c", clock.t, LOCK_HOLD)  # a fetch that never ends (a hung backend)
    waiter, _ = start(flt)
    clock.t += LOCK_HOLD + 0.1
    timers.run()
    assert waiter.resumed == 1


def test_a_fetch_in_another_process_is_waited_for(store: CacheStore, clock: Clock) -> None:
    """The mark is in the store: a claim made by another process makes this one's miss wait."""
    code, _ = run_forked(lambda fd: 0 if store.claim(b"http://example.com/c", clock.t, LOCK_HOLD) == CLAIMED else 1)
    assert code == 0
    timers = Timers()
    flt = CacheFilter(CacheSettings("t"), store, clock, call_later=timers)
    waiter, verdict = start(flt)
    assert verdict is SUSPEND
    store.put(StoredResponse(b"http://example.com/c", 200, [], b"from the other worker", response_time=clock.t,
                             lifetime=60.0))
    timers.run()
    assert [r.body for r in waiter.answers] == [b"from the other worker"]


def test_counters_follow_what_happened(store: CacheStore, clock: Clock) -> None:
    flt = CacheFilter(CacheSettings("t", purge=("127.0.0.1",)), store, clock)
    h = Harness(flt, static(extra=[(b"ETag", b'"e"')]))
    h.run()
    h.run()
    h.run(headers=[(b"If-None-Match", b'"e"')])
    h.run(headers=[(b"If-Match", b'"e"')])
    h.run(method=b"PURGE")
    figures = flt.figures()
    assert {k: figures[k] for k in ("hits", "misses", "bypass", "stored", "purged", "stale", "revalidated")} == {
        "hits": 2, "misses": 1, "bypass": 1, "stored": 1, "purged": 1, "stale": 0, "revalidated": 0}
    assert figures["store"] == {"evicted_here": 0, "bytes": 0, "entries": 0, "budget": store.budget}


def test_a_conditional_or_range_miss_neither_holds_nor_waits(store: CacheStore, clock: Clock) -> None:
    timers = Timers()
    flt = CacheFilter(CacheSettings("t"), store, clock, call_later=timers)
    fetcher, _ = start(flt)
    for name, value in ((b"If-None-Match", b'"x"'), (b"Range", b"bytes=0-1")):
        ex = Exchange(Request(b"GET", b"http", b"example.com", b"/c", [(name, value)]))
        assert flt.access(ex) is None  # goes to the backend at once, beside the fetch
    finish(flt, fetcher, 200, [(b"Cache-Control", b"max-age=60")], b"x")
    assert start(flt)[1] is not None
