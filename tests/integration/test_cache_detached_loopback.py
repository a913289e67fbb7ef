"""A client that goes away does not abort a fetch others wait for (issue 21 item 8), on a running rsp: the
first client disconnects (a reset) after the head, a second client waiting for the same URI still gets the
whole body, and a third request afterwards is a hit that the backend never sees (it counts its requests)."""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support.two_part_backend import FIRST, LAST, WAIT, TwoPartBackend, cache_config, read_until, request

Run = Callable[..., Any]
Port = Callable[..., int]


def reset(sock: socket.socket) -> None:
    """Close with a reset (SO_LINGER 0): rsp learns at once that the client is gone, as from a client that
    crashed or gave up, instead of a half-close it would still answer."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_a_waiter_gets_the_whole_body_after_the_fetchers_client_left(run_rsp: Run, free_port: Port,
                                                                       tmp_path: Path) -> None:
    backend = TwoPartBackend()
    try:
        port = free_port()
        rsp = run_rsp(cache_config(port, backend, tmp_path / "pages.lmdb"))
        fetcher = request(port)
        assert backend.received.wait(WAIT)  # the first client's miss is at the backend, holding the URI
        waiter = request(port)
        got = read_until(waiter, FIRST)
        assert b"x-cache: hit" in got.lower()  # streaming from the first client's fetch
        assert b"x-cache: miss" in read_until(fetcher, FIRST).lower()
        reset(fetcher)  # the fetcher's client goes away after the head and the first part
        assert rsp.wait_for_stderr("went away; its request GET", WAIT) is not None  # rsp saw it go
        backend.release.set()
        assert read_until(waiter, LAST, got).endswith(FIRST + LAST)  # the whole body all the same
        waiter.close()
        third = request(port)
        hit = read_until(third, LAST)
        third.close()
        assert b"x-cache: hit" in hit.lower() and hit.endswith(FIRST + LAST)
        assert backend.requests == 1  # the hit never reached the backend: the detached fetch stored it
    finally:
        backend.stop()
