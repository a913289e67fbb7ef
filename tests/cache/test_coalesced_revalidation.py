"""Concurrent requests for a stale stored response that must be validated make one conditional request per
machine (rsp.cache.coalescing): the others wait; a 304 answers them from the freshened store, a 200 streams
to them, a backend error gives them what stale-if-error / grace allow. Through CacheFilter's phases with plain
ExchangeViews, a test's timers and clock."""

from __future__ import annotations

from rsp.cache.cache_filter import LOCK_HOLD, CacheFilter
from rsp.cache.store import CLAIMED, NO_MARK, CacheStore
from rsp.config.model import CacheSettings
from rsp.pipeline.messages import Header, Response, header_get
from rsp.pipeline.phases import SUSPEND
from support.cache_exchange import Clock, Exchange, Timers, access_at, respond, xcache

URL = b"http://example.com/r"
TAG = b'"v1"'


def request(flt: CacheFilter, headers: list[Header] | None = None) -> tuple[Exchange, object]:
    return access_at(flt, b"/r", headers)


def stale_entry(flt: CacheFilter, clock: Clock, cc: bytes = b"max-age=5") -> None:
    """v1 stored, then 10 s later: stale, with a validator."""
    ex, verdict = request(flt)
    assert verdict is None
    respond(flt, ex, 200, [(b"Cache-Control", cc), (b"ETag", TAG)], b"body-v1")
    clock.t += 10


def setup(store: CacheStore, clock: Clock, cc: bytes = b"max-age=5", **settings: object
          ) -> tuple[CacheFilter, Timers]:
    timers = Timers()
    flt = CacheFilter(CacheSettings("t", **settings), store, clock, call_later=timers)  # type: ignore[arg-type]
    stale_entry(flt, clock, cc)
    return flt, timers


def test_one_conditional_request_and_a_304_answers_every_waiter(store: CacheStore, clock: Clock) -> None:
    flt, timers = setup(store, clock)
    fetcher, verdict = request(flt)
    assert verdict is None and fetcher.request.get(b"if-none-match") == TAG  # the one conditional request
    waiters = [request(flt) for _ in range(4)]
    assert all(v is SUSPEND for _, v in waiters)
    assert all(ex.request.get(b"if-none-match") is None for ex, _ in waiters)  # they send nothing
    body = respond(flt, fetcher, 304, [(b"ETag", TAG), (b"Cache-Control", b"max-age=60"), (b"X-New", b"1")], b"")
    assert (fetcher.response.status, body, xcache(fetcher.response)) == (200, b"body-v1", b"REVALIDATED")
    for ex, _ in waiters:
        (reply,) = ex.answers
        assert (reply.response.status, reply.body, xcache(reply.response)) == (200, b"body-v1", b"HIT")
        assert header_get(reply.response.headers, b"x-new") == b"1"  # the freshened headers
        assert ex.resumed == 0
    assert flt.stats.coalesced == 4 and flt.stats.revalidated == 1
    assert store.mark(URL, clock.t) == NO_MARK
    timers.run()  # their give-up timers: nothing left to do
    assert all(ex.resumed == 0 and len(ex.answers) == 1 for ex, _ in waiters)
    assert request(flt)[1] is not None  # fresh now: a hit


def test_waiters_take_a_304_even_for_a_no_cache_response(store: CacheStore, clock: Clock) -> None:
    """§5.2.2.4: no-cache asks for validation on the origin before each use; the one the waiters waited for
    was answered after they arrived."""
    flt, _ = setup(store, clock, cc=b"no-cache")
    fetcher, _ = request(flt)
    waiter, verdict = request(flt)
    assert verdict is SUSPEND
    clock.t += 0.2
    respond(flt, fetcher, 304, [(b"ETag", TAG), (b"Cache-Control", b"no-cache")], b"")
    (reply,) = waiter.answers
    assert (reply.body, xcache(reply.response)) == (b"body-v1", b"HIT")
    _, verdict = request(flt)  # a request after the 304 validates again
    assert verdict is None


def test_a_200_streams_the_new_body_to_the_waiters(store: CacheStore, clock: Clock) -> None:
    flt, _ = setup(store, clock)
    fetcher, _ = request(flt)
    waiters = [request(flt)[0] for _ in range(3)]
    fetcher.response = Response(200, [(b"Cache-Control", b"max-age=60"), (b"ETag", b'"v2"')], 7)
    flt.header_filter(fetcher)
    assert xcache(fetcher.response) == b"MISS"
    for ex in waiters:
        assert ex.head is not None and xcache(ex.head) == b"HIT" and header_get(ex.head.headers, b"etag") == b'"v2"'
    flt.body_filter(fetcher, b"bod", False)
    assert [ex.parts for ex in waiters] == [[b"bod"]] * 3  # before the fetch has the rest
    flt.body_filter(fetcher, b"y-v2", True)
    flt.log(fetcher)
    assert all((b"".join(ex.parts), ex.ended, ex.answers) == (b"body-v2", True, []) for ex in waiters)
    assert [e.body for e in store.lookup(URL)] == [b"body-v2"]


def test_a_backend_error_gives_the_waiters_stale_if_error(store: CacheStore, clock: Clock) -> None:
    flt, _ = setup(store, clock, cc=b"max-age=5, stale-if-error=60")
    fetcher, _ = request(flt)
    waiter, _ = request(flt)
    body = respond(flt, fetcher, 503, [(b"Content-Type", b"text/plain")], b"down")
    assert (body, xcache(fetcher.response)) == (b"body-v1", b"STALE")
    (reply,) = waiter.answers
    assert (reply.response.status, reply.body, xcache(reply.response)) == (200, b"body-v1", b"STALE")
    assert header_get(reply.response.headers, b"age") == b"10"
    assert store.mark(URL, clock.t) == NO_MARK


def test_without_stale_if_error_the_waiters_validate_on_their_own(store: CacheStore, clock: Clock) -> None:
    flt, _ = setup(store, clock)
    fetcher, _ = request(flt)
    waiter, _ = request(flt)
    assert respond(flt, fetcher, 503, [], b"down") == b"down"
    assert (waiter.answers, waiter.resumed) == ([], 1)  # to the backend itself ...
    assert waiter.request.get(b"if-none-match") == TAG  # ... with its own conditional request
    assert respond(flt, waiter, 304, [(b"ETag", TAG), (b"Cache-Control", b"max-age=60")], b"") == b"body-v1"
    assert xcache(waiter.response) == b"REVALIDATED"


def test_a_waiter_gives_up_after_lock_hold_and_validates_itself(store: CacheStore, clock: Clock) -> None:
    flt, timers = setup(store, clock)
    request(flt)  # a validation whose backend never answers
    waiter, _ = request(flt)
    assert LOCK_HOLD in [delay for delay, _ in timers.due]  # (beside the store's watch for other workers)
    timers.run()
    assert waiter.resumed == 1 and waiter.request.get(b"if-none-match") == TAG


def test_requests_that_must_not_share_go_alone(store: CacheStore, clock: Clock) -> None:
    """Their own conditional (a 304 for their validator), a Range (a 206), and a request asking for its own
    validation (no-cache, max-age, min-fresh: §5.2.1.4, §5.2.1.1, §5.2.1.3): a validation sent before it
    arrived may have been answered before it, so it does not wait for one (it may lead one)."""
    flt, timers = setup(store, clock)
    request(flt)  # the validation under way
    for extra in ([(b"If-None-Match", b'"mine"')], [(b"Range", b"bytes=0-1")], [(b"Cache-Control", b"no-cache")],
                  [(b"Pragma", b"no-cache")], [(b"Cache-Control", b"max-age=0")], [(b"Cache-Control", b"min-fresh=1")]):
        ex, verdict = request(flt, extra)
        assert verdict is None, extra  # to the backend at once, with a conditional request of its own
        assert ex.request.get(b"if-none-match") == TAG, extra
    assert LOCK_HOLD not in [delay for delay, _ in timers.due]  # none waits


def test_a_no_cache_request_leads_a_validation_others_wait_for(store: CacheStore, clock: Clock) -> None:
    flt, _ = setup(store, clock)
    leader, verdict = request(flt, [(b"Cache-Control", b"no-cache")])
    assert verdict is None and leader.request.get(b"if-none-match") == TAG
    waiter, verdict = request(flt)
    assert verdict is SUSPEND
    respond(flt, leader, 304, [(b"ETag", TAG), (b"Cache-Control", b"max-age=60")], b"")
    assert [r.body for r in waiter.answers] == [b"body-v1"]


def test_a_validation_in_another_process_is_waited_for(store: CacheStore, clock: Clock) -> None:
    """The claim mark is the store's: a waiter polls it and is answered from the entry the other process
    freshened, even when that entry says no-cache (it was validated after the waiter arrived)."""
    flt, timers = setup(store, clock, cc=b"no-cache")
    (entry,) = store.lookup(URL)
    assert store.claim(URL, clock.t, LOCK_HOLD) == CLAIMED  # as another worker's validation would
    waiter, verdict = request(flt)
    assert verdict is SUSPEND
    timers.run()  # still under way: it polls on
    assert not waiter.answers and not waiter.resumed
    clock.t += 0.1
    entry.response_time = entry.request_time = clock.t  # what the other worker's 304 freshened
    store.put(entry, True)
    timers.run()
    (reply,) = waiter.answers
    assert (reply.body, xcache(reply.response), waiter.resumed) == (b"body-v1", b"HIT", 0)


def test_a_validation_in_another_process_that_failed_sends_the_waiter_on(store: CacheStore, clock: Clock) -> None:
    flt, timers = setup(store, clock)
    store.claim(URL, clock.t, LOCK_HOLD)
    waiter, _ = request(flt)
    store.release(URL, clock.t)  # it ended without freshening the entry (an error)
    timers.run()
    assert waiter.resumed == 1 and waiter.request.get(b"if-none-match") == TAG and not waiter.answers


def test_a_stale_response_without_validators_is_fetched_once_as_a_miss(store: CacheStore, clock: Clock) -> None:
    timers = Timers()
    flt = CacheFilter(CacheSettings("t"), store, clock, call_later=timers)
    ex, _ = request(flt)
    respond(flt, ex, 200, [(b"Cache-Control", b"max-age=5")], b"old")  # no ETag, no Last-Modified
    clock.t += 10
    fetcher, verdict = request(flt)
    assert verdict is None and fetcher.request.get(b"if-none-match") is None  # a full fetch
    waiter, verdict = request(flt)
    assert verdict is SUSPEND
    respond(flt, fetcher, 200, [(b"Cache-Control", b"max-age=5")], b"new")
    assert waiter.head is not None
    assert (b"".join(waiter.parts), waiter.ended, xcache(waiter.head)) == (b"new", True, b"HIT")
