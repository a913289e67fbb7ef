"""CacheFilter answering a backend error with a stale response (RFC 5861 §4): stale-if-error in the response
or the request, the configured `grace`, and must-revalidate forbidding it; through the filter's phases with a
plain ExchangeView (support.cache_exchange) and an origin that fails after its first answer."""

from __future__ import annotations

from rsp.cache.store import CacheStore
from rsp.pipeline.messages import Header, Request, header_get
from support.cache_exchange import Clock, Origin, make, xcache


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
