"""A coalesced miss streams to its waiters in the fetcher's process (rsp.cache.waiting_list): the head when the
fetcher's head arrives, each body part as the fetcher receives it; through CacheFilter's phases with plain
ExchangeViews and a test's timers."""

from __future__ import annotations

from rsp.cache.cache_filter import LOCK_HOLD, CacheFilter
from rsp.cache.store import NO_MARK, CacheStore
from rsp.config.model import CacheSettings
from rsp.pipeline.messages import UNKNOWN_LENGTH, Header, Request, Response, header_get
from rsp.pipeline.phases import SUSPEND
from support.cache_exchange import Clock, Exchange, Timers, xcache

URL = b"http://example.com/s"



def miss(flt: CacheFilter, headers: list[Header] | None = None) -> tuple[Exchange, object]:
    ex = Exchange(Request(b"GET", b"http", b"example.com", b"/s", list(headers or [])))
    return ex, flt.access(ex)


def head(flt: CacheFilter, ex: Exchange, headers: list[Header], length: int = UNKNOWN_LENGTH) -> None:
    ex.response = Response(200, [(b"Content-Type", b"text/plain"), *headers], length)
    flt.header_filter(ex)


def test_waiters_get_each_part_as_the_fetch_receives_it(store: CacheStore, clock: Clock) -> None:
    timers = Timers()
    flt = CacheFilter(CacheSettings("t", cookies=True), store, clock, call_later=timers)
    fetcher, verdict = miss(flt)
    assert verdict is None
    waiters = [miss(flt) for _ in range(3)]
    assert all(v is SUSPEND for _, v in waiters)
    head(flt, fetcher, [(b"Cache-Control", b"max-age=60"), (b"Set-Cookie", b"a=1")])
    for ex, _ in waiters:
        assert ex.head is not None and ex.head.body_length == UNKNOWN_LENGTH
        assert xcache(ex.head) == b"HIT" and header_get(ex.head.headers, b"age") == b"0"
        assert header_get(ex.head.headers, b"set-cookie") is None  # the fetcher's client's, not theirs
        assert header_get(ex.head.headers, b"content-type") == b"text/plain"
    assert flt.body_filter(fetcher, b"first ", False) == b"first "
    assert [ex.parts for ex, _ in waiters] == [[b"first "]] * 3  # before the fetch has the rest
    assert not any(ex.ended for ex, _ in waiters)
    flt.body_filter(fetcher, b"second", False)
    flt.body_filter(fetcher, b"", True)
    flt.log(fetcher)
    for ex, _ in waiters:
        assert (b"".join(ex.parts), ex.ended, ex.resumed, ex.reset) == (b"first second", True, 0, "")
    assert [e.body for e in store.lookup(URL)] == [b"first second"]
    assert store.mark(URL, clock.t) == NO_MARK


def test_a_waiter_gives_up_when_the_fetch_has_no_head_after_lock_hold(store: CacheStore, clock: Clock) -> None:
    timers = Timers()
    flt = CacheFilter(CacheSettings("t"), store, clock, call_later=timers)
    fetcher, _ = miss(flt)
    waiter, _ = miss(flt)
    ((delay, _),) = timers.due
    assert delay == LOCK_HOLD
    timers.run()  # a slow backend: no head yet
    assert (waiter.head, waiter.resumed) == (None, 1)
    head(flt, fetcher, [(b"Cache-Control", b"max-age=60")])  # the fetch goes on without it
    assert waiter.head is None


def test_a_waiter_that_joins_late_gets_the_body_so_far_then_the_rest(store: CacheStore, clock: Clock) -> None:
    timers = Timers()
    flt = CacheFilter(CacheSettings("t"), store, clock, call_later=timers)
    fetcher, _ = miss(flt)
    head(flt, fetcher, [(b"Cache-Control", b"max-age=60")], length=10)
    flt.body_filter(fetcher, b"01234", False)
    late, verdict = miss(flt)
    assert verdict is SUSPEND and late.head is None  # answered on the loop, after access returned
    timers.run()
    assert late.head is not None and late.head.body_length == 10 and late.parts == [b"01234"]
    flt.body_filter(fetcher, b"56789", True)
    assert (b"".join(late.parts), late.ended) == (b"0123456789", True)


def test_a_waiter_of_another_variant_goes_to_the_backend(store: CacheStore, clock: Clock) -> None:
    flt = CacheFilter(CacheSettings("t"), store, clock, call_later=Timers())
    fetcher, _ = miss(flt, [(b"Accept-Language", b"en")])
    same, _ = miss(flt, [(b"Accept-Language", b"en")])
    other, _ = miss(flt, [(b"Accept-Language", b"fr")])
    fresh, _ = miss(flt, [(b"Cache-Control", b"min-fresh=120")])  # wants more than max-age=60 gives
    head(flt, fetcher, [(b"Cache-Control", b"max-age=60"), (b"Vary", b"Accept-Language")])
    assert same.head is not None
    assert (other.head, other.resumed, fresh.head, fresh.resumed) == (None, 1, None, 1)


def test_an_unstorable_response_sends_the_waiters_to_the_backend(store: CacheStore, clock: Clock) -> None:
    flt = CacheFilter(CacheSettings("t"), store, clock, call_later=Timers())
    fetcher, _ = miss(flt)
    waiter, _ = miss(flt)
    head(flt, fetcher, [(b"Cache-Control", b"private")])
    assert (waiter.head, waiter.resumed) == (None, 1)


def test_a_fetch_that_fails_mid_body_resets_its_streaming_waiters(store: CacheStore, clock: Clock) -> None:
    flt = CacheFilter(CacheSettings("t"), store, clock, call_later=Timers())
    fetcher, _ = miss(flt)
    waiter, _ = miss(flt)
    head(flt, fetcher, [(b"Cache-Control", b"max-age=60")])
    flt.body_filter(fetcher, b"part", False)
    flt.log(fetcher)  # the backend died: only log runs
    assert waiter.reset and not waiter.ended
    assert store.lookup(URL) == [] and store.mark(URL, clock.t) == NO_MARK
    _, verdict = miss(flt)
    assert verdict is None  # the next miss fetches anew


def test_past_max_object_the_waiters_still_get_everything(store: CacheStore, clock: Clock) -> None:
    timers = Timers()
    flt = CacheFilter(CacheSettings("t", max_object=8), store, clock, call_later=timers)
    fetcher, _ = miss(flt)
    waiter, _ = miss(flt)
    head(flt, fetcher, [(b"Cache-Control", b"max-age=60")])  # length unknown: maybe storable
    flt.body_filter(fetcher, b"0123456", False)
    flt.body_filter(fetcher, b"789", False)  # over max_object: no longer collected for the store
    late, _ = miss(flt)
    timers.run()
    assert (late.head, late.resumed) == (None, 1)  # the body so far is gone: it fetches itself
    flt.body_filter(fetcher, b"abc", True)
    assert (b"".join(waiter.parts), waiter.ended) == (b"0123456789abc", True)
    assert store.lookup(URL) == []
