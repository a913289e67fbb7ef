"""The cache steered by what a handler set (rsp.pipeline.cache_vars, a Lua handler's ngx.var.rsp_cache_*): the
key, bypass, no-store and TTL, through CacheFilter's phases with a plain ExchangeView (tests/lua/test_cache_vars.py
sets them from real Lua; tests/integration/test_cache_lua_loopback.py runs both on a running rsp)."""

from __future__ import annotations

from rsp.cache.cache_filter import CacheFilter
from rsp.cache.store import NO_MARK, CacheStore
from rsp.config.model import CacheSettings
from rsp.pipeline.cache_vars import CTX_CACHE_VARS
from rsp.pipeline.messages import Header, Request
from support.cache_exchange import Clock, Origin, get, run, xcache


def counting(cc: bytes | None) -> Origin:
    """Bodies "1", "2", ... with `cc` as Cache-Control (None: no freshness information at all)."""
    calls = [0]

    def origin(request: Request) -> tuple[int, list[Header], bytes]:
        calls[0] += 1
        headers = [(b"Cache-Control", cc)] if cc is not None else []
        return 200, headers, b"%d" % calls[0]
    return origin


def steered(**values: bytes) -> dict[str, object]:
    return {CTX_CACHE_VARS: {f"rsp_cache_{name}".encode(): value for name, value in values.items()}}


def test_the_key_replaces_the_target_uri(store: CacheStore, clock: Clock) -> None:
    flt = CacheFilter(CacheSettings("t"), store, clock)
    origin, seen = counting(b"max-age=60"), list[Request]()
    _, response, body = run(flt, origin, seen, get(b"/a?utm=1"), steered(key=b"page-a"))
    assert (body, xcache(response)) == (b"1", b"MISS")
    _, response, body = run(flt, origin, seen, get(b"/a?utm=2"), steered(key=b"page-a"))
    assert (body, xcache(response), len(seen)) == (b"1", b"HIT", 1)
    assert [e.url for e in store.lookup(b"page-a")] == [b"page-a"]
    _, response, _ = run(flt, origin, seen, get(b"/a?utm=1"))  # without the handler: the URI, another key
    assert xcache(response) == b"MISS"


def test_bypass_skips_the_lookup_but_stores_the_answer(store: CacheStore, clock: Clock) -> None:
    """nginx's proxy_cache_bypass: the response may still be stored."""
    flt = CacheFilter(CacheSettings("t"), store, clock)
    origin, seen = counting(b"max-age=60"), list[Request]()
    run(flt, origin, seen, get())
    _, response, body = run(flt, origin, seen, get(), steered(bypass=b"1"))
    assert (body, xcache(response), len(seen)) == (b"2", b"BYPASS", 2)
    _, response, body = run(flt, origin, seen, get())
    assert (body, xcache(response)) == (b"2", b"HIT")
    _, response, _ = run(flt, origin, seen, get(), steered(bypass=b"0"))  # "0" and "" are off, as in nginx
    assert xcache(response) == b"HIT"


def test_no_store_leaves_the_store_alone(store: CacheStore, clock: Clock) -> None:
    """nginx's proxy_no_cache: looked up, never stored, and it neither holds nor waits for the URI's fetch."""
    flt = CacheFilter(CacheSettings("t"), store, clock)
    origin, seen = counting(b"max-age=60"), list[Request]()
    _, response, _ = run(flt, origin, seen, get(), steered(no_store=b"1"))
    assert xcache(response) == b"MISS" and store.lookup(b"http://example.com/a") == []
    assert store.mark(b"http://example.com/a", clock.t) == NO_MARK
    run(flt, origin, seen, get())
    _, response, body = run(flt, origin, seen, get(), steered(no_store=b"1"))
    assert (body, xcache(response)) == (b"2", b"HIT")  # a stored response still answers it


def test_ttl_replaces_the_freshness_lifetime(store: CacheStore, clock: Clock) -> None:
    """Varnish's beresp.ttl, nginx's X-Accel-Expires: even a response with no freshness information of its
    own is stored, for that long."""
    flt = CacheFilter(CacheSettings("t"), store, clock)
    origin, seen = counting(None), list[Request]()
    run(flt, origin, seen, get(), steered(ttl=b"60"))
    clock.t += 59
    _, response, body = run(flt, origin, seen, get())
    assert (body, xcache(response)) == (b"1", b"HIT")
    clock.t += 2
    _, response, body = run(flt, origin, seen, get())
    assert (body, xcache(response)) == (b"2", b"MISS")  # stale, no validator: fetched again
    shorter = counting(b"max-age=300")
    run(flt, shorter, seen, get(b"/s"), steered(ttl=b"10"))
    clock.t += 11
    _, response, _ = run(flt, shorter, seen, get(b"/s"))
    assert xcache(response) == b"MISS"


def test_ttl_does_not_store_what_may_not_be_stored(store: CacheStore, clock: Clock) -> None:
    flt = CacheFilter(CacheSettings("t"), store, clock)
    seen: list[Request] = []
    for cc in (b"no-store", b"private"):
        run(flt, counting(cc), seen, get(b"/p"), steered(ttl=b"60"))
        assert store.lookup(b"http://example.com/p") == []
