"""TCP mode: for each accepted client, pick a backend, connect (retrying on another backend when the
connect fails), then hand both sockets to a `Relay`.

Retries happen only before the relay starts, so no byte of a response has been sent when we retry
(nothing has been read from the client yet either: its bytes wait in the kernel until a backend is up).
"""

from __future__ import annotations

import asyncio
import socket

from rsp.logs import get_logger
from rsp.metrics.counters import ListenerStats
from rsp.proxy.pools import PoolRuntime
from rsp.transport.connect import UpstreamConnect
from rsp.transport.relay import Relay, SharedBuffer
from rsp.upstream.records import BackendRecord


def peer_text(addr: tuple[object, ...]) -> str:
    host = str(addr[0]) if addr else "?"
    port = addr[1] if len(addr) > 1 else "?"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class TcpProxy:
    """One listener's TCP proxying: its pool, its live relays."""

    __slots__ = ("loop", "pool", "read_size", "relays", "sessions", "shared", "stats")

    def __init__(self, loop: asyncio.AbstractEventLoop, pool: PoolRuntime, shared: SharedBuffer,
                 read_size: int) -> None:
        self.loop = loop
        self.pool = pool
        self.shared = shared
        self.read_size = read_size
        self.relays: set[Relay] = set()
        self.sessions: set[TcpSession] = set()  # connecting, not yet relaying
        # Bytes of live relays are added by rsp.metrics.snapshot; a relay adds its own here when it closes.
        self.stats = ListenerStats()

    def on_accept(self, client: socket.socket, addr: tuple[object, ...]) -> None:
        self.stats.accepted += 1
        TcpSession(self, client, addr, self.pool).start()

    def start_routed(self, client: socket.socket, addr: tuple[object, ...], pool: PoolRuntime,
                     preface: bytes) -> None:
        """A client whose pool was chosen from its first bytes (SNI routing, rsp.proxy.sni_proxy): those
        bytes, already read, reach the backend before anything else."""
        self.stats.accepted += 1
        TcpSession(self, client, addr, pool, preface).start()

    def relay_closed(self, relay: Relay) -> None:
        self.relays.discard(relay)
        record = relay.info
        stats = self.stats
        stats.bytes_received += relay.bytes_in
        stats.bytes_sent += relay.bytes_out
        if isinstance(record, BackendRecord):
            record.active -= 1
            record.stats.bytes_sent += relay.bytes_in
            record.stats.bytes_received += relay.bytes_out
        reason = relay.reason
        if reason not in ("done", "shutdown"):
            get_logger().info("connection %s closed: %s", relay_label(relay), reason)

    def live_connections(self) -> int:
        return len(self.relays) + len(self.sessions)

    def sweep_idle(self, idle_limit: float, interval: float) -> None:
        """Close relays with no I/O for `idle_limit` seconds, measured in ticks of `interval` seconds:
        a counter comparison per relay per tick, no timer per connection."""
        for relay in list(self.relays):
            if relay.activity != relay.idle_seen:
                relay.idle_seen = relay.activity
                relay.idle_ticks = 0
                continue
            relay.idle_ticks += 1
            if relay.idle_ticks * interval >= idle_limit:
                relay.close("idle timeout")

    def close_all(self, reason: str) -> None:
        for session in list(self.sessions):
            session.abort()
        for relay in list(self.relays):
            relay.close(reason)


def relay_label(relay: Relay) -> str:
    record = relay.info
    backend = record.spec.address if isinstance(record, BackendRecord) else "?"
    return f"{peer_text(relay.peer)} -> {backend}"


class TcpSession:
    """From accept to relay: pick, connect, retry on another backend, or give up and close."""

    __slots__ = ("addr", "attempt", "client", "pool", "preface", "proxy", "record", "tried")

    def __init__(self, proxy: TcpProxy, client: socket.socket, addr: tuple[object, ...], pool: PoolRuntime,
                 preface: bytes = b"") -> None:
        self.proxy = proxy
        self.pool = pool
        self.preface = preface
        self.client = client
        self.addr = addr
        self.tried: list[BackendRecord] = []
        self.record: BackendRecord | None = None
        self.attempt: UpstreamConnect | None = None

    def start(self) -> None:
        self.proxy.sessions.add(self)
        self._attempt()

    def _attempt(self) -> None:
        pool = self.pool
        key = str(self.addr[0]).encode() if pool.wants_key else None
        record = pool.pick(key, self.tried)
        if record is None:
            why = "all backends tried" if self.tried else "no backend available"
            get_logger().warning("client %s: %s in pool %s; closing", peer_text(self.addr), why, pool.name)
            self._give_up()
            return
        self.tried.append(record)
        self.record = record
        record.active += 1  # counted from the connect on, so max_conns and leastconn see it at once
        record.total += 1
        family, sockaddr = pool.addresses[record.index]
        try:
            self.attempt = UpstreamConnect(self.proxy.loop, family, sockaddr, pool.spec.connect_timeout,
                                           self._connected)
        except OSError as exc:  # socket() itself failed: EMFILE and the like
            self._connected(None, exc.strerror or str(exc))

    def _connected(self, upstream: socket.socket | None, error: str) -> None:
        self.attempt = None
        record = self.record
        assert record is not None
        pool = self.pool
        if upstream is None:
            record.active -= 1
            record.stats.connect_failures += 1
            get_logger().warning("backend %s connect failed for client %s: %s",
                                 record.label, peer_text(self.addr), error)
            pool.traffic_failed(record, error)
            if len(self.tried) <= pool.spec.retries:
                pool.stats.retries += 1
                self._attempt()
            else:
                get_logger().warning("client %s: giving up after %d connect attempts; closing",
                                     peer_text(self.addr), len(self.tried))
                self._give_up()
            return
        pool.traffic_ok(record)
        proxy = self.proxy
        proxy.sessions.discard(self)
        relay = Relay(proxy.loop, self.client, upstream, proxy.shared, proxy.read_size, proxy.relay_closed,
                      record, self.addr)
        proxy.relays.add(relay)
        relay.start(self.preface)

    def _give_up(self) -> None:
        self.proxy.sessions.discard(self)
        self.client.close()

    def abort(self) -> None:
        if self.attempt is not None:
            self.attempt.cancel()
            if self.record is not None:
                self.record.active -= 1
        self._give_up()
