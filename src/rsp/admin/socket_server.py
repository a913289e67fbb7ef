"""The runtime API's Unix socket: read one command line, write the JSON reply, close. One server, the
master's, in every process mode; what the commands do is rsp.master.machine_admin's.

The socket file is removed on a clean stop; at start, only a stale one is removed (remove_stale_socket: never
the socket of a live rsp). `rsp --admin` (admin_request, reply_is_error) is the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import stat
from collections.abc import Awaitable, Callable
from typing import Final

from rsp.errors import StartupError
from rsp.logs import get_logger
from rsp.proctitle import title_of
from rsp.running import peer_pid

# A reload waits for its new workers (rsp.master.master.WORKER_READY_TIMEOUT) before it answers; a client
# that has not sent its line within this is dropped.
READ_TIMEOUT: Final = 10.0
# A command is one short line; anything longer is a client error, not something to buffer. (Here, not beside
# the commands in rsp.admin.commands: `rsp reload` and `rsp admin` import this module for admin_request, and
# the commands' module would bring the pools, TLS and cryptography into every such client, ~0.1 s of CPU.)
MAX_COMMAND_BYTES: Final = 4096
# One command line in, its JSON reply out.
Answer = Callable[[str], Awaitable[str]]


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


async def start_admin_socket(path: str, answer: Answer) -> AdminSocket:
    """The one admin server (the master's, with one worker or many): each connection sends one command
    line, gets `answer(line)` back, and is closed."""
    remove_stale_socket(path)  # refuses when a live rsp answers on it

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            raw = await asyncio.wait_for(read_command(reader), READ_TIMEOUT)
            if not raw:
                return  # connected and went away: nothing to answer
            line = raw.decode("utf-8", "replace").strip()
            get_logger().info("admin command: %s", line)
            writer.write((await answer(line)).encode() + b"\n")
            await writer.drain()
        except (TimeoutError, OSError):
            pass  # the client went away or never sent its line: nothing to answer
        finally:
            writer.close()

    server = await asyncio.start_unix_server(client, path)
    os.chmod(path, 0o600)  # the runtime API can drain backends and reload: owner only
    return AdminSocket(server, path)


async def read_command(reader: asyncio.StreamReader) -> bytes:
    """The command line: up to the first newline, the end of the client's data, or MAX_COMMAND_BYTES (a
    longer line is cut there and answered: its words come first)."""
    data = b""
    while b"\n" not in data and len(data) < MAX_COMMAND_BYTES:
        chunk = await reader.read(MAX_COMMAND_BYTES)
        if not chunk:
            break
        data += chunk
    return data.split(b"\n", 1)[0][:MAX_COMMAND_BYTES]


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
