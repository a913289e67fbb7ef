"""What the filter-pipeline tests (tests/proxy/test_phase*.py) share: the `make_session` fixture's type, a
request and a response every test can use, a filter that records what each phase saw, and one that answers
every request locally (403)."""

from __future__ import annotations

from collections.abc import Callable

from rsp.pipeline.messages import LocalReply
from rsp.pipeline.phases import ExchangeView, Filter, Verdict
from support.fake_session import FakeSession

Make = Callable[..., FakeSession]

GET_X = b"GET /x HTTP/1.1\r\nHost: example\r\n\r\n"
OK_5 = b"HTTP/1.1 200 OK\r\nServer: s\r\nX-Remove: 1\r\nContent-Length: 5\r\n\r\nhello"


class Recorder(Filter):
    """Records what each phase saw: (phase, status, upstream_addr, tries, last_failure)."""

    name = "recorder"

    def __init__(self) -> None:
        self.seen: list[tuple[str, int, str, int, str]] = []

    def _note(self, phase: str, exchange: ExchangeView) -> None:
        self.seen.append((phase, exchange.status, exchange.upstream_addr, exchange.tries, exchange.last_failure))

    def rewrite(self, exchange: ExchangeView) -> Verdict:
        self._note("rewrite", exchange)
        return None

    def access(self, exchange: ExchangeView) -> Verdict:
        self._note("access", exchange)
        return None

    def balancer(self, exchange: ExchangeView) -> Verdict:
        self._note("balancer", exchange)
        return None

    def header_filter(self, exchange: ExchangeView) -> Verdict:
        self._note("header_filter", exchange)
        return None

    def body_filter(self, exchange: ExchangeView, chunk: bytes, last: bool) -> bytes:
        self._note("body_filter", exchange)
        return chunk

    def log(self, exchange: ExchangeView) -> None:
        self._note("log", exchange)

    def phases(self) -> list[str]:
        return [seen[0] for seen in self.seen]


class Deny(Filter):
    """access: answers 403 locally, so no request reaches a backend."""

    def access(self, exchange: ExchangeView) -> Verdict:
        return LocalReply(403, [(b"Content-Type", b"text/plain")], b"no")
