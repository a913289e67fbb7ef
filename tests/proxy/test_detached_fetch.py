"""A fetch whose client goes away goes on while the response cache needs it (Filter.client_left,
rsp.proxy.background.detach): on the fake session with a real CacheFilter and LMDB store, no sockets.

The fetcher's client leaves after the head: the waiter in the same worker still gets the whole body, the
store gets the response, and the next request is a hit without a backend request. Nothing goes on when no
filter needs it (an unstorable response nobody waits for), and a detached fetch keeps the read timeout and
max_object."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rsp.cache.cache_filter import CacheFilter
from rsp.cache.store import CacheStore
from rsp.config.model import CacheSettings
from rsp.proxy.background import BackgroundClient
from support.fake_session import FakeSession, FakeTransport

Make = Callable[..., FakeSession]
T0 = 1_800_000_000.0
GET_S = b"GET /s HTTP/1.1\r\nHost: example\r\n\r\n"
HEAD_CHUNKED = (b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Type: text/plain\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n")


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class Timers:
    """The cache's call_later: kept until the test runs those due at once (a late waiter's answer); the others
    (a waiter's give-up) are never due in these tests."""

    def __init__(self) -> None:
        self.due: list[tuple[float, Callable[[], None]]] = []

    def __call__(self, delay: float, callback: Callable[[], None]) -> None:
        self.due.append((delay, callback))

    def run_now(self) -> None:
        now, self.due = [c for d, c in self.due if d == 0.0], [(d, c) for d, c in self.due if d != 0.0]
        for callback in now:
            callback()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CacheStore]:
    s = CacheStore(str(tmp_path / "c.lmdb"), 8 * 1024 * 1024, clock=lambda: T0)
    yield s
    s.close()


def cached_session(make_session: Make, store: CacheStore, timers: Timers | None = None,
                   **settings: object) -> tuple[FakeSession, CacheFilter]:
    flt = CacheFilter(CacheSettings("t", **settings), store, lambda: T0,  # type: ignore[arg-type]
                      call_later=timers or Timers())
    return make_session(filters=[flt]), flt


def detached(s: FakeSession) -> list[BackgroundClient]:
    return [c for c in s.proxy.connections if isinstance(c, BackgroundClient)]


def fetch_with_waiter(s: FakeSession) -> tuple[FakeTransport, FakeTransport, FakeTransport]:
    """Client A's miss claims /s and goes to the backend; client B's waits for it; the backend sends the head
    and a first part. (A, B, the backend.)"""
    a = s.client(ip="192.0.2.1")
    backend = s.open(a, GET_S)
    b = s.client(ip="192.0.2.2")
    b.send(GET_S)
    assert not s.connector.pending()  # B waits for A's fetch
    backend.send(HEAD_CHUNKED + chunk(b"first "))
    assert a.take().endswith(b"first \r\n")
    got = b.take()
    assert got.startswith(b"HTTP/1.1 200 OK\r\n") and b"X-Cache: HIT" in got and got.endswith(b"first \r\n")
    return a, b, backend


def test_a_fetch_goes_on_for_its_waiter_and_the_store_when_its_client_leaves(make_session: Make,
                                                                            store: CacheStore) -> None:
    s, flt = cached_session(make_session, store)
    a, b, backend = fetch_with_waiter(s)
    a.reset()  # the fetcher's client goes away after the head
    assert len(detached(s)) == 1 and not backend.closing
    backend.send(chunk(b"second"))
    assert b.take() == chunk(b"second")
    backend.send(b"0\r\n\r\n")
    assert b.take() == b"0\r\n\r\n"  # B's response is whole
    assert a.take() == b""  # nothing more went to the client that left
    assert not detached(s) and len(s.idle_upstreams()) == 1  # ended; its backend connection pooled
    assert flt.stats.stored == 1
    c = s.client(ip="192.0.2.3")
    c.send(GET_S)
    hit = c.take()
    assert b"X-Cache: HIT" in hit and hit.endswith(b"first second")
    assert not s.connector.pending() and backend.take() == b""  # no backend request for the hit


def test_a_fetch_nobody_waits_for_goes_on_to_be_stored(make_session: Make, store: CacheStore) -> None:
    s, flt = cached_session(make_session, store)
    a = s.client()
    backend = s.open(a, GET_S)
    backend.send(HEAD_CHUNKED + chunk(b"first "))
    a.reset()
    assert len(detached(s)) == 1
    backend.send(chunk(b"second") + b"0\r\n\r\n")
    assert flt.stats.stored == 1 and [e.body for e in store.lookup(b"http://example/s")] == [b"first second"]


def test_a_fetch_before_its_head_goes_on_when_its_client_leaves(make_session: Make, store: CacheStore) -> None:
    s, flt = cached_session(make_session, store)
    a = s.client()
    backend = s.open(a, GET_S)
    b = s.client(ip="192.0.2.2")
    b.send(GET_S)
    a.reset()  # no head yet: the response may still be stored, and B waits for it
    assert len(detached(s)) == 1 and not backend.closing
    backend.send(HEAD_CHUNKED + chunk(b"all") + b"0\r\n\r\n")
    got = b.take()
    assert b"X-Cache: HIT" in got and got.endswith(chunk(b"all") + b"0\r\n\r\n")
    assert flt.stats.stored == 1


def test_an_unstorable_response_nobody_waits_for_ends_with_its_client(make_session: Make,
                                                                      store: CacheStore) -> None:
    s, flt = cached_session(make_session, store)
    a = s.client()
    backend = s.open(a, GET_S)
    backend.send(b"HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(b"x"))
    a.reset()
    assert not detached(s) and backend.aborted  # nginx's proxy_ignore_client_abort off
    assert flt.stats.stored == 0


def test_a_detached_fetch_that_outgrows_max_object_with_no_waiter_ends(make_session: Make,
                                                                       store: CacheStore) -> None:
    s, flt = cached_session(make_session, store, max_object=10)
    a = s.client()
    backend = s.open(a, GET_S)
    backend.send(HEAD_CHUNKED + chunk(b"12345"))
    a.reset()
    assert len(detached(s)) == 1
    backend.send(chunk(b"67890abcdef"))  # past max_object: nothing collects it any more, nobody waits
    assert backend.aborted and not detached(s)
    assert flt.stats.stored == 0 and store.lookup(b"http://example/s") == []


def test_a_detached_fetch_keeps_the_read_timeout(make_session: Make, store: CacheStore) -> None:
    s, flt = cached_session(make_session, store)
    a, b, backend = fetch_with_waiter(s)
    a.reset()
    assert len(detached(s)) == 1
    s.advance(s.settings.response_timeout + 1)  # the backend sends nothing more
    assert backend.aborted and not detached(s)
    assert b.closing  # the waiter is reset, as the fetcher's client would be
    assert flt.stats.stored == 0


def test_a_paused_backend_is_read_again_when_its_slow_client_leaves(make_session: Make,
                                                                    store: CacheStore) -> None:
    s, _ = cached_session(make_session, store)
    a = s.client()
    backend = s.open(a, GET_S)
    backend.send(HEAD_CHUNKED + chunk(b"first "))
    a.protocol.pause_writing()  # A is behind: the backend is not read meanwhile
    assert not backend.reading
    a.reset()
    assert backend.reading  # nothing paces the detached fetch now: the store collects at the backend's pace


def test_a_detached_fetch_goes_at_the_pace_of_its_slowest_waiter(make_session: Make, store: CacheStore) -> None:
    timers = Timers()
    s, _ = cached_session(make_session, store, timers)
    a, b, backend = fetch_with_waiter(s)
    c = s.client(ip="192.0.2.3")
    c.send(GET_S)  # a second waiter joins after the head: the body so far, then the rest
    timers.run_now()
    assert c.take().endswith(b"first \r\n")
    b.protocol.pause_writing()  # B is behind while A still paces the fetch: B's share is buffered instead
    assert backend.reading
    a.reset()  # from now on the slowest waiter paces it: B is behind
    assert len(detached(s)) == 1 and not backend.reading
    c.protocol.pause_writing()
    b.protocol.resume_writing()
    assert not backend.reading  # C is behind now
    c.protocol.resume_writing()
    assert backend.reading
    c.protocol.pause_writing()
    c.reset()  # a waiter that leaves no longer holds the fetch back
    assert backend.reading
    backend.send(chunk(b"second") + b"0\r\n\r\n")
    assert b.take() == chunk(b"second") + b"0\r\n\r\n"


def test_without_waiters_behind_a_detached_fetch_reads_at_the_backends_pace(make_session: Make,
                                                                             store: CacheStore) -> None:
    s, _ = cached_session(make_session, store)
    a, _, backend = fetch_with_waiter(s)
    a.protocol.pause_writing()  # A is behind: the backend waits for it
    assert not backend.reading
    a.reset()  # no waiter is behind: the store and B take it as fast as it comes
    assert backend.reading
