"""The runtime API's Unix socket: read one command line, write the JSON reply, close.

The socket file is removed on a clean stop; at start, only a stale one is removed (remove_stale_socket: never
the socket of a live rsp). `rsp --admin` (admin_request, reply_is_error) is the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import stat
from collections.abc import Mapping
from typing import cast

from rsp.admin.commands import MAX_COMMAND_BYTES, execute
from rsp.errors import StartupError
from rsp.logs import get_logger
from rsp.proctitle import title_of
from rsp.proxy.pools import PoolRuntime
from rsp.running import peer_pid


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


class AdminSocket:
    """The listening admin socket; `close` also removes its file, if the file is still the one it created."""

    def __init__(self, server: asyncio.AbstractServer, path: str) -> None:
        self.server = server
        self.path = path
        self.inode = _inode(path)

    def close(self) -> None:
        self.server.close()
        # Another rsp may have started on the same path since (it unlinks a stale socket first): its file
        # has another inode and stays.
        if self.inode is not None and _inode(self.path) == self.inode:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


def _inode(path: str) -> tuple[int, int] | None:
    """(device, inode) of the socket file at `path`, None when there is none."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return (info.st_dev, info.st_ino) if stat.S_ISSOCK(info.st_mode) else None


def remove_stale_socket(path: str) -> None:
    """Make room for the admin socket at `path`: remove a socket file nobody answers on (a run that was
    killed); refuse (StartupError) when a live process answers on it (a running rsp would lose its runtime
    API and `rsp reload`) or when the path is not a socket (nobody's socket to remove)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise StartupError(f"cannot open admin socket {path}: the path exists and is not a socket (not removed)")
    pid = peer_pid(path)
    if pid is not None:
        title = title_of(pid) or "?"
        raise StartupError(f"cannot open admin socket {path}: a running process answers on it (pid {pid}: "
                           f"{title}); stop it or choose another admin_socket")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


async def start_admin_socket(path: str, pools: Mapping[str, PoolRuntime]) -> AdminSocket:
    remove_stale_socket(path)  # refuses when a live rsp answers on it
    loop = asyncio.get_running_loop()
    server = await loop.create_unix_server(lambda: _AdminProtocol(pools), path)
    os.chmod(path, 0o600)  # the runtime API can drain backends: owner only
    return AdminSocket(server, path)


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


def reply_is_error(reply: str) -> bool:
    """Whether a reply is the {"error": ...} document `execute` answers a failed command with."""
    try:
        document = json.loads(reply)
    except ValueError:
        return True  # not a reply rsp writes
    return isinstance(document, dict) and "error" in document
