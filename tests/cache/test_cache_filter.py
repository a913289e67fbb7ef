"""CacheFilter driven through its phases by a plain ExchangeView (no sockets): hit, miss, revalidation with
304, Vary, only-if-cached, client conditionals, invalidation, max_object, Authorization, HEAD, no-store,
PURGE, and any fields at all (hypothesis). Stale responses standing in for errors are in
test_stale_on_error.py, concurrent misses in test_miss_coalescing.py; the harness is support.cache_exchange."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rsp.cache.cache_filter import CacheFilter
from rsp.cache.dates import format_http_date
from rsp.cache.store import CacheStore
from rsp.config.model import CacheSettings
from rsp.pipeline.messages import Header, Request, Response, header_get
from support.cache_exchange import T0, Clock, Exchange, make, static, xcache


def test_miss_then_hit_with_age(store: CacheStore, clock: Clock) -> None:
    h = make(store, clock, static(clock=clock))
    response, body = h.run()
    assert (response.status, body, xcache(response)) == (200, b"hello", b"MISS")
    clock.t += 10
    response, body = h.run()
    assert (response.status, body, xcache(response)) == (200, b"hello", b"HIT")
    assert header_get(response.headers, b"age") == b"10"
    assert header_get(response.headers, b"content-type") == b"text/plain"
    assert len(h.seen) == 1


def test_stale_without_validator_is_fetched_again_in_full(store: CacheStore, clock: Clock) -> None:
    h = make(store, clock, static(b"max-age=5", clock=clock))
    h.run()
    clock.t += 6
    response, body = h.run()
    assert (xcache(response), body, len(h.seen)) == (b"MISS", b"hello", 2)
    assert h.seen[1].get(b"if-none-match") is None and h.seen[1].get(b"if-modified-since") is None
    assert xcache(h.run()[0]) == b"HIT"  # the new response replaced the stale one


def test_revalidation_with_304_serves_the_stored_body_freshened(store: CacheStore, clock: Clock) -> None:
    calls: list[Request] = []

    def origin(request: Request) -> tuple[int, list[Header], bytes]:
        calls.append(request)
        if request.get(b"if-none-match") == b'"v1"':
            return 304, [(b"ETag", b'"v1"'), (b"Cache-Control", b"max-age=100"), (b"X-New", b"yes"),
                         (b"Date", format_http_date(clock.t))], b""
        return 200, [(b"ETag", b'"v1"'), (b"Cache-Control", b"max-age=5"), (b"Date", format_http_date(clock.t)),
                     (b"Last-Modified", format_http_date(T0 - 100))], b"body-v1"

    h = make(store, clock, origin)
    h.run()
    clock.t += 10
    response, body = h.run()
    assert calls[-1].get(b"if-none-match") == b'"v1"'
    assert calls[-1].get(b"if-modified-since") == format_http_date(T0 - 100)
    assert (response.status, body, xcache(response)) == (200, b"body-v1", b"REVALIDATED")
    assert response.body_length == len(b"body-v1")
    assert header_get(response.headers, b"x-new") == b"yes"
    assert header_get(response.headers, b"cache-control") == b"max-age=100"
    clock.t += 50  # fresh for 100 s from the 304
    response, body = h.run()
    assert (body, xcache(response), len(calls)) == (b"body-v1", b"HIT", 2)


def test_client_conditional_answered_304_from_the_cache(store: CacheStore, clock: Clock) -> None:
    h = make(store, clock, static(extra=[(b"ETag", b'W/"t"')], clock=clock))
    h.run()
    response, body = h.run(headers=[(b"If-None-Match", b'"x", "t"')])
    assert (response.status, body, xcache(response)) == (304, b"", b"HIT")
    assert header_get(response.headers, b"etag") == b'W/"t"'
    assert header_get(response.headers, b"content-type") is None
    response, body = h.run(headers=[(b"If-None-Match", b'"other"')])
    assert (response.status, body) == (200, b"hello")
    assert len(h.seen) == 1


def test_client_conditional_during_revalidation(store: CacheStore, clock: Clock) -> None:
    def origin(request: Request) -> tuple[int, list[Header], bytes]:
        if request.get(b"if-none-match") == b'"v1"':
            return 304, [(b"ETag", b'"v1"'), (b"Cache-Control", b"max-age=60")], b""
        return 200, [(b"ETag", b'"v1"'), (b"Cache-Control", b"max-age=1")], b"full"

    h = make(store, clock, origin)
    h.run()
    clock.t += 5
    response, body = h.run(headers=[(b"If-None-Match", b'"v1"')])
    assert (response.status, body) == (304, b"")
    assert h.seen[-1].get(b"if-none-match") == b'"v1"'


def test_vary_keeps_a_variant_per_selecting_value(store: CacheStore, clock: Clock) -> None:
    def origin(request: Request) -> tuple[int, list[Header], bytes]:
        lang = request.get(b"accept-language") or b"none"
        return 200, [(b"Cache-Control", b"max-age=60"), (b"Vary", b"Accept-Language")], lang

    h = make(store, clock, origin)
    assert h.run(headers=[(b"Accept-Language", b"fr")])[1] == b"fr"
    assert h.run(headers=[(b"Accept-Language", b"de")])[1] == b"de"
    assert h.run()[1] == b"none"
    assert len(h.seen) == 3
    response, body = h.run(headers=[(b"accept-language", b"FR")])
    assert (body, xcache(response)) == (b"fr", b"HIT")
    assert h.run(headers=[(b"Accept-Language", b"de")])[1] == b"de"
    assert h.run()[1] == b"none"
    assert len(h.seen) == 3


def test_vary_star_is_never_a_hit(store: CacheStore, clock: Clock) -> None:
    h = make(store, clock, static(extra=[(b"Vary", b"*")]))
    h.run()
    assert xcache(h.run()[0]) == b"MISS"


def test_only_if_cached_gives_504_without_an_entry(store: CacheStore, clock: Clock) -> None:
    h = make(store, clock, static(b"max-age=5", extra=[(b"ETag", b'"e"')]))
    response, _ = h.run(headers=[(b"Cache-Control", b"only-if-cached")])
    assert response.status == 504 and h.seen == []
    h.run()
    assert h.run(headers=[(b"Cache-Control", b"only-if-cached")])[0].status == 200
    clock.t += 10  # stale: it would need the origin
    assert h.run(headers=[(b"Cache-Control", b"only-if-cached")])[0].status == 504
    assert len(h.seen) == 1


def test_request_no_cache_and_pragma_revalidate(store: CacheStore, clock: Clock) -> None:
    h = make(store, clock, static(extra=[(b"ETag", b'"e"')]))
    h.run()
    h.run(headers=[(b"Cache-Control", b"no-cache")])
    h.run(headers=[(b"Pragma", b"no-cache")])
    assert [r.get(b"if-none-match") for r in h.seen] == [None, b'"e"', b'"e"']


def test_max_stale_serves_stale_unless_must_revalidate(store: CacheStore, clock: Clock) -> None:
    h = make(store, clock, static(b"max-age=5", extra=[(b"ETag", b'"e"')]))
    h.run()
    clock.t += 8
    response, _ = h.run(headers=[(b"Cache-Control", b"max-stale=10")])
    assert xcache(response) == b"STALE" and len(h.seen) == 1
    strict = make(store, clock, static(b"max-age=5, must-revalidate", extra=[(b"ETag", b'"e"')]))
    strict.run(target=b"/m")
    clock.t += 8
    strict.run(target=b"/m", headers=[(b"Cache-Control", b"max-stale=10")])
    assert len(strict.seen) == 2


def test_unsafe_method_invalidates_target_and_location(store: CacheStore, clock: Clock) -> None:
    def origin(request: Request) -> tuple[int, list[Header], bytes]:
        if request.method == b"POST":
            return 201, [(b"Location", b"/b")], b""
        return 200, [(b"Cache-Control", b"max-age=60")], request.target

    h = make(store, clock, origin)
    h.run(target=b"/a")
    h.run(target=b"/b")
    h.run(target=b"/c")
    h.run(method=b"POST", target=b"/a")
    for target, expected in ((b"/a", b"MISS"), (b"/b", b"MISS"), (b"/c", b"HIT")):
        assert xcache(h.run(target=target)[0]) == expected, target


def test_error_response_to_unsafe_method_invalidates_nothing(store: CacheStore, clock: Clock) -> None:
    def origin(request: Request) -> tuple[int, list[Header], bytes]:
        if request.method == b"DELETE":
            return 500, [], b""
        return 200, [(b"Cache-Control", b"max-age=60")], b"x"

    h = make(store, clock, origin)
    h.run()
    h.run(method=b"DELETE")
    assert xcache(h.run()[0]) == b"HIT"


def test_object_over_max_object_is_not_stored(store: CacheStore, clock: Clock) -> None:
    h = make(store, clock, static(body=b"x" * 5000), max_object=4096)
    assert h.run(chunk=1000)[1] == b"x" * 5000
    assert xcache(h.run()[0]) == b"MISS"


def test_unknown_length_over_max_object_is_dropped_while_streaming(store: CacheStore, clock: Clock) -> None:
    flt = CacheFilter(CacheSettings("t", max_object=4096), store, clock)
    ex = Exchange(Request(b"GET", b"http", b"example.com", b"/u", []))
    flt.access(ex)
    ex.response = Response(200, [(b"Cache-Control", b"max-age=60")], -1)
    flt.header_filter(ex)
    assert flt.body_filter(ex, b"y" * 3000, False) == b"y" * 3000
    assert flt.body_filter(ex, b"y" * 3000, True) == b"y" * 3000
    assert store.lookup(b"http://example.com/u") == []


def test_authorization_and_set_cookie_are_not_stored(store: CacheStore, clock: Clock) -> None:
    h = make(store, clock, static())
    h.run(headers=[(b"Authorization", b"Bearer x")])
    assert xcache(h.run()[0]) == b"MISS"
    cookies = make(store, clock, static(extra=[(b"Set-Cookie", b"s=1")]), cookies=True)
    cookies.run(target=b"/c")
    response, _ = cookies.run(target=b"/c")
    assert xcache(response) == b"HIT" and header_get(response.headers, b"set-cookie") is None
    plain = make(store, clock, static(extra=[(b"Set-Cookie", b"s=1")]))
    plain.run(target=b"/d")
    assert xcache(plain.run(target=b"/d")[0]) == b"MISS"


def test_private_and_no_cache_field_names_are_not_stored(store: CacheStore, clock: Clock) -> None:
    h = make(store, clock, static(b'max-age=60, private="X-User", no-cache="X-Token"',
                                  extra=[(b"X-User", b"alice"), (b"X-Token", b"t"), (b"X-Keep", b"k")]))
    h.run()
    response, _ = h.run()
    assert xcache(response) == b"HIT"
    assert header_get(response.headers, b"x-user") is None and header_get(response.headers, b"x-token") is None
    assert header_get(response.headers, b"x-keep") == b"k"


def test_head_is_answered_from_a_stored_get_but_not_stored(store: CacheStore, clock: Clock) -> None:
    h = make(store, clock, static())
    h.run(method=b"HEAD", target=b"/h")
    assert xcache(h.run(method=b"HEAD", target=b"/h")[0]) == b"MISS"
    h.run(target=b"/h")
    response, _ = h.run(method=b"HEAD", target=b"/h")
    assert xcache(response) == b"HIT" and response.body_length == 5


def test_head_contradicting_the_stored_response_invalidates_it(store: CacheStore, clock: Clock) -> None:
    version = [b'"1"']

    def origin(request: Request) -> tuple[int, list[Header], bytes]:
        return 200, [(b"ETag", version[0]), (b"Cache-Control", b"max-age=5")], b"abc"

    h = make(store, clock, origin)
    h.run()
    clock.t += 10
    version[0] = b'"2"'
    h.run(method=b"HEAD")  # stale: validated with a HEAD; the 200 names another ETag (§4.3.5)
    assert store.lookup(b"http://example.com/a") == []


def test_if_match_bypasses_the_cache(store: CacheStore, clock: Clock) -> None:
    h = make(store, clock, static())
    h.run()
    response, _ = h.run(headers=[(b"If-Match", b'"x"')])
    assert xcache(response) == b"BYPASS" and len(h.seen) == 2


def test_header_name_is_configurable_and_can_be_off(store: CacheStore, clock: Clock) -> None:
    h = make(store, clock, static(), header="X-Rsp-Cache")
    response, _ = h.run()
    assert header_get(response.headers, b"x-rsp-cache") == b"MISS"
    off = make(store, clock, static(), header="")
    response, _ = off.run(target=b"/z")
    assert xcache(response) is None and header_get(response.headers, b"x-rsp-cache") is None


def test_a_second_filter_on_the_same_file_sees_the_entry(store: CacheStore, clock: Clock, tmp_path: Path) -> None:
    """What another worker sees: a second store object on the same file (LMDB's multi-process path)."""
    make(store, clock, static()).run()
    store.close()
    other = CacheStore(store.path, store.size, clock=clock)
    h = make(other, clock, static())
    assert xcache(h.run()[0]) == b"HIT" and h.seen == []
    other.close()


def test_of_two_matching_variants_the_most_recent_answers(store: CacheStore, clock: Clock) -> None:
    """§4.1: two stored responses with different Vary lists both match; the newer one is used."""
    def by_accept(request: Request) -> tuple[int, list[Header], bytes]:
        return 200, [(b"Cache-Control", b"max-age=60"), (b"Vary", b"Accept")], b"older"

    def by_language(request: Request) -> tuple[int, list[Header], bytes]:
        return 200, [(b"Cache-Control", b"max-age=60"), (b"Vary", b"Accept-Language")], b"newer"

    headers: list[Header] = [(b"Accept", b"text/html"), (b"Accept-Language", b"fr")]
    make(store, clock, by_accept).run(headers=headers)
    clock.t += 1
    make(store, clock, by_language).run(headers=[*headers, (b"Cache-Control", b"no-cache")])
    assert len(store.lookup(b"http://example.com/a")) == 2
    response, body = make(store, clock, by_accept).run(headers=headers)
    assert (xcache(response), body) == (b"HIT", b"newer")


def test_head_confirming_the_stored_response_freshens_it(store: CacheStore, clock: Clock) -> None:
    """§4.3.5: a 200 to HEAD with the same validators updates the stored headers (and its freshness)."""
    def origin(request: Request) -> tuple[int, list[Header], bytes]:
        if request.method == b"HEAD":
            return 200, [(b"ETag", b'"1"'), (b"Cache-Control", b"max-age=100"), (b"X-Seen", b"head")], b""
        return 200, [(b"ETag", b'"1"'), (b"Cache-Control", b"max-age=5")], b"abc"

    h = make(store, clock, origin)
    h.run()
    clock.t += 10
    h.run(method=b"HEAD")
    clock.t += 50
    response, body = h.run()
    assert (xcache(response), body) == (b"HIT", b"abc")
    assert header_get(response.headers, b"x-seen") == b"head"


def test_a_304_naming_another_response_drops_the_stored_one(store: CacheStore, clock: Clock) -> None:
    """§4.3.4: the 304's strong ETag does not match the stored response's."""
    def origin(request: Request) -> tuple[int, list[Header], bytes]:
        if request.get(b"if-none-match"):
            return 304, [(b"ETag", b'"other"')], b""
        return 200, [(b"ETag", b'"1"'), (b"Cache-Control", b"max-age=5")], b"abc"

    h = make(store, clock, origin)
    h.run()
    clock.t += 10
    response, body = h.run()  # an unconditional request cannot be answered 304
    assert (response.status, xcache(response)) == (502, b"MISS") and body.startswith(b"502 Bad Gateway")
    assert store.lookup(b"http://example.com/a") == []
    h.run()
    clock.t += 10
    response, _ = h.run(headers=[(b"If-None-Match", b'"other"')])  # the client's own conditional: its 304
    assert (response.status, xcache(response)) == (304, b"MISS")
    assert store.lookup(b"http://example.com/a") == []


def test_request_no_store_is_served_but_never_stored(store: CacheStore, clock: Clock) -> None:
    h = make(store, clock, static())
    h.run(headers=[(b"Cache-Control", b"no-store")])
    assert store.lookup(b"http://example.com/a") == []
    h.run()
    response, _ = h.run(headers=[(b"Cache-Control", b"no-store")])
    assert xcache(response) == b"HIT"  # §5.2.1.5 forbids storing, not answering from the store


_fuzz_targets: list[bytes] = []
_FIELD_VALUES = st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b"").replace(b"\x00", b""))
_NAMES = st.sampled_from([b"cache-control", b"expires", b"date", b"age", b"etag", b"last-modified", b"vary",
                          b"pragma", b"if-none-match", b"if-modified-since", b"authorization", b"set-cookie",
                          b"accept", b"x-other"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(_NAMES, _FIELD_VALUES), max_size=6), st.lists(st.tuples(_NAMES, _FIELD_VALUES), max_size=6),
       st.sampled_from([200, 203, 301, 304, 404, 500]), st.integers(0, 400))
def test_any_fields_never_make_the_filter_raise(store: CacheStore, clock: Clock, request_fields: list[Header],
                                                response_fields: list[Header], status: int, later: int) -> None:
    """A filter that raises answers 500: whatever the fields, every phase completes, twice (store, reuse)."""
    def origin(request: Request) -> tuple[int, list[Header], bytes]:
        return status, list(response_fields), b"" if status == 304 else b"body"

    h = make(store, clock, origin)
    _fuzz_targets.append(b"/fuzz/%d" % len(_fuzz_targets))  # a URI of its own: examples share the store
    for _ in range(2):
        response, _ = h.run(target=_fuzz_targets[-1], headers=list(request_fields))
        assert response.status in (status, 304, 504)
        clock.t += later


def test_purge_from_a_configured_address_removes_every_variant(store: CacheStore, clock: Clock) -> None:
    def origin(request: Request) -> tuple[int, list[Header], bytes]:
        return 200, [(b"Cache-Control", b"max-age=60"), (b"Vary", b"Accept")], request.get(b"accept") or b"-"

    h = make(store, clock, origin, purge=("127.0.0.0/8",))
    h.run(headers=[(b"Accept", b"a")])
    h.run(headers=[(b"Accept", b"b")])
    response, body = h.run(method=b"PURGE")
    assert (response.status, body) == (200, b"purged 2\n")
    assert store.lookup(b"http://example.com/a") == []
    assert h.run(method=b"PURGE")[0].status == 404
    assert all(r.method != b"PURGE" for r in h.seen)  # answered by rsp, never forwarded


def test_purge_from_elsewhere_is_refused(store: CacheStore, clock: Clock) -> None:
    h = make(store, clock, static(), purge=("10.0.0.0/8",))
    h.run()
    assert h.run(method=b"PURGE")[0].status == 405  # the harness's client is 127.0.0.1
    assert xcache(h.run()[0]) == b"HIT"
