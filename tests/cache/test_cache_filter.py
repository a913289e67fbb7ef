"""CacheFilter driven through its phases by a plain ExchangeView (no sockets): hit, miss, revalidation with
304, Vary, only-if-cached, client conditionals, invalidation, max_object, Authorization, HEAD."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rsp.cache.cache_filter import LOCK_HOLD, POLL_FIRST, CacheFilter
from rsp.cache.dates import format_http_date
from rsp.cache.entry import StoredResponse
from rsp.cache.store import CLAIMED, CacheStore
from rsp.config.model import CacheSettings
from rsp.pipeline.messages import Header, LocalReply, Request, Response, header_get
from rsp.pipeline.phases import SUSPEND, Chain, Filter
from support.forked import run_forked

T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


class Exchange:
    """The part of ExchangeView a filter uses, as plain attributes."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.response: Response | None = None
        self.ctx: dict[str, object] = {}
        self.pool = "default"
        self.peer: tuple[str, int] | None = None
        self.more_tries = 0
        self.client_ip, self.client_port, self.server_port = "127.0.0.1", 40000, 8080
        self.tries, self.last_failure, self.status = 0, "", 0
        self.upstream_addr, self.upstream_status, self.started = "", 0, 0.0
        self.resumed = 0
        self.answers: list[LocalReply] = []
        self.backgrounds: list[tuple[Request, dict[str, object]]] = []  # requests a filter started
        self.head: Response | None = None  # a streamed answer: its head, its body parts, its end or reset
        self.parts: list[bytes] = []
        self.ended = False
        self.reset = ""

    def now(self) -> float:
        return 0.0

    def resume(self) -> None:
        self.resumed += 1

    def answer(self, reply: LocalReply) -> None:
        self.answers.append(reply)

    def background(self, request: Request, ctx: dict[str, object]) -> None:
        self.backgrounds.append((request, ctx))

    def answer_head(self, response: Response) -> None:
        assert self.head is None
        self.head = response

    def answer_data(self, chunk: bytes, last: bool) -> None:
        assert self.head is not None and not self.ended
        self.parts.append(chunk)
        self.ended = last

    def answer_reset(self, reason: str) -> None:
        self.reset = reason

    def follow(self, source: object) -> None:
        self.following = source


Origin = Callable[[Request], tuple[int, list[Header], bytes]]


class Harness:
    """Runs exchanges through a chain the way the session does, against an origin function that counts
    and records the requests that reach it."""

    def __init__(self, flt: Filter, origin: Origin) -> None:
        self.chain = Chain([flt])
        self.origin = origin
        self.seen: list[Request] = []

    def run(self, method: bytes = b"GET", target: bytes = b"/a", headers: list[Header] | None = None,
            chunk: int = 0) -> tuple[Response, bytes]:
        request = Request(method, b"http", b"example.com", target, list(headers or []))
        ex = Exchange(request)
        verdict = None
        for flt in self.chain.for_phase("access"):
            verdict = flt.access(ex)
            if verdict is not None:
                break
        if isinstance(verdict, LocalReply):
            ex.response, body = verdict.response, verdict.body
        else:
            self.seen.append(request)
            status, resp_headers, body = self.origin(request)
            ex.response = Response(status, resp_headers, len(body))
        for flt in self.chain.for_phase("header_filter"):
            flt.header_filter(ex)
        pieces = [body[i:i + chunk] for i in range(0, len(body), chunk)] if chunk and body else [body]
        out = b""
        for i, piece in enumerate(pieces):
            for flt in self.chain.for_phase("body_filter"):
                piece = flt.body_filter(ex, piece, i == len(pieces) - 1)
            out += piece
        for flt in self.chain.for_phase("log"):
            flt.log(ex)
        if method == b"HEAD":
            out = b""
        return ex.response, out



def make(store: CacheStore, clock: Clock, origin: Origin, **settings: object) -> Harness:
    flt = CacheFilter(CacheSettings("test", **settings), store, clock)  # type: ignore[arg-type]
    return Harness(flt, origin)


def xcache(response: Response) -> bytes | None:
    return header_get(response.headers, b"x-cache")


def static(cc: bytes = b"max-age=60", body: bytes = b"hello", extra: list[Header] | None = None,
           clock: Clock | None = None) -> Origin:
    def origin(request: Request) -> tuple[int, list[Header], bytes]:
        headers = [(b"Content-Type", b"text/plain"), (b"Cache-Control", cc), *(extra or [])]
        if clock is not None:
            headers.append((b"Date", format_http_date(clock.t)))
        return 200, headers, body
    return origin


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


def failing_after_first(cc: bytes) -> Origin:
    calls = [0]

    def origin(request: Request) -> tuple[int, list[Header], bytes]:
        calls[0] += 1
        if calls[0] == 1:
            return 200, [(b"Cache-Control", cc), (b"ETag", b'"s"')], b"kept"
        return 503, [(b"Content-Type", b"text/plain")], b"backend down"
    return origin


def test_stale_if_error_stands_in_for_a_backend_error(store: CacheStore, clock: Clock) -> None:
    """RFC 5861 §4."""
    h = make(store, clock, failing_after_first(b"max-age=5, stale-if-error=60"))
    h.run()
    clock.t += 30
    response, body = h.run()
    assert (response.status, body, xcache(response)) == (200, b"kept", b"STALE")
    assert header_get(response.headers, b"age") == b"30" and response.body_length == 4
    clock.t += 60  # past stale-if-error
    response, body = h.run()
    assert (response.status, body) == (503, b"backend down")


def test_without_stale_if_error_or_grace_the_error_is_passed_on(store: CacheStore, clock: Clock) -> None:
    h = make(store, clock, failing_after_first(b"max-age=5"))
    h.run()
    clock.t += 30
    assert h.run()[0].status == 503


def test_configured_grace_and_request_stale_if_error(store: CacheStore, clock: Clock) -> None:
    graced = make(store, clock, failing_after_first(b"max-age=5"), grace=100.0)
    graced.run(target=b"/g")
    clock.t += 30
    assert xcache(graced.run(target=b"/g")[0]) == b"STALE"
    asked = make(store, clock, failing_after_first(b"max-age=5"))
    asked.run(target=b"/r")
    clock.t += 30
    response, _ = asked.run(target=b"/r", headers=[(b"Cache-Control", b"stale-if-error=60")])
    assert xcache(response) == b"STALE"


def test_must_revalidate_forbids_stale_on_error(store: CacheStore, clock: Clock) -> None:
    h = make(store, clock, failing_after_first(b"max-age=5, must-revalidate, stale-if-error=60"), grace=100.0)
    h.run()
    clock.t += 30
    assert h.run()[0].status == 503


def test_stale_on_error_answers_a_matching_conditional_with_304(store: CacheStore, clock: Clock) -> None:
    h = make(store, clock, failing_after_first(b"max-age=5, stale-if-error=60"))
    h.run()
    clock.t += 30
    response, body = h.run(headers=[(b"If-None-Match", b'"s"')])
    assert (response.status, body, xcache(response)) == (304, b"", b"STALE")


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


# ---- coalescing ----------------------------------------------------------------------------------------------

class Timers:
    """call_later for the filter: callbacks run when the test says so."""

    def __init__(self) -> None:
        self.due: list[tuple[float, Callable[[], None]]] = []

    def __call__(self, delay: float, callback: Callable[[], None]) -> None:
        self.due.append((delay, callback))

    def run(self) -> None:
        due, self.due = self.due, []
        for _, callback in due:
            callback()


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
