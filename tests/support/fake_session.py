"""HTTP mode's session without sockets or a real clock: an `HttpProxy` wired to fakes of its narrow I/O
interface (rsp.proxy.session_io): transports that record what is written, a connector whose connection
attempts the test accepts or refuses, and a clock the test advances before calling `tick()`.

    s = FakeSession(backends=2)
    client = s.client()                       # a ClientConnection on a FakeTransport
    client.send(b"GET / HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n")
    backend = s.accept()                      # the oldest pending connection attempt succeeds
    backend.take()                            # -> the forwarded request bytes
    backend.send(b"HTTP/1.1 200 OK\\r\\n...")  # the backend answers
    client.take()                             # -> what the client received
    s.clock.advance(61); s.proxy.tick()       # timeouts

As on rsp's streams, a closed transport tells its protocol `connection_lost` later, never from inside
close() or write(): on the session's next "loop turn", which every peer action (send, send_eof, reset,
accept, fail, advance) runs when it is done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from rsp.config.lua_loader import parse_config
from rsp.pipeline.phases import Chain, Filter
from rsp.proxy.access_log import AccessLog
from rsp.proxy.client import ClientConnection
from rsp.proxy.http_proxy import HttpProxy
from rsp.proxy.http_upstream import UpstreamConnection
from rsp.proxy.pools import PoolRuntime
from rsp.proxy.session_io import ConnectDone
from rsp.transport.stream import StreamProtocol
from rsp.upstream.records import BackendRecord

# Backends of a session's pool: addresses nothing connects to (the connector is fake).
BACKEND_PORTS = (9101, 9102, 9103)


class FakeClock:
    """Seconds, moved only by advance()."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Turns:
    """Callbacks deferred to the next loop turn (connection_lost)."""

    def __init__(self) -> None:
        self.ready: list[Callable[[], None]] = []

    def call_soon(self, callback: Callable[[], None]) -> None:
        self.ready.append(callback)

    def run(self) -> None:
        for _ in range(1000):  # bounded: a callback may schedule more
            if not self.ready:
                return
            ready, self.ready = self.ready, []
            for callback in ready:
                callback()
        raise AssertionError("callbacks keep scheduling callbacks")


class FakeTransport:
    """The Transport a protocol sees (rsp.proxy.session_io.Transport), recording what it is asked."""

    def __init__(self, protocol: StreamProtocol, turns: Turns, peer: tuple[object, ...] = ()) -> None:
        self.protocol = protocol
        self.turns = turns
        self.peer = peer
        self.written = bytearray()
        self.reading = True
        self.closing = False
        self.aborted = False
        self.eof_sent = False
        self.lost = False

    # -- what the protocol calls ----------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        assert not self.eof_sent, "write after write_eof"
        if not self.closing:
            self.written += data

    def writelines(self, parts: list[bytes]) -> None:
        for part in parts:
            self.write(part)

    def write_eof(self) -> None:
        self.eof_sent = True

    def close(self) -> None:
        self._lose(None)

    def abort(self) -> None:
        self.aborted = True
        self._lose(None)

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_closing(self) -> bool:
        return self.closing

    def _lose(self, exc: Exception | None) -> None:
        self.closing = True
        if not self.lost:
            self.lost = True
            self.turns.call_soon(lambda: self.protocol.connection_lost(exc))

    # -- what the test does as the peer ---------------------------------------------------------------
    def send(self, data: bytes) -> None:
        """The peer sends `data` (delivered only while reading is on, as a socket stream does)."""
        assert self.reading and not self.closing, "the protocol is not reading"
        self.protocol.data_received(data)
        self.turns.run()

    def send_eof(self) -> None:
        """The peer half-closes; the transport closes when the protocol does not ask to keep it open."""
        if not self.protocol.eof_received():
            self.close()
        self.turns.run()

    def reset(self) -> None:
        """The connection is reset by the peer."""
        self.closing = True
        self._lose(ConnectionResetError("connection reset by peer"))
        self.turns.run()

    def take(self) -> bytes:
        """What was written since the last take()."""
        out = bytes(self.written)
        self.written.clear()
        return out


class Attempt:
    """One connection attempt the proxy made through the fake connector."""

    def __init__(self, record: BackendRecord, protocol: StreamProtocol, done: ConnectDone, turns: Turns) -> None:
        self.turns = turns
        self.record = record
        self.protocol = protocol
        self.done = done
        self.finished = False
        self.timeout = 0.0

    def accept(self) -> FakeTransport:
        assert not self.finished
        self.finished = True
        transport = FakeTransport(self.protocol, self.turns)
        self.protocol.connection_made(transport)  # type: ignore[arg-type]
        self.done("")
        self.turns.run()
        return transport

    def fail(self, reason: str = "connection refused") -> None:
        assert not self.finished
        self.finished = True
        self.done(reason)
        self.turns.run()


class FakeConnector:
    """Keeps every connection attempt for the test to settle (rsp.proxy.session_io.Connector)."""

    def __init__(self, turns: Turns) -> None:
        self.turns = turns
        self.attempts: list[Attempt] = []

    def connect(self, pool: PoolRuntime, record: BackendRecord, protocol: StreamProtocol, done: ConnectDone,
                timeout: float = 0.0) -> None:
        attempt = Attempt(record, protocol, done, self.turns)
        attempt.timeout = timeout or pool.spec.connect_timeout  # what a real connector would wait
        self.attempts.append(attempt)

    def pending(self) -> list[Attempt]:
        return [a for a in self.attempts if not a.finished]


class FakeSession:
    """An HttpProxy on fakes; `http` and `pool` are Lua table bodies added to the config, `pools` more
    entries of its pools table, `extra` more top-level lines (routes); `filters` the listener's chain."""

    def __init__(self, backends: int = 1, http: str = "", pool: str = "", caches: bool = True, pools: str = "",
                 extra: str = "", filters: list[Filter] | None = None) -> None:
        addresses = ", ".join(f'"127.0.0.1:{port}"' for port in BACKEND_PORTS[:backends])
        config = parse_config(
            'listen = {{ port = 8080, mode = "http" }}\n'
            f'pools = {{ default = {{ backends = {{ {addresses} }}, {pool} }}, {pools} }}\n'
            f'http = {{ access_log = "off", {http} }}\n{extra}\n', "fake_session.lua")
        self.clock = FakeClock()
        self.turns = Turns()
        self.connector = FakeConnector(self.turns)
        self.pools = {name: PoolRuntime(spec, self.clock) for name, spec in config.pools.items()}
        self.loop = asyncio.new_event_loop()  # never run: the fakes do not use it
        self.proxy = HttpProxy(self.loop, config, self.pools, "default", AccessLog("off"), clock=self.clock,
                               connector=self.connector, caches=caches,
                               chain=Chain(filters) if filters is not None else None, server_port=8080)
        self.settings = config.http

    def close(self) -> None:
        self.proxy.close_all()
        self.turns.run()
        self.loop.close()

    def drain(self, linger: float = 0.0) -> None:
        """Stop keep-alive: idle clients are closed now (SIGTERM) or after `linger` idle seconds (a reload),
        busy ones after their response."""
        self.proxy.begin_drain(linger)
        self.turns.run()

    @property
    def records(self) -> list[BackendRecord]:
        return list(self.pools["default"].records)

    def client(self, ip: str = "192.0.2.10", port: int = 40000) -> FakeTransport:
        """A client connects: its transport (send() as the client, take() what it received)."""
        protocol = ClientConnection(self.proxy)
        transport = FakeTransport(protocol, self.turns, (ip, port))
        protocol.connection_made(transport)  # type: ignore[arg-type]
        return transport

    def accept(self) -> FakeTransport:
        """The oldest pending connection attempt succeeds: the backend side of it."""
        pending = self.connector.pending()
        assert pending, "no connection attempt is pending"
        return pending[0].accept()

    def open(self, client: FakeTransport, request: bytes) -> FakeTransport:
        """`client` sends `request`, which opens a backend connection: its backend side, request taken."""
        client.send(request)
        backend = self.accept()
        backend.take()
        return backend

    def serve(self, client: FakeTransport, request: bytes, response: bytes) -> tuple[FakeTransport, bytes]:
        """open(), then the backend answers `response`: (its backend side, what the client received)."""
        backend = self.open(client, request)
        backend.send(response)
        return backend, client.take()

    def fail(self, reason: str = "connection refused") -> Attempt:
        pending = self.connector.pending()
        assert pending, "no connection attempt is pending"
        pending[0].fail(reason)
        return pending[0]

    def advance(self, seconds: float) -> None:
        """Time passes; the server's tick runs."""
        self.clock.advance(seconds)
        self.proxy.tick()
        self.turns.run()

    def idle_upstreams(self) -> list[UpstreamConnection]:
        return [conn for pool in self.proxy.idle_pools.values() for conn in pool.idle]


def protocol_of(transport: FakeTransport) -> Any:
    return transport.protocol
