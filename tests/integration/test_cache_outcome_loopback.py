"""A coalesced validation's answer reaches the waiters of ANOTHER worker as it reaches the fetcher's worker
(rsp.cache.spool's outcome records, rsp.cache.wakeups), on a running rsp with two workers and a backend that
answers the conditional request late:

- a backend error (503) with `stale-if-error`: the waiters of the other worker get the stale page at once,
  as the fetcher does, and the backend sees ONE conditional request (each of them used to send its own);
- a 304: the waiters of the other worker get the freshened page (HIT) and the backend sees ONE conditional
  request. How soon they get it (woken by the fetcher's outcome rather than at their next poll of the store,
  up to 50 ms later) is printed, not asserted: a time bound in a loopback test fails on a loaded machine; the
  mechanism is asserted without a clock in tests/cache/test_spool_outcomes.py and test_wakeups.py.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from master.master_support import serving_pids
from support.cache_configs import config
from support.http_backends import HttpBackend, ReceivedRequest, Reply
from support.http_client import get
from support.socket_owner import split_between_workers
from support.waiting import eventually

Run = Callable[..., Any]
Start = Callable[..., Any]
Port = Callable[..., int]
WAIT = 10.0
# The backend answers the conditional request this late, so that the waiters' requests arrive while it is
# under way (their connections are made before; sending them takes POLL_MAX).
SLOW = 1.0
FAR_WAITERS = 8
POLL_MAX = 0.05  # (rsp.cache.coalescing's: how far apart a waiter of another worker polls, at most)
REQUEST = b"GET /p HTTP/1.1\r\nHost: example.com\r\n\r\n"


def backend_answering(status: int) -> Callable[[ReceivedRequest], Reply]:
    """A page fresh for one second with an ETag; its conditional request gets `status` (304 or 503), late."""
    def handler(req: ReceivedRequest) -> Reply:
        if req.header("If-None-Match") == '"v1"':
            if status == 304:
                return Reply(status=304, reason="Not Modified", content_length=False, delay=SLOW,
                             headers=[("ETag", '"v1"'), ("Cache-Control", "max-age=60"), ("X-Fresh", "yes")])
            return Reply(status=503, reason="Service Unavailable", body=b"down\n", delay=SLOW)
        return Reply(headers=[("Content-Type", "text/plain"), ("ETag", '"v1"'),
                              ("Cache-Control", "max-age=1, stale-if-error=600")], body=b"the page\n")
    return handler


def read_response(sock: socket.socket) -> tuple[bytes, bytes, float]:
    """The head and body of one response with a Content-Length, and when its last byte arrived."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before the head: {data!r}"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = next(int(line.split(b":", 1)[1]) for line in head.lower().split(b"\r\n")
                  if line.startswith(b"content-length:"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed in the body"
        body += chunk
    return head.lower(), body, time.monotonic()


def stale_page_with_waiters(run_rsp: Run, start_backend: Start, free_port: Port, tmp_path: Path, status: int,
                            ) -> tuple[HttpBackend, tuple[bytes, bytes, float], list[tuple[bytes, bytes, float]]]:
    """The page stored, then stale; one request sends the conditional request, FAR_WAITERS requests from the
    other worker wait for it; the fetcher's response and theirs."""
    backend = start_backend(HttpBackend, handler=backend_answering(status))
    port = free_port()
    admin = str(tmp_path / "admin.sock")
    run_rsp(config(port, backend.port, tmp_path / "pages.lmdb", admin))
    pids = eventually(lambda: (p := serving_pids(admin)) and len(p) == 2 and p, timeout=WAIT)
    assert get(port, "/p").header("X-Cache") == "MISS"
    stale_at = time.monotonic() + 1.5  # (max-age=1)
    (fetcher,), far = split_between_workers(port, pids, 1, FAR_WAITERS)  # (meanwhile: nothing under way yet)
    answers: list[tuple[bytes, bytes, float]] = []
    lock = threading.Lock()

    def wait_for(sock: socket.socket) -> None:
        answer = read_response(sock)
        with lock:
            answers.append(answer)

    try:
        time.sleep(max(0.0, stale_at - time.monotonic()))
        fetcher.sendall(REQUEST)
        eventually(lambda: any(r.header("If-None-Match") for r in backend.requests), timeout=WAIT)
        for sock in far:
            sock.sendall(REQUEST)
            time.sleep(POLL_MAX / FAR_WAITERS)
        threads = [threading.Thread(target=wait_for, args=(sock,)) for sock in far]
        for thread in threads:
            thread.start()
        mine = read_response(fetcher)
        for thread in threads:
            thread.join(WAIT)
    finally:
        for sock in [fetcher, *far]:
            sock.close()
    assert len(answers) == FAR_WAITERS
    return backend, mine, answers


def conditional_requests(backend: HttpBackend) -> int:
    return sum(1 for r in backend.requests if r.header("If-None-Match"))


def test_a_backend_error_gives_the_other_workers_waiters_the_stale_page_with_one_request(
        run_rsp: Run, start_backend: Start, free_port: Port, tmp_path: Path) -> None:
    backend, mine, answers = stale_page_with_waiters(run_rsp, start_backend, free_port, tmp_path, 503)
    for head, body, _ in [mine, *answers]:
        assert head.startswith(b"http/1.1 200 ") and b"x-cache: stale" in head and body == b"the page\n", head
    assert conditional_requests(backend) == 1 and len(backend.requests) == 2


def test_a_304_answers_the_other_workers_waiters_when_it_answers_the_fetcher(
        run_rsp: Run, start_backend: Start, free_port: Port, tmp_path: Path) -> None:
    backend, mine, answers = stale_page_with_waiters(run_rsp, start_backend, free_port, tmp_path, 304)
    assert b"x-cache: revalidated" in mine[0] and mine[1] == b"the page\n"
    for head, body, _ in answers:
        assert b"x-cache: hit" in head and b"x-fresh: yes" in head and body == b"the page\n", head
    assert conditional_requests(backend) == 1
    late = max(at for _, _, at in answers) - mine[2]
    print(f"the last waiter of the other worker: {late * 1000:.1f} ms after the fetcher")
