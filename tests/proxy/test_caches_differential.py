"""The proxy's head-output caches on and off give the same bytes on the wire.

One scenario is run twice, with HttpProxy(caches=True) and caches=False, and every byte each side (each
client, the backend) received is compared. It drives ONE pooled backend connection through every kind of
client the response cache must tell apart: HTTP/1.1, HTTP/1.0 with and without keep-alive, and a request
answered during drain; with repeated heads, heads differing only in their target, and heads differing
only in one volatile field (a request id), chunked and sized bodies.
"""

from __future__ import annotations

from support.fake_session import FakeSession, FakeTransport

OK = b"HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 2\r\nX-Request-Id: %d\r\n\r\nok"
CHUNKED = b"HTTP/1.1 200 OK\r\nServer: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
# Not forwardable verbatim (a Content-Length with a leading zero is rewritten): the general path.
ODD = b"HTTP/1.1 200 OK\r\nContent-Length: 02\r\n\r\nok"


def get(target: bytes, version: bytes = b"1.1", extra: bytes = b"") -> bytes:
    return b"GET " + target + b" HTTP/" + version + b"\r\nHost: example\r\n" + extra + b"\r\n"


class Scenario:
    def __init__(self, caches: bool) -> None:
        self.session = FakeSession(caches=caches)
        self.backend: FakeTransport | None = None
        self.clients: list[FakeTransport] = []
        self.received: list[bytes] = []  # per exchange: (what the backend got, what the client got)

    def exchange(self, client: FakeTransport, request: bytes, response: bytes, drain: bool = False) -> None:
        client.send(request)
        if self.backend is None:
            self.backend = self.session.accept()
        forwarded = self.backend.take()
        if drain:
            self.session.drain()
        self.backend.send(response)
        self.received += [forwarded, client.take()]

    def run(self) -> list[bytes]:
        s = self.session
        try:
            http11 = s.client(port=40001)
            for i in (1, 1, 2, 2):  # repeated heads, then a new request id (the parser's near memo)
                self.exchange(http11, get(b"/a"), OK % i)
            self.exchange(http11, get(b"/b"), OK % 2)  # only the target differs
            self.exchange(http11, get(b"/b"), CHUNKED)
            self.exchange(http11, get(b"/b"), ODD)
            self.exchange(http11, get(b"/b"), ODD)
            http10_keep = s.client(port=40002)
            self.exchange(http10_keep, get(b"/a", b"1.0", b"Connection: keep-alive\r\n"), OK % 2)
            self.exchange(http10_keep, get(b"/a", b"1.0", b"Connection: keep-alive\r\n"), CHUNKED)
            http10 = s.client(port=40003)
            self.exchange(http10, get(b"/a", b"1.0"), OK % 2)
            self.exchange(s.client(port=40004), get(b"/a"), OK % 2)
            self.exchange(s.client(port=40005), get(b"/a"), OK % 2, drain=True)
            assert len(s.connector.attempts) == 1  # one pooled backend connection served them all
            return self.received
        finally:
            s.close()


def test_caches_on_and_off_put_the_same_bytes_on_the_wire() -> None:
    cached = Scenario(caches=True).run()
    uncached = Scenario(caches=False).run()
    assert len(cached) == len(uncached)
    for i, (on, off) in enumerate(zip(cached, uncached, strict=True)):
        assert on == off, f"exchange {i // 2}, {'client' if i % 2 else 'backend'} side"


def test_the_scenario_tells_the_variants_apart() -> None:
    """The clients of the scenario get different heads for the same backend response: a cache that
    ignored one of these inputs would fail the comparison above."""
    out = Scenario(caches=False).run()
    to_clients = out[1::2]
    http11, http10_keep, http10, drained = to_clients[1], to_clients[8], to_clients[10], to_clients[12]
    assert b"Connection:" not in http11
    assert b"Connection: keep-alive\r\n" in http10_keep
    assert b"Connection: close\r\n" in http10
    assert b"Connection: close\r\n" in drained
    assert b"Transfer-Encoding: chunked\r\n" in to_clients[5]
    assert b"Transfer-Encoding" not in to_clients[9]  # an HTTP/1.0 client gets the body until close
    assert to_clients[11] == to_clients[3]  # another HTTP/1.1 client, same response: same bytes
