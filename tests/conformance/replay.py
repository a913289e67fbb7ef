"""Replay raw requests through a running proxy and judge what it forwarded.

    with RecordingBackend() as backend:          # a real TCP server on 127.0.0.1
        ... start the proxy in front of backend.port ...
        verdict = replay("127.0.0.1", proxy_port, raw_request, backend)
        assert verdict.ok, verdict.problems

`RecordingBackend` records every byte each connection receives, reads it with the strict `judge` module,
and answers each complete request with a tiny 200 (closing after `Connection: close`, or after invalid
HTTP, as a strict server would). `replay()` sends the raw bytes on a fresh client connection, reads
what comes back until the proxy closes or goes quiet, and judges the exchange. It fails when:
- a backend connection received invalid HTTP (which covers Transfer-Encoding with Content-Length, two
  Content-Length fields, a coding other than chunked, a broken chunked body);
- a backend connection holds an unfinished request and is still open `grace` seconds after the client
  went away (the next client's request would be appended to it);
- the backends got more requests than the client got final responses (the smuggling signature: a
  request the proxy did not see as one reached a backend);
- the client got something that is not a sequence of HTTP responses.
Everything is bounded: socket timeouts, a total deadline per replay, and a quiet period that ends reads.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType

from conformance.judge import Message, judge_requests, judge_responses

RESPONSE_BODY = b"ok"
RECV_SIZE = 65536
POLL = 0.05  # how often blocked threads look at their stop flag, seconds


@dataclass
class BackendConnection:
    """One connection the proxy opened to the backend."""

    data: bytearray = field(default_factory=bytearray)
    answered: int = 0
    closed_by_peer: bool = False  # the proxy closed (or reset) it
    closed_by_us: bool = False  # the backend closed it: Connection: close, or invalid HTTP
    problem: str | None = None
    last_activity: float = field(default_factory=time.monotonic)

    @property
    def open(self) -> bool:
        return not (self.closed_by_peer or self.closed_by_us)


@dataclass(frozen=True)
class Mark:
    connections: int
    sizes: tuple[int, ...]
    messages: tuple[int, ...]


class RecordingBackend:
    """A threaded HTTP/1.1 backend on 127.0.0.1 that records everything it receives."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, 0))
        self._listener.listen(64)
        self._listener.settimeout(POLL)
        self.port: int = self._listener.getsockname()[1]
        self.connections: list[BackendConnection] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> RecordingBackend:
        thread = threading.Thread(target=self._accept_loop, name=f"recording-backend-{self.port}", daemon=True)
        self._threads.append(thread)
        thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._threads:
            self._threads[0].join(timeout=5.0)  # the accept loop: no connection threads start after it
        for thread in self._threads[1:]:
            thread.join(timeout=5.0)
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                sock.close()

    def __enter__(self) -> RecordingBackend:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # -- what was received --------------------------------------------------------------------------

    def mark(self) -> Mark:
        """Where every connection stands now: what arrives later belongs to what comes next (a proxy
        reuses its upstream connections, so new requests may land on old connections)."""
        with self._lock:
            return Mark(
                len(self.connections),
                tuple(len(c.data) for c in self.connections),
                tuple(c.answered for c in self.connections),
            )

    def since(self, mark: Mark) -> list[tuple[BackendConnection, int]]:
        """Connections that received bytes after `mark`, each with its count of requests before it."""
        with self._lock:
            active = []
            for index, conn in enumerate(self.connections):
                if index >= mark.connections:
                    active.append((conn, 0))
                elif len(conn.data) > mark.sizes[index]:
                    active.append((conn, mark.messages[index]))
            return active

    def idle_for(self, seconds: float) -> bool:
        now = time.monotonic()
        with self._lock:
            return all(now - conn.last_activity >= seconds for conn in self.connections)

    # -- serving ------------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn = BackendConnection()
            with self._lock:
                self.connections.append(conn)
                self._sockets.append(sock)
            thread = threading.Thread(target=self._serve, args=(sock, conn), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket, conn: BackendConnection) -> None:
        sock.settimeout(POLL)
        with sock:
            while not self._stop.is_set():
                try:
                    chunk = sock.recv(RECV_SIZE)
                except TimeoutError:
                    continue
                except OSError:
                    chunk = b""
                with self._lock:
                    conn.last_activity = time.monotonic()
                    if not chunk:
                        conn.closed_by_peer = True
                        return
                    conn.data += chunk
                    judgement = judge_requests(bytes(conn.data))
                    fresh = judgement.messages[conn.answered :]
                    conn.answered = len(judgement.messages)
                    if judgement.problem is not None and not judgement.incomplete:
                        conn.problem = judgement.problem
                close = conn.problem is not None
                replies = []
                for message in fresh:
                    replies.append(_reply(message, conn.answered))
                    if any(b"close" in v.lower() for v in message.values(b"connection")):
                        close = True
                        break
                try:
                    if replies:
                        sock.sendall(b"".join(replies))
                    if close:
                        conn.closed_by_us = True
                        return
                except OSError:
                    conn.closed_by_peer = True
                    return


def _reply(message: Message, number: int) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Request-Number: %d\r\nContent-Length: %d\r\n\r\n" % (
        number,
        len(RESPONSE_BODY),
    )
    return head if message.method == b"HEAD" else head + RESPONSE_BODY


@dataclass(frozen=True)
class Verdict:
    ok: bool
    problems: tuple[str, ...]
    forwarded: int  # complete requests the backends received
    answered: int  # final responses the client received
    statuses: tuple[int, ...]  # status codes the client received, in order
    forwarded_requests: tuple[Message, ...]
    client_closed: bool  # the proxy closed the client connection

    def __str__(self) -> str:
        state = "ok" if self.ok else "FAIL " + "; ".join(self.problems)
        return f"{state} (forwarded {self.forwarded}, answered {self.answered}, statuses {list(self.statuses)})"


def _read_until_quiet(sock: socket.socket, deadline: float, quiet: float) -> tuple[bytes, bool]:
    received = bytearray()
    last = time.monotonic()
    sock.settimeout(POLL)
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(RECV_SIZE)
        except TimeoutError:
            if time.monotonic() - last >= quiet:
                return bytes(received), False
            continue
        except OSError:
            return bytes(received), True
        if not chunk:
            return bytes(received), True
        received += chunk
        last = time.monotonic()
    return bytes(received), False


def replay(
    proxy_host: str,
    proxy_port: int,
    raw_request: bytes,
    recording_backend: RecordingBackend,
    *,
    timeout: float = 5.0,
    quiet: float = 0.3,
    grace: float = 1.0,
) -> Verdict:
    """Send `raw_request` through the proxy on a new connection and judge the exchange (see module doc).

    timeout bounds the whole replay; quiet is how long without a byte ends the read (the proxy may
    rightly keep the connection open when the request was valid); grace is how long the proxy has,
    after the client closed, to close a backend connection it left in the middle of a request.
    """
    deadline = time.monotonic() + timeout
    mark = recording_backend.mark()
    with socket.create_connection((proxy_host, proxy_port), timeout=timeout) as sock:
        try:
            sock.sendall(raw_request)
        except OSError:
            pass  # the proxy may refuse and close before reading everything; what it answered counts
        received, closed = _read_until_quiet(sock, deadline, quiet)
    # The client has gone: give the proxy `grace` to close upstream connections left mid-request.
    settle = min(deadline, time.monotonic() + grace)
    while time.monotonic() < settle:
        if recording_backend.idle_for(quiet) and not any(
            conn.open and judge_requests(bytes(conn.data)).incomplete for conn, _ in recording_backend.since(mark)
        ):
            break
        time.sleep(POLL)
    connections = recording_backend.since(mark)

    problems: list[str] = []
    forwarded: list[Message] = []
    for index, (conn, before) in enumerate(connections):
        judgement = judge_requests(bytes(conn.data))
        forwarded += judgement.messages[before:]
        if judgement.problem is not None and not judgement.incomplete:
            problems.append(f"backend connection {index} received invalid HTTP: {judgement.problem}")
        elif judgement.incomplete and conn.open:
            problems.append(f"backend connection {index} is open with an unfinished request in it")
    methods = [message.method for message in forwarded]
    client = judge_responses(received, methods, closed)
    if client.problem is not None and not client.incomplete:
        problems.append(f"the client received invalid HTTP: {client.problem}")
    statuses = tuple(message.status for message in client.messages)
    answered = sum(1 for status in statuses if status >= 200 or status == 101)
    if len(forwarded) > answered:
        problems.append(f"backends received {len(forwarded)} requests, the client got {answered} answers")
    return Verdict(
        ok=not problems,
        problems=tuple(problems),
        forwarded=len(forwarded),
        answered=answered,
        statuses=statuses,
        forwarded_requests=tuple(forwarded),
        client_closed=closed,
    )
