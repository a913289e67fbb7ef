"""The runtime API's Unix socket: read one command line, write the JSON reply, close."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping
from typing import cast

from rsp.admin.commands import MAX_COMMAND_BYTES, execute
from rsp.logs import get_logger
from rsp.proxy.pools import PoolRuntime


class _AdminProtocol(asyncio.Protocol):
    def __init__(self, pools: Mapping[str, PoolRuntime]) -> None:
        self.pools = pools
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buf += data
        if b"\n" not in self.buf and len(self.buf) < MAX_COMMAND_BYTES:
            return
        line = self.buf.split(b"\n", 1)[0][:MAX_COMMAND_BYTES].decode("utf-8", "replace").strip()
        get_logger().info("admin command: %s", line)
        self.transport.write(execute(line, self.pools).encode() + b"\n")
        self.transport.close()

    def eof_received(self) -> bool | None:
        if self.buf and self.transport is not None and not self.transport.is_closing():
            self.data_received(b"\n")
        return None


async def start_admin_socket(path: str, pools: Mapping[str, PoolRuntime]) -> asyncio.AbstractServer:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # a stale socket from a previous run
    loop = asyncio.get_running_loop()
    server = await loop.create_unix_server(lambda: _AdminProtocol(pools), path)
    os.chmod(path, 0o600)  # the runtime API can drain backends: owner only
    return server


def admin_request(path: str, command: str, timeout: float = 5.0) -> str:
    """Client side (used by `rsp --admin`): send one command, return the reply."""
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()
