"""Stale-while-revalidate (RFC 5861 §3, and the configured grace as Varnish's): CacheFilter's decisions through
its phases with a plain ExchangeView, the background refresh it starts run by hand as the session would run it."""

from __future__ import annotations

from rsp.cache.cache_filter import CacheFilter
from rsp.cache.directives import CacheControl, parse_cache_control
from rsp.cache.entry import MUST_REVALIDATE, NO_CACHE
from rsp.cache.reuse import while_revalidating
from rsp.cache.selector import CacheSelector
from rsp.cache.store import BUSY, CLAIMED, NO_MARK, CacheStore
from rsp.config.model import CacheSettings
from rsp.pipeline.messages import Header, LocalReply, Request, Response, header_get
from support.cache_exchange import Clock, Exchange, Origin, get, run, xcache


def versions(cc: bytes) -> tuple[Origin, list[int]]:
    """An origin whose body says which answer it is (v1, v2, ...); a request with If-None-Match of the
    current ETag gets 304."""
    calls = [0]

    def origin(request: Request) -> tuple[int, list[Header], bytes]:
        etag = b'"v%d"' % max(calls[0], 1)
        if request.get(b"if-none-match") == etag:
            return 304, [(b"Cache-Control", cc), (b"ETag", etag)], b""
        calls[0] += 1
        return 200, [(b"Cache-Control", cc), (b"ETag", b'"v%d"' % calls[0])], b"v%d" % calls[0]
    return origin, calls


def make(store: CacheStore, clock: Clock, **settings: object) -> CacheFilter:
    return CacheFilter(CacheSettings("test", **settings), store, clock)  # type: ignore[arg-type]


def test_within_the_window_stale_is_served_at_once_and_one_refresh_starts(store: CacheStore, clock: Clock) -> None:
    flt = make(store, clock)
    origin, calls = versions(b"max-age=10, stale-while-revalidate=60")
    seen: list[Request] = []
    run(flt, origin, seen, get())
    clock.t += 30
    first, response, body = run(flt, origin, seen, get(headers=[(b"Accept", b"text/plain")]))
    assert (response.status, body, xcache(response)) == (200, b"v1", b"STALE")
    assert header_get(response.headers, b"age") == b"30"
    assert len(seen) == 1  # the client's exchange did not go to the backend
    assert len(first.backgrounds) == 1
    # A second stale request while the refresh is under way: served stale, no second refresh.
    second, response, _ = run(flt, origin, seen, get())
    assert (xcache(response), second.backgrounds) == (b"STALE", [])

    # The refresh: a GET with our validator and the client's other fields, through the same filter.
    refresh, ctx = first.backgrounds[0]
    assert (refresh.method, refresh.target) == (b"GET", b"/a")
    assert refresh.get(b"if-none-match") == b'"v1"' and refresh.get(b"accept") == b"text/plain"
    assert store.mark(b"http://example.com/a", clock.t) == BUSY
    run(flt, origin, seen, refresh, ctx)
    assert len(seen) == 2 and calls[0] == 1  # one backend request, answered 304
    assert store.mark(b"http://example.com/a", clock.t) == NO_MARK  # the URI is given back
    _, response, body = run(flt, origin, seen, get())
    assert (body, xcache(response), header_get(response.headers, b"age")) == (b"v1", b"HIT", b"0")


def test_a_refresh_answered_200_stores_the_new_response(store: CacheStore, clock: Clock) -> None:
    flt = make(store, clock)
    origin, calls = versions(b"max-age=10, stale-while-revalidate=60")
    seen: list[Request] = []
    run(flt, origin, seen, get())
    calls[0] = 1  # the origin moved on: v2 next, and "v1" no longer matches
    clock.t += 20

    def newer(request: Request) -> tuple[int, list[Header], bytes]:
        request.set(b"if-none-match", None)
        return origin(request)

    ex, response, body = run(flt, newer, seen, get())
    assert (body, xcache(response)) == (b"v1", b"STALE")
    refresh, ctx = ex.backgrounds[0]
    _, response, _ = run(flt, newer, seen, refresh, ctx)
    assert response.status == 200
    _, response, body = run(flt, newer, seen, get())
    assert (body, xcache(response)) == (b"v2", b"HIT")


def test_a_head_is_served_stale_and_refreshed_with_a_get(store: CacheStore, clock: Clock) -> None:
    flt = make(store, clock)
    origin, _ = versions(b"max-age=10, stale-while-revalidate=60")
    seen: list[Request] = []
    run(flt, origin, seen, get())
    clock.t += 20
    ex, response, _ = run(flt, origin, seen, get(method=b"HEAD", headers=[(b"If-None-Match", b'"x"'),
                                                                           (b"Range", b"bytes=0-1")]))
    assert xcache(response) == b"STALE"
    refresh, _ = ex.backgrounds[0]
    assert refresh.method == b"GET" and refresh.get(b"range") is None
    assert refresh.get(b"if-none-match") == b'"v1"'  # ours, not the client's


def test_past_the_window_the_request_revalidates_itself(store: CacheStore, clock: Clock) -> None:
    flt = make(store, clock)
    origin, _ = versions(b"max-age=10, stale-while-revalidate=60")
    seen: list[Request] = []
    run(flt, origin, seen, get())
    clock.t += 10 + 61
    ex, response, _ = run(flt, origin, seen, get())
    assert (xcache(response), ex.backgrounds, len(seen)) == (b"REVALIDATED", [], 2)


def test_grace_serves_stale_while_revalidating_like_varnish(store: CacheStore, clock: Clock) -> None:
    flt = make(store, clock, grace=100.0)
    origin, _ = versions(b"max-age=10")
    seen: list[Request] = []
    run(flt, origin, seen, get())
    clock.t += 50
    ex, response, _ = run(flt, origin, seen, get())
    assert xcache(response) == b"STALE" and len(ex.backgrounds) == 1


def test_a_miss_under_way_is_the_refresh(store: CacheStore, clock: Clock) -> None:
    """The claim is the one an ordinary miss takes: a fetch of the URI under way (in any worker) means no
    refresh is started, and a refresh under way makes misses of the URI wait for it."""
    flt = make(store, clock)
    origin, _ = versions(b"max-age=10, stale-while-revalidate=60")
    seen: list[Request] = []
    run(flt, origin, seen, get())
    clock.t += 20
    assert store.claim(b"http://example.com/a", clock.t, 5.0) == CLAIMED  # someone's fetch
    ex, response, _ = run(flt, origin, seen, get())
    assert (xcache(response), ex.backgrounds) == (b"STALE", [])


def test_a_refresh_that_cannot_start_gives_the_uri_back(store: CacheStore, clock: Clock) -> None:
    class NoBackground(Exchange):
        def background(self, request: Request, ctx: dict[str, object]) -> None:
            raise RuntimeError("no listener")

    flt = make(store, clock)
    origin, _ = versions(b"max-age=10, stale-while-revalidate=60")
    seen: list[Request] = []
    run(flt, origin, seen, get())
    clock.t += 20
    ex = NoBackground(get())
    verdict = flt.access(ex)
    assert isinstance(verdict, LocalReply) and verdict.body == b"v1"
    assert store.mark(b"http://example.com/a", clock.t) == NO_MARK


def test_the_decision() -> None:
    none = CacheControl()
    assert while_revalidating(0, 10.0, 15.0, none, 60.0)
    assert not while_revalidating(0, 10.0, 5.0, none, 60.0)  # fresh: a hit, not this
    assert not while_revalidating(0, 10.0, 71.0, none, 60.0)  # past the window
    assert not while_revalidating(0, 10.0, 15.0, none, 0.0)
    assert not while_revalidating(MUST_REVALIDATE, 10.0, 15.0, none, 60.0)  # RFC 9111 §4.2.4
    assert not while_revalidating(NO_CACHE, 10.0, 15.0, none, 60.0)
    for asked in (b"no-cache", b"max-age=0", b"min-fresh=5"):  # §5.2.1: the client wants fresher
        assert not while_revalidating(0, 10.0, 15.0, parse_cache_control([asked]), 60.0)
    assert while_revalidating(0, 10.0, 15.0, parse_cache_control([b"max-stale=1"]), 60.0)


def test_a_route_cache_refresh_reaches_its_filter_without_an_access_phase(store: CacheStore, clock: Clock) -> None:
    """A background request runs no access filters, where a CacheSelector picks the route's cache: the
    refresh's ctx names the filter."""
    flt = make(store, clock)
    selector = CacheSelector((), flt)
    origin, calls = versions(b"max-age=10, stale-while-revalidate=60")
    seen: list[Request] = []
    ex = Exchange(get())
    selector.access(ex)
    ex.response = Response(200, [(b"Cache-Control", b"max-age=10, stale-while-revalidate=60"),
                                 (b"ETag", b'"v1"')], 2)
    selector.header_filter(ex)
    selector.body_filter(ex, b"v1", True)
    selector.log(ex)
    calls[0] = 1
    clock.t += 20
    stale = Exchange(get())
    assert isinstance(selector.access(stale), LocalReply)
    refresh, ctx = stale.backgrounds[0]
    background = Exchange(refresh)
    background.ctx = ctx  # (no access phase)
    background.response = Response(304, [(b"Cache-Control", b"max-age=100"), (b"ETag", b'"v1"')], 0)
    selector.header_filter(background)
    selector.body_filter(background, b"", True)
    selector.log(background)
    _, response, _ = run(flt, origin, seen, get())
    assert xcache(response) == b"HIT" and header_get(response.headers, b"cache-control") == b"max-age=100"
