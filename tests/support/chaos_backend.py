"""A loopback HTTP/1.1 backend that misbehaves on a schedule, for the chaos soak (bench/chaos_soak.py).

Its behaviour at any moment is one *phase* from a schedule drawn in advance from a seeded random generator
(pure: `draw_schedule`), so that the judge can later tell, for any interval, whether the backend was
healthy. A request is handled by the phase current when its head has been read:

- `ok`: answers at once; `slow`: answers after a delay well below rsp's response timeout (both healthy);
- `reset`: reads the request, then resets the connection (RST, no response byte: rsp may retry elsewhere);
- `stall`: reads the request and never answers (rsp's response timeout ends it: 504);
- `cut`: sends the head and half the body, then closes (the client gets a truncated response).

Every request carrying `X-Chaos-Id` is recorded with the phase that handled it, so that a failed request
can be traced to the backends that saw it. Health checks (`/health`) go through the same phases.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

OK: Final = "ok"
SLOW: Final = "slow"
RESET: Final = "reset"
STALL: Final = "stall"
CUT: Final = "cut"
HEALTHY_PHASES: Final = frozenset({OK, SLOW})
# How often each phase is drawn; healthy phases dominate so that most moments have a healthy backend.
PHASE_WEIGHTS: Final = ((OK, 45), (SLOW, 15), (RESET, 15), (STALL, 10), (CUT, 15))
PHASE_SECONDS: Final = (2.0, 8.0)  # a phase lasts a uniform draw in this range
SLOW_SECONDS: Final = (0.1, 0.8)  # a slow answer's delay: far below the soak's response timeout
STALL_HOLD: Final = 8.0  # a stalled request is held this long (longer than rsp's response timeout), then closed
HEAD_LIMIT: Final = 65536
IDLE_TIMEOUT: Final = 60.0  # an idle backend connection is closed after this (rsp's pool idle is shorter)
ID_HEADER: Final = b"x-chaos-id"
SIZE_HEADER: Final = b"x-chaos-size"
MAX_BODY: Final = 4 * 1024 * 1024


@dataclass(frozen=True)
class Span:
    start: float  # seconds since the soak's origin
    end: float
    phase: str


def draw_schedule(rng: random.Random, duration: float) -> list[Span]:
    """Consecutive phases covering [0, duration) (and a last one reaching past it). The first is `ok`."""
    spans: list[Span] = []
    t = 0.0
    phases = [p for p, _ in PHASE_WEIGHTS]
    weights = [w for _, w in PHASE_WEIGHTS]
    while t < duration:  # bounded: each span is at least PHASE_SECONDS[0] long
        phase = OK if not spans else rng.choices(phases, weights)[0]
        length = rng.uniform(*PHASE_SECONDS)
        spans.append(Span(t, t + length, phase))
        t += length
    spans.append(Span(t, float("inf"), OK))
    return spans


def phase_at(spans: Sequence[Span], t: float) -> str:
    starts = [s.start for s in spans]
    i = max(0, bisect_right(starts, t) - 1)
    return spans[i].phase


def healthy_throughout(spans: Sequence[Span], start: float, end: float) -> bool:
    """Whether every phase overlapping [start, end] is a healthy one."""
    return all(s.phase in HEALTHY_PHASES for s in spans if s.end > start and s.start <= end)


@dataclass
class Receipt:
    backend: str
    phase: str
    at: float


@dataclass
class ChaosBackend:
    name: str
    spans: list[Span]
    origin: float  # the soak's loop.time() origin: phases are relative to it
    seed: int
    receipts: dict[str, list[Receipt]] = field(default_factory=dict)
    handled: dict[str, int] = field(default_factory=dict)
    port: int = 0
    _server: asyncio.Server | None = None
    _rng: random.Random = field(default_factory=random.Random)
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    async def start(self) -> None:
        self._rng = random.Random(self.seed)
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, limit=HEAD_LIMIT)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            await self._server.wait_closed()

    def now(self) -> float:
        return asyncio.get_running_loop().time() - self.origin

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while await self._one(reader, writer):
                pass
        except (TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; False when the connection is over."""
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE_TIMEOUT)
        except asyncio.IncompleteReadError:
            return False
        fields = _fields(head)
        length = int(fields.get(b"content-length", b"0"))
        if length:
            await reader.readexactly(length)
        phase = phase_at(self.spans, self.now())
        self.handled[phase] = self.handled.get(phase, 0) + 1
        rid = fields.get(ID_HEADER, b"").decode()
        if rid:
            self.receipts.setdefault(rid, []).append(Receipt(self.name, phase, self.now()))
        size = min(int(fields.get(SIZE_HEADER, b"64")), MAX_BODY)
        prefix = f"{self.name} {rid} ".encode()  # the client checks that its answer names its own request
        body = prefix + b"x" * max(0, size - len(prefix))
        response_head = (f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nContent-Type: text/plain\r\n"
                         f"X-Backend: {self.name}\r\n\r\n").encode()
        if phase == RESET:
            _reset(writer)
            return False
        if phase == STALL:
            try:
                await asyncio.wait_for(reader.read(1), STALL_HOLD)  # until rsp gives up (EOF) or the hold ends
            except TimeoutError:
                pass
            return False
        if phase == CUT:
            writer.write(response_head + body[: len(body) // 2])
            await writer.drain()
            return False
        if phase == SLOW:
            await asyncio.sleep(self._rng.uniform(*SLOW_SECONDS))
        writer.write(response_head + (b"" if head.startswith(b"HEAD ") else body))
        await writer.drain()
        return b"close" not in fields.get(b"connection", b"").lower()


def _fields(head: bytes) -> dict[bytes, bytes]:
    fields: dict[bytes, bytes] = {}
    for line in head.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            fields[name.strip().lower()] = value.strip()
    return fields


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with SO_LINGER 0: the kernel sends RST instead of FIN (the peer reads ECONNRESET)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
