"""Coalesced revalidation on a running rsp with two workers: concurrent requests for a stored response that
must be validated (`Cache-Control: no-cache`) make one conditional request to a backend that counts them; the
one that sent it is REVALIDATED, the others (in both workers: the claim mark is the store's) HIT."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support.cache_configs import CONNECTIONS, config
from support.http_backends import HttpBackend, ReceivedRequest, Reply
from support.http_client import get

Run = Callable[..., Any]
Start = Callable[..., Any]
Port = Callable[..., int]
# The backend's 304 comes this late, so that every client's request arrives while the validation is under way
# (40 new connections on a loaded 2-core CI machine take well under a second; the margin is for a busy one).
SLOW_304 = 3.0


def validated(req: ReceivedRequest) -> Reply:
    """A page stored but validated before each use; the conditional request for its ETag gets a slow 304."""
    if req.header("If-None-Match") == '"v1"':
        return Reply(status=304, reason="Not Modified", headers=[("ETag", '"v1"'), ("Cache-Control", "no-cache")],
                     content_length=False, delay=SLOW_304)
    return Reply(headers=[("Content-Type", "text/plain"), ("Cache-Control", "no-cache"), ("ETag", '"v1"')],
                 body=b"validated page\n")


def test_concurrent_requests_for_a_stale_page_make_one_conditional_request(run_rsp: Run, start_backend: Start,
                                                                          free_port: Port, tmp_path: Path) -> None:
    backend = start_backend(HttpBackend, handler=validated)
    port = free_port()
    run_rsp(config(port, backend.port, tmp_path / "pages.lmdb", str(tmp_path / "admin.sock")))
    assert get(port, "/v").header("X-Cache") == "MISS"
    results: list[tuple[int, bytes, str | None]] = []
    lock = threading.Lock()

    def client() -> None:
        response = get(port, "/v")
        with lock:
            results.append((response.status, response.body, response.header("X-Cache")))

    threads = [threading.Thread(target=client) for _ in range(CONNECTIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted({(status, body) for status, body, _ in results}) == [(200, b"validated page\n")]
    labels = sorted(label or "" for _, _, label in results)
    assert labels == ["HIT"] * (CONNECTIONS - 1) + ["REVALIDATED"], labels
    conditional = [r for r in backend.requests if r.header("If-None-Match") == '"v1"']
    assert len(conditional) == 1 and len(backend.requests) == 2
