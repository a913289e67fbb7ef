"""A backend that sends a cacheable body in two parts, the second only when the test says, and the rsp config
that caches it: for the loopback tests of coalesced streaming and of a fetch whose client went away."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

FIRST = b"first part of the body;"
LAST = b" and the last part\n"
WAIT = 10.0  # the longest any step may take before the test fails


class TwoPartBackend:
    """A backend on loopback that answers each request with a head and FIRST, then LAST once `release` is set;
    it counts the requests it received."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.1)  # the accept loop checks `stopping` this often
        self.port = self.sock.getsockname()[1]
        self.requests = 0
        self.received = threading.Event()
        self.release = threading.Event()
        self.stopping = threading.Event()
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        data = b""
        conn.settimeout(WAIT)
        try:
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
            self.requests += 1
            self.received.set()
            conn.sendall(b"HTTP/1.1 200 OK\r\nCache-Control: max-age=300\r\nContent-Type: text/plain\r\n"
                         b"Content-Length: %d\r\n\r\n" % (len(FIRST) + len(LAST)) + FIRST)
            if self.release.wait(WAIT) and not self.stopping.is_set():
                conn.sendall(LAST)
            while conn.recv(4096):  # keep-alive: held until rsp or the test closes it
                pass
        except OSError:
            return

    def stop(self) -> None:
        self.stopping.set()
        self.release.set()
        self.thread.join(WAIT)
        self.sock.close()
        for conn in self.conns:
            conn.close()


def read_until(sock: socket.socket, want: bytes, have: bytes = b"") -> bytes:
    while want not in have:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before {want!r}; got {have!r}"
        have += chunk
    return have


def request(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    sock.sendall(b"GET /slow HTTP/1.1\r\nHost: example.com\r\n\r\n")
    return sock


def cache_config(port: int, backend: TwoPartBackend, store: Path) -> str:
    """One HTTP listener on `port` caching into the LMDB file `store`, in front of `backend`; one worker
    (waiters in another worker wait for the complete object, docs/cache.md)."""
    return (f'listen = {{ {{ address = "127.0.0.1", port = {port}, mode = "http", cache = "pages" }} }}\n'
            f'backends = {{ "127.0.0.1:{backend.port}" }}\n'
            'http = { access_log = "off" }\n'
            f'caches = {{ pages = {{ size = "16m", path = "{store}" }} }}\n'
            'workers = 1\n')


def assert_waiter_streams(backend: TwoPartBackend, fetcher: socket.socket, waiter: socket.socket) -> None:
    """`waiter` (its request sent while `fetcher`'s miss is at `backend`) gets the first part, as a HIT with the
    whole length announced, before the backend sends the last; then both get the whole body, the fetcher as a
    MISS; the backend saw one request. Closes both sockets."""
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

