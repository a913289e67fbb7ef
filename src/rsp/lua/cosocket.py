"""ngx.socket.tcp: OpenResty's cosockets on rsp's event loop.

A handler's socket call never blocks the loop: what can be answered from what is already there (a buffered
line, a pooled connection, a write) returns at once; anything else creates a Waiter (rsp.lua.host), the
handler's coroutine yields, and the protocol callbacks below complete it. setkeepalive puts the connection in
a per-worker pool keyed by "host:port" (or opts.pool), as OpenResty's connection pool, so that a library like
lua-resty-redis reuses one connection across requests.

Timeouts are OpenResty's defaults (lua_socket_connect_timeout, _send_timeout, _read_timeout: 60 s) until the
handler sets them (milliseconds, as settimeout takes them).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any, Final

from rsp.errors import ScriptError
from rsp.lua.host import LuaHost, Waiter

DEFAULT_TIMEOUT: Final = 60.0  # seconds: lua_socket_*_timeout's default
DEFAULT_POOL_SIZE: Final = 30  # lua_socket_pool_size's default
DEFAULT_KEEPALIVE: Final = 60.0  # lua_socket_keepalive_timeout's default, seconds
# What one cosocket buffers before the handler reads it (receive("*a") of a huge reply): past it the connection
# is closed and the read fails, instead of the worker's memory growing outside the Lua heap's cap.
MAX_BUFFER: Final = 16 * 1024 * 1024


class _Protocol(asyncio.Protocol):
    """Buffers what arrives and tells its socket (the cosocket in use, or none while pooled)."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.eof = False
        self.transport: asyncio.Transport | None = None
        self.on_change: Callable[[], None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > MAX_BUFFER and self.transport is not None:
            self.buffer.clear()
            self.eof = True
            self.transport.close()
        if self.on_change is not None:
            self.on_change()

    def eof_received(self) -> bool:
        self.eof = True
        if self.on_change is not None:
            self.on_change()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        if self.on_change is not None:
            self.on_change()


class _Idle:
    __slots__ = ("expiry", "protocol", "reused")

    def __init__(self, protocol: _Protocol, reused: int, expiry: asyncio.TimerHandle) -> None:
        self.protocol = protocol
        self.reused = reused
        self.expiry = expiry


class Cosocket:
    __slots__ = ("connect_timeout", "handle", "pending", "pool_key", "protocol", "read_timeout", "reused",
                 "send_timeout", "timer")

    def __init__(self, handle: int) -> None:
        self.handle = handle
        self.protocol: _Protocol | None = None
        self.connect_timeout = self.send_timeout = self.read_timeout = DEFAULT_TIMEOUT
        self.reused = 0
        self.pool_key = ""
        self.pending: tuple[Any, Waiter] | None = None
        self.timer: asyncio.TimerHandle | None = None


class Cosockets:
    """The worker's cosockets and their connection pool."""

    def __init__(self, engine: LuaHost) -> None:
        self.engine = engine
        self.sockets: dict[int, Cosocket] = {}
        self.idle: dict[str, list[_Idle]] = {}
        self.next_handle = 1

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self.engine.loop or asyncio.get_event_loop()

    def new(self) -> int:
        handle = self.next_handle
        self.next_handle += 1
        self.sockets[handle] = Cosocket(handle)
        state = self.engine.current
        if state is not None:
            if state.sockets is None:
                state.sockets = []
            state.sockets.append(handle)
        return handle

    def close_handles(self, handles: list[int]) -> None:
        for handle in handles:
            sock = self.sockets.get(handle)
            if sock is not None:
                self._close(sock)

    def call(self, op: str, handle: int, args: tuple[Any, ...]) -> Any:
        sock = self.sockets.get(handle)
        if sock is None:
            sock = Cosocket(handle)  # closed or pooled: a fresh one, as after close in OpenResty
            self.sockets[handle] = sock
        method = getattr(self, "_" + op, None)
        if method is None:
            raise ScriptError(f"unknown cosocket method {op}")
        return method(sock, *args)

    def _wait(self, waiter: Waiter) -> Any:
        self.engine.pending = waiter
        return self.engine.wait_marker

    # ---- connect --------------------------------------------------------------------------------------------

    def _connect(self, sock: Cosocket, host: Any, port: Any = None, opts: Any = None) -> Any:
        if sock.protocol is not None:
            self._close(sock)
        if not isinstance(host, bytes):
            raise ScriptError("bad argument #1 to connect: host must be a string")
        pool = opts[b"pool"] if opts is not None and opts[b"pool"] is not None else None
        unix = host.startswith(b"unix:")
        key = (pool or (host if unix else host + b":" + str(int(port or 0)).encode())).decode("utf-8", "replace")
        sock.pool_key = key
        for idle in self.idle.get(key, []):
            self.idle[key].remove(idle)
            idle.expiry.cancel()
            if idle.protocol.eof:
                continue
            sock.protocol = idle.protocol
            sock.reused = idle.reused + 1
            idle.protocol.on_change = lambda: self._progress(sock)
            return (1,)
        waiter = Waiter()
        self.loop.create_task(self._open(sock, host, port, unix, waiter))
        return self._wait(waiter)

    async def _open(self, sock: Cosocket, host: bytes, port: Any, unix: bool, waiter: Waiter) -> None:
        try:
            if unix:
                coro = self.loop.create_unix_connection(_Protocol, host[5:].decode())
            else:
                coro = self.loop.create_connection(_Protocol, host.decode("ascii"), int(port))
            _, protocol = await asyncio.wait_for(coro, sock.connect_timeout)
        except TimeoutError:
            waiter.done(None, b"timeout")
            return
        except (OSError, ValueError, UnicodeError) as exc:
            # OpenResty's words: the system's message for the errno ("connection refused")
            errno = exc.errno if isinstance(exc, OSError) else None
            reason = os.strerror(errno) if errno else str(exc)
            waiter.done(None, reason.lower().encode())
            return
        sock.protocol = protocol
        sock.reused = 0
        protocol.on_change = lambda: self._progress(sock)
        waiter.done(1)

    # ---- send and receive ---------------------------------------------------------------------------------

    def _send(self, sock: Cosocket, data: Any) -> Any:
        protocol = sock.protocol
        if protocol is None or protocol.transport is None or protocol.transport.is_closing():
            return (None, b"closed")
        payload = data if isinstance(data, bytes) else str(data).encode()
        protocol.transport.write(payload)
        return (len(payload),)

    def _receive(self, sock: Cosocket, pattern: Any) -> Any:
        protocol = sock.protocol
        if protocol is None:
            return (None, b"closed")
        if not (pattern in (b"*l", b"*a") or (isinstance(pattern, int | float) and pattern >= 0)):
            raise ScriptError(f"bad pattern argument to receive: {pattern!r}")
        ready = self._take(protocol, pattern)
        if ready is not None:
            return ready
        waiter = Waiter()
        sock.pending = (pattern, waiter)
        sock.timer = self.loop.call_later(sock.read_timeout, self._timeout, sock)
        return self._wait(waiter)

    def _receiveany(self, sock: Cosocket, limit: Any) -> Any:
        protocol = sock.protocol
        if protocol is None:
            return (None, b"closed")
        if protocol.buffer:
            return self._take(protocol, min(len(protocol.buffer), int(limit)))
        return self._receive(sock, 1)

    @staticmethod
    def _take(protocol: _Protocol, pattern: Any) -> tuple[Any, ...] | None:
        """What `receive(pattern)` returns from the buffer now, or None to wait."""
        buf = protocol.buffer
        if pattern == b"*l":
            end = buf.find(b"\n")
            if end >= 0:
                line = bytes(buf[:end]).rstrip(b"\r")
                del buf[:end + 1]
                return (line,)
        elif pattern == b"*a":
            if protocol.eof:
                data = bytes(buf)
                buf.clear()
                return (data,)
            return None
        else:
            size = int(pattern)
            if len(buf) >= size:
                data = bytes(buf[:size])
                del buf[:size]
                return (data,)
        if protocol.eof:
            partial = bytes(buf)
            buf.clear()
            return (None, b"closed", partial)
        return None

    def _progress(self, sock: Cosocket) -> None:
        if sock.pending is None or sock.protocol is None:
            return
        pattern, waiter = sock.pending
        ready = self._take(sock.protocol, pattern)
        if ready is None:
            return
        sock.pending = None
        if sock.timer is not None:
            sock.timer.cancel()
            sock.timer = None
        waiter.done(*ready)

    def _timeout(self, sock: Cosocket) -> None:
        if sock.pending is None:
            return
        _, waiter = sock.pending
        sock.pending = None
        sock.timer = None
        waiter.done(None, b"timeout", b"")

    # ---- settings, pool, close ------------------------------------------------------------------------------

    def _settimeout(self, sock: Cosocket, ms: Any) -> tuple[Any, ...]:
        seconds = _seconds(ms)
        sock.connect_timeout = sock.send_timeout = sock.read_timeout = seconds
        return ()

    def _settimeouts(self, sock: Cosocket, connect: Any, send: Any, read: Any) -> tuple[Any, ...]:
        sock.connect_timeout, sock.send_timeout, sock.read_timeout = _seconds(connect), _seconds(send), _seconds(read)
        return ()

    def _getreusedtimes(self, sock: Cosocket) -> tuple[Any, ...]:
        return (sock.reused,)

    def _setkeepalive(self, sock: Cosocket, timeout: Any = None, size: Any = None) -> tuple[Any, ...]:
        protocol = sock.protocol
        if protocol is None or protocol.eof or protocol.transport is None:
            return (None, b"closed")
        if protocol.buffer or sock.pending is not None:
            return (None, b"unread data")
        idle = self.idle.setdefault(sock.pool_key, [])
        if len(idle) >= int(size or DEFAULT_POOL_SIZE):
            self._close(sock)
            return (1,)
        seconds = _seconds(timeout) if timeout else DEFAULT_KEEPALIVE
        entry = _Idle(protocol, sock.reused, self.loop.call_later(seconds, self._expire, sock.pool_key, protocol))
        protocol.on_change = None
        idle.append(entry)
        sock.protocol = None
        self.sockets.pop(sock.handle, None)
        return (1,)

    def _expire(self, key: str, protocol: _Protocol) -> None:
        entries = self.idle.get(key, [])
        for entry in entries:
            if entry.protocol is protocol:
                entries.remove(entry)
                break
        if protocol.transport is not None:
            protocol.transport.close()

    def _close(self, sock: Cosocket) -> tuple[Any, ...]:
        protocol = sock.protocol
        self.sockets.pop(sock.handle, None)
        if protocol is None:
            return (None, b"closed")
        sock.protocol = None
        protocol.on_change = None
        if protocol.transport is not None:
            protocol.transport.close()
        return (1,)

    def close_all(self) -> None:
        for sock in list(self.sockets.values()):
            self._close(sock)
        for key in list(self.idle):
            for entry in self.idle.pop(key):
                entry.expiry.cancel()
                if entry.protocol.transport is not None:
                    entry.protocol.transport.close()


def _seconds(ms: Any) -> float:
    if not isinstance(ms, int | float) or ms < 0:
        return DEFAULT_TIMEOUT
    return ms / 1000.0 if ms else DEFAULT_TIMEOUT
