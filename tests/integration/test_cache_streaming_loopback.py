"""A coalesced miss streams to its waiters on a running rsp: a backend sends a cacheable body in two parts, the
second only when the test says; a second client asking for the same URI meanwhile gets the first part before
the backend sent the second. One worker: waiters in another worker wait for the complete object (docs/cache.md)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from support.two_part_backend import FIRST, LAST, WAIT, TwoPartBackend, cache_config, read_until, request

Run = Callable[..., Any]
Port = Callable[..., int]


def test_a_waiter_gets_the_first_part_before_the_backend_sends_the_last(run_rsp: Run, free_port: Port,
                                                                         tmp_path: Path) -> None:
    backend = TwoPartBackend()
    try:
        port = free_port()
        run_rsp(cache_config(port, backend, tmp_path / "pages.lmdb"))
        fetcher = request(port)
        assert backend.received.wait(WAIT)  # the first client's miss is at the backend, holding the URI
        waiter = request(port)
        got = read_until(waiter, FIRST)
        assert not backend.release.is_set()  # the backend has not sent the last part
        assert got.startswith(b"HTTP/1.1 200 ")
        head = got.split(b"\r\n\r\n", 1)[0].lower()
        assert b"x-cache: hit" in head and b"content-length: %d" % (len(FIRST) + len(LAST)) in head
        backend.release.set()
        assert read_until(waiter, LAST, got).endswith(FIRST + LAST)
        mine = read_until(fetcher, LAST)
        assert b"x-cache: miss" in mine.lower() and mine.endswith(FIRST + LAST)
        fetcher.close()
        waiter.close()
        assert backend.requests == 1
    finally:
        backend.stop()
