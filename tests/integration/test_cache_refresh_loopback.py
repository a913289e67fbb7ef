"""Stale-while-revalidate on a running rsp with two workers and a counting backend: a stale entry is served at
once while one background request (per machine) refreshes it, and the request after it is a fresh hit."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support.http_backends import HttpBackend, ReceivedRequest, Reply
from support.http_client import get
from support.waiting import eventually

Run = Callable[..., Any]
Start = Callable[..., Any]
Port = Callable[..., int]
# Stale clients sent at once: with two workers accepting from one queue, both see some.
CLIENTS = 20
# How long the backend takes to answer the refresh: far longer than a stale answer may take.
REFRESH_DELAY = 1.5


def config(port: int, backend: int, store: Path) -> str:
    return (f'listen = {{ {{ address = "127.0.0.1", port = {port}, mode = "http", cache = "pages" }} }}\n'
            f'backends = {{ "127.0.0.1:{backend}" }}\n'
            'http = { access_log = "off" }\n'
            f'caches = {{ pages = {{ size = "16m", path = "{store}" }} }}\n'
            'workers = 2\n')


def test_stale_is_served_at_once_while_one_background_request_refreshes_it(
        run_rsp: Run, start_backend: Start, free_port: Port, tmp_path: Path) -> None:
    answered = [0]
    lock = threading.Lock()

    def handler(req: ReceivedRequest) -> Reply:
        with lock:
            answered[0] += 1
            n = answered[0]
        if n == 1:
            return Reply(headers=[("Cache-Control", "max-age=1, stale-while-revalidate=60"), ("ETag", '"v1"')],
                         body=b"first\n")
        # The refresh: slow, and a new version fresh for long.
        return Reply(headers=[("Cache-Control", "max-age=300"), ("ETag", '"v2"')], body=b"second\n",
                     delay=REFRESH_DELAY)

    backend = start_backend(HttpBackend, handler=handler)
    port = free_port()
    run_rsp(config(port, backend.port, tmp_path / "pages.lmdb"))
    assert get(port, "/page").header("X-Cache") == "MISS"
    time.sleep(1.2)  # past max-age=1: stale, within stale-while-revalidate

    results: list[tuple[str | None, bytes, float]] = []

    def client() -> None:
        began = time.monotonic()
        response = get(port, "/page")
        with lock:
            results.append((response.header("X-Cache"), response.body, time.monotonic() - began))

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert [(label, body) for label, body, _ in results] == [("STALE", b"first\n")] * CLIENTS
    # Nobody waited for the refresh the backend takes REFRESH_DELAY to answer.
    assert max(took for _, _, took in results) < REFRESH_DELAY
    eventually(lambda: len(backend.requests) == 2, timeout=10)
    refresh = backend.requests[1]
    assert (refresh.method, refresh.target, refresh.header("If-None-Match")) == ("GET", "/page", '"v1"')
    # Once stored, the refreshed response is a fresh hit (in either worker).
    eventually(lambda: get(port, "/page").header("X-Cache") == "HIT", timeout=10)
    labels = {(r.header("X-Cache"), r.body) for r in (get(port, "/page") for _ in range(10))}
    assert labels == {("HIT", b"second\n")}
    assert len(backend.requests) == 2
