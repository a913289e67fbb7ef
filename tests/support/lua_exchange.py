"""A plain ExchangeView for driving LuaFilter without sockets: a request, an optional response, a fake clock,
and a record of resume()/answer() calls."""

from __future__ import annotations

from collections.abc import Callable

from rsp.pipeline.messages import NO_BODY, Header, LocalReply, Request, Response
from rsp.pipeline.request_body import RequestBody


class FakeExchange:
    def __init__(self, target: bytes = b"/", *, method: bytes = b"GET", authority: bytes = b"example.com",
                 headers: list[Header] | None = None, scheme: bytes = b"http", client_ip: str = "192.0.2.7",
                 client_port: int = 40000, server_port: int = 8080) -> None:
        self.request = Request(method, scheme, authority, target, list(headers or []))
        self.response: Response | None = None
        self.ctx: dict[str, object] = {}
        self.pool = "default"
        self.peer: tuple[str, int] | None = None
        self.more_tries = 0
        self._client_ip = client_ip
        self._client_port = client_port
        self._server_port = server_port
        self.tries_value = 0
        self.last_failure_value = ""
        self.status_value = 0
        self.upstream_addr_value = ""
        self.upstream_status_value = 0
        self.upstream_timings_value: tuple[tuple[float, float, float], ...] = ()
        self.clock = 1000.0
        self.started_value = 1000.0
        self.resumed = 0
        self.answers: list[LocalReply] = []
        self.timeouts: tuple[float, float, float] | None = None
        # the request body as the session holds it: tests feed it with body.add / body.end
        self.body = RequestBody(complete=True)

    @property
    def client_ip(self) -> str:
        return self._client_ip

    @property
    def client_port(self) -> int:
        return self._client_port

    @property
    def server_port(self) -> int:
        return self._server_port

    @property
    def tries(self) -> int:
        return self.tries_value

    @property
    def last_failure(self) -> str:
        return self.last_failure_value

    @property
    def status(self) -> int:
        return self.status_value

    @property
    def upstream_addr(self) -> str:
        return self.upstream_addr_value

    @property
    def upstream_status(self) -> int:
        return self.upstream_status_value

    @property
    def upstream_timings(self) -> tuple[tuple[float, float, float], ...]:
        return self.upstream_timings_value

    @property
    def started(self) -> float:
        return self.started_value

    def now(self) -> float:
        return self.clock

    def resume(self) -> None:
        self.resumed += 1

    def answer(self, reply: LocalReply) -> None:
        self.answers.append(reply)

    def set_timeouts(self, connect: float, send: float, read: float) -> None:
        self.timeouts = (connect, send, read)

    def read_body(self, done: Callable[[], None]) -> bool:
        return self.body.wait(done)

    def body_data(self) -> bytes | None:
        return self.body.data()

    def set_body(self, data: bytes) -> None:
        self.body.replace(data)
        self.request.body_length = len(data)

    def discard_body(self) -> None:
        self.body.discard()
        self.request.body_length = NO_BODY
