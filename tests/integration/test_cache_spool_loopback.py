"""A coalesced miss streams to a waiter in ANOTHER worker on a running rsp with two workers (rsp.cache.spool): a
backend sends a cacheable body in two parts, the second only when the test says; a client whose connection the
other worker accepted, asking for the same URI meanwhile, gets the first part before the backend sent the
second, and the backend saw one request."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from master.master_support import serving_pids
from support.socket_owner import in_other_worker, owner
from support.two_part_backend import WAIT, TwoPartBackend, assert_waiter_streams, request
from support.waiting import eventually

Run = Callable[..., Any]
Port = Callable[..., int]


def config(port: int, backend: TwoPartBackend, store: Path, sock: str) -> str:
    return (f'listen = {{ {{ address = "127.0.0.1", port = {port}, mode = "http", cache = "pages" }} }}\n'
            f'backends = {{ "127.0.0.1:{backend.port}" }}\n'
            'http = { access_log = "off" }\n'
            f'caches = {{ pages = {{ size = "16m", path = "{store}" }} }}\n'
            f'workers = 2\nadmin_socket = "{sock}"\n')


def test_a_waiter_in_another_worker_gets_the_first_part_before_the_backend_sends_the_last(
        run_rsp: Run, free_port: Port, tmp_path: Path) -> None:
    backend = TwoPartBackend()
    try:
        port = free_port()
        sock = str(tmp_path / "admin.sock")
        run_rsp(config(port, backend, tmp_path / "pages.lmdb", sock))
        pids = eventually(lambda: (p := serving_pids(sock)) and len(p) == 2 and p, timeout=WAIT)
        fetcher = request(port)
        assert backend.received.wait(WAIT)  # the first client's miss is at the backend, holding the URI
        fetching = eventually(lambda: owner(fetcher, pids), timeout=WAIT)
        waiter = in_other_worker(port, pids, fetching)
        waiter.sendall(b"GET /slow HTTP/1.1\r\nHost: example.com\r\n\r\n")
        assert_waiter_streams(backend, fetcher, waiter)
        assert sorted(p.name for p in (tmp_path / "pages.lmdb-spool").iterdir()) == ["wanted"]  # spool removed
    finally:
        backend.stop()
