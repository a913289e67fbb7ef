"""The harness of the CacheFilter tests (tests/cache): a clock the test moves, a plain ExchangeView
(`Exchange`, no sockets), a runner that takes exchanges through a filter chain the way the session does
against an origin function (`Harness`, `make`), ready origins, timers the test runs by hand, and
`run`/`get`: one exchange through a single filter's phases, with a background exchange's context if given."""

from __future__ import annotations

from collections.abc import Callable

from rsp.cache.cache_filter import CacheFilter
from rsp.cache.dates import format_http_date
from rsp.cache.store import CacheStore
from rsp.config.model import CacheSettings
from rsp.pipeline.messages import Header, LocalReply, Request, Response, header_get
from rsp.pipeline.phases import Chain, Filter

T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


class Exchange:
    """The part of ExchangeView a filter uses, as plain attributes."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.response: Response | None = None
        self.ctx: dict[str, object] = {}
        self.pool = "default"
        self.peer: tuple[str, int] | None = None
        self.more_tries = 0
        self.client_ip, self.client_port, self.server_port = "127.0.0.1", 40000, 8080
        self.tries, self.last_failure, self.status = 0, "", 0
        self.upstream_addr, self.upstream_status, self.started = "", 0, 0.0
        self.resumed = 0
        self.answers: list[LocalReply] = []
        self.backgrounds: list[tuple[Request, dict[str, object]]] = []  # requests a filter started
        self.head: Response | None = None  # a streamed answer: its head, its body parts, its end or reset
        self.parts: list[bytes] = []
        self.ended = False
        self.reset = ""

    def now(self) -> float:
        return 0.0

    def resume(self) -> None:
        self.resumed += 1

    def answer(self, reply: LocalReply) -> None:
        self.answers.append(reply)

    def background(self, request: Request, ctx: dict[str, object]) -> None:
        self.backgrounds.append((request, ctx))

    def answer_head(self, response: Response) -> None:
        assert self.head is None
        self.head = response

    def answer_data(self, chunk: bytes, last: bool) -> None:
        assert self.head is not None and not self.ended
        self.parts.append(chunk)
        self.ended = last

    def answer_reset(self, reason: str) -> None:
        self.reset = reason

    def follow(self, source: object) -> None:
        self.following = source


Origin = Callable[[Request], tuple[int, list[Header], bytes]]


class Harness:
    """Runs exchanges through a chain the way the session does, against an origin function that counts
    and records the requests that reach it."""

    def __init__(self, flt: Filter, origin: Origin) -> None:
        self.chain = Chain([flt])
        self.origin = origin
        self.seen: list[Request] = []

    def run(self, method: bytes = b"GET", target: bytes = b"/a", headers: list[Header] | None = None,
            chunk: int = 0) -> tuple[Response, bytes]:
        request = Request(method, b"http", b"example.com", target, list(headers or []))
        ex = Exchange(request)
        verdict = None
        for flt in self.chain.for_phase("access"):
            verdict = flt.access(ex)
            if verdict is not None:
                break
        if isinstance(verdict, LocalReply):
            ex.response, body = verdict.response, verdict.body
        else:
            self.seen.append(request)
            status, resp_headers, body = self.origin(request)
            ex.response = Response(status, resp_headers, len(body))
        for flt in self.chain.for_phase("header_filter"):
            flt.header_filter(ex)
        pieces = [body[i:i + chunk] for i in range(0, len(body), chunk)] if chunk and body else [body]
        out = b""
        for i, piece in enumerate(pieces):
            for flt in self.chain.for_phase("body_filter"):
                piece = flt.body_filter(ex, piece, i == len(pieces) - 1)
            out += piece
        for flt in self.chain.for_phase("log"):
            flt.log(ex)
        if method == b"HEAD":
            out = b""
        return ex.response, out


def make(store: CacheStore, clock: Clock, origin: Origin, **settings: object) -> Harness:
    flt = CacheFilter(CacheSettings("test", **settings), store, clock)  # type: ignore[arg-type]
    return Harness(flt, origin)


def xcache(response: Response) -> bytes | None:
    return header_get(response.headers, b"x-cache")


def static(cc: bytes = b"max-age=60", body: bytes = b"hello", extra: list[Header] | None = None,
           clock: Clock | None = None) -> Origin:
    def origin(request: Request) -> tuple[int, list[Header], bytes]:
        headers = [(b"Content-Type", b"text/plain"), (b"Cache-Control", cc), *(extra or [])]
        if clock is not None:
            headers.append((b"Date", format_http_date(clock.t)))
        return 200, headers, body
    return origin


class Timers:
    """call_later for the filter: callbacks run when the test says so."""

    def __init__(self) -> None:
        self.due: list[tuple[float, Callable[[], None]]] = []

    def __call__(self, delay: float, callback: Callable[[], None]) -> None:
        self.due.append((delay, callback))

    def run(self) -> None:
        due, self.due = self.due, []
        for _, callback in due:
            callback()


def run(flt: CacheFilter, origin: Origin, seen: list[Request], request: Request,
        ctx: dict[str, object] | None = None) -> tuple[Exchange, Response, bytes]:
    """One exchange through the filter's phases, as the session runs it (`ctx`: a background one's)."""
    ex = Exchange(request)
    if ctx is not None:
        ex.ctx = ctx
    verdict = flt.access(ex)
    if isinstance(verdict, LocalReply):
        ex.response, body = verdict.response, verdict.body
    else:
        seen.append(request)
        status, headers, body = origin(request)
        ex.response = Response(status, headers, len(body))
    flt.header_filter(ex)
    out = flt.body_filter(ex, body, True)
    flt.log(ex)
    return ex, ex.response, out


def get(target: bytes = b"/a", headers: list[Header] | None = None, method: bytes = b"GET") -> Request:
    """A request for http://example.com`target`."""
    return Request(method, b"http", b"example.com", target, list(headers or []))


def access_at(flt: CacheFilter, path: bytes, headers: list[Header] | None = None) -> tuple[Exchange, object]:
    """A GET of http://example.com`path` through the filter's access phase: the exchange and the verdict."""
    ex = Exchange(Request(b"GET", b"http", b"example.com", path, list(headers or [])))
    return ex, flt.access(ex)


def respond(flt: CacheFilter, ex: Exchange, status: int, headers: list[Header], body: bytes) -> bytes:
    """The backend's response through the response phases; what the fetcher's client gets."""
    ex.response = Response(status, headers, len(body))
    flt.header_filter(ex)
    out = flt.body_filter(ex, body, True)
    flt.log(ex)
    return out
