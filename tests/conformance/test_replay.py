"""The replay machinery on real loopback sockets: RecordingBackend, replay() and its verdicts.

rsp's HTTP mode is judged end to end by the last test.
The others put a deliberately naive relay in front of the backend to show that the verdict catches
what it must: a relay that passes bytes through verbatim forwards TE+CL and duplicate Content-Length
(invalid forwarded HTTP), and a relay that hands the client only the first response shows more requests
forwarded than answered.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from conformance import corpora
from conformance.replay import POLL, RecordingBackend, replay


@pytest.fixture
def backend() -> Iterator[RecordingBackend]:
    with RecordingBackend() as server:
        yield server


class Relay:
    """A one-connection-at-a-time TCP relay on 127.0.0.1 standing in for a (bad) proxy.

    first_response_only: hand the client the backend's first response and then close (a proxy that took
    the whole input for one request).
    """

    def __init__(self, backend_port: int, *, first_response_only: bool = False) -> None:
        self.backend_port = backend_port
        self.first_response_only = first_response_only
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(POLL)
        self.port = self.listener.getsockname()[1]
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Relay:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_flag.set()
        self.thread.join(timeout=5.0)
        self.listener.close()

    def _run(self) -> None:
        while not self.stop_flag.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            with client, socket.create_connection(("127.0.0.1", self.backend_port), timeout=5.0) as upstream:
                self._pump(client, upstream)

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        client.settimeout(POLL)
        upstream.settimeout(POLL)
        to_client = bytearray()
        deadline = time.monotonic() + 5.0
        while not self.stop_flag.is_set() and time.monotonic() < deadline:
            for source, sink in ((client, upstream), (upstream, client)):
                try:
                    data = source.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    return
                if source is upstream and self.first_response_only:
                    to_client += data
                    end = to_client.find(b"\r\n\r\n")
                    if end >= 0 and len(to_client) >= end + 4 + 2:  # our backend's body is 2 bytes
                        client.sendall(bytes(to_client[: end + 4 + 2]))
                        return
                    continue
                sink.sendall(data)


GET = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"


def test_recording_backend_records_and_answers_each_request(backend: RecordingBackend) -> None:
    backend_start = backend.mark()
    raw = GET + b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc" + b"HEAD /h HTTP/1.1\r\nHost: a\r\n\r\n"
    with socket.create_connection(("127.0.0.1", backend.port), timeout=5.0) as sock:
        sock.sendall(raw)
        received = b""
        deadline = time.monotonic() + 5.0
        while received.count(b"HTTP/1.1 200 OK") < 3 and time.monotonic() < deadline:
            received += sock.recv(65536)
    assert received.count(b"HTTP/1.1 200 OK") == 3
    assert received.endswith(b"X-Request-Number: 3\r\nContent-Length: 2\r\n\r\n")  # HEAD: no body
    deadline = time.monotonic() + 5.0
    while not backend.idle_for(0.1) and time.monotonic() < deadline:
        time.sleep(POLL)
    [(conn, before)] = backend.since(backend_start)
    assert before == 0 and bytes(conn.data) == raw
    assert conn.answered == 3 and conn.problem is None


def test_recording_backend_stops_answering_invalid_http(backend: RecordingBackend) -> None:
    backend_start = backend.mark()
    with socket.create_connection(("127.0.0.1", backend.port), timeout=5.0) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx")
        sock.settimeout(5.0)
        assert sock.recv(65536) == b""  # closed without an answer
    [(conn, _)] = backend.since(backend_start)
    assert conn.problem == "more than one Content-Length" and conn.closed_by_us


def test_replay_passes_a_clean_request_through_a_verbatim_relay(backend: RecordingBackend) -> None:
    with Relay(backend.port) as relay:
        verdict = replay("127.0.0.1", relay.port, GET, backend, quiet=0.2)
    assert verdict.ok, verdict
    assert (verdict.forwarded, verdict.answered, verdict.statuses) == (1, 1, (200,))
    assert verdict.forwarded_requests[0].target == b"/"


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "Transfer-Encoding and Content-Length together",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 31\r\n\r\n",
            "more than one Content-Length",
        ),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0_2e\r\n\r\n", "invalid chunk size"),
    ],
)
def test_replay_flags_smuggling_a_verbatim_relay_forwards(backend: RecordingBackend, raw: bytes, problem: str) -> None:
    with Relay(backend.port) as relay:
        verdict = replay("127.0.0.1", relay.port, raw, backend, quiet=0.2)
    assert not verdict.ok
    assert any(problem in text for text in verdict.problems), verdict


def test_replay_flags_more_requests_forwarded_than_answered(backend: RecordingBackend) -> None:
    with Relay(backend.port, first_response_only=True) as relay:
        verdict = replay("127.0.0.1", relay.port, GET + GET, backend, quiet=0.2)
    assert not verdict.ok
    assert (verdict.forwarded, verdict.answered) == (2, 1)
    assert verdict.problems == ("backends received 2 requests, the client got 1 answers",)


def _http_config(port: int, backend_port: int) -> str:
    return (
        f'listen = {{ {{ address = "127.0.0.1", port = {port}, mode = "http", pool = "web" }} }}\n'
        f'pools = {{ web = {{ backends = {{ "127.0.0.1:{backend_port}" }} }} }}\n'
        "workers = 2\n"
    )


def test_rsp_forwards_no_smuggling_from_the_corpora(
    backend: RecordingBackend, run_rsp: Callable[..., Any], free_port: Callable[..., int]
) -> None:
    """Every Severe desync-guardian case and every HTTP Garden payload, replayed through rsp."""
    proxy = run_rsp(_http_config(free_port(), backend.port))
    payloads = [(case.ident, case.raw) for case in corpora.load_desync_guardian() if case.tier == "Severe"]
    payloads += [(t.ident, t.payload) for t in corpora.load_trophies() if t.payload is not None]
    failures = []
    for ident, raw in payloads:
        verdict = replay("127.0.0.1", proxy.port, raw, backend, quiet=0.15)
        if not verdict.ok:
            failures.append(f"{ident}: {verdict}")
    clean = replay("127.0.0.1", proxy.port, GET, backend)
    assert clean.ok and clean.statuses == (200,), clean
    assert failures == []


def test_mark_attributes_requests_on_a_reused_connection(backend: RecordingBackend) -> None:
    """A proxy reuses upstream connections: what follows a mark counts even on an old connection."""
    with socket.create_connection(("127.0.0.1", backend.port), timeout=5.0) as sock:
        sock.sendall(GET)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")
        middle = backend.mark()
        assert backend.since(middle) == []
        sock.sendall(GET)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")
        [(conn, before)] = backend.since(middle)
        assert before == 1 and conn.answered == 2
