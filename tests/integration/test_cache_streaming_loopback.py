"""A coalesced miss streams to its waiters on a running rsp: a backend sends a cacheable body in two parts, the
second only when the test says; a second client asking for the same URI meanwhile gets the first part before
the backend sent the second. One worker: test_cache_spool_loopback.py has the waiter in another worker."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from support.two_part_backend import WAIT, TwoPartBackend, assert_waiter_streams, cache_config, request

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
        assert_waiter_streams(backend, fetcher, waiter)
    finally:
        backend.stop()
