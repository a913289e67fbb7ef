"""Which process holds the server side of a loopback TCP connection: for tests that need a request served by a
given worker (the workers accept from one listening socket, so the kernel picks), read from /proc (Linux)."""

from __future__ import annotations

import os
import socket

# Connections made at once by in_other_worker (see there).
CONNECT_BURST = 4


def _inode(server_port: int, client_port: int) -> str | None:
    """The inode of the IPv4 socket 127.0.0.1:server_port <- 127.0.0.1:client_port, from /proc/net/tcp."""
    local, remote = f"0100007F:{server_port:04X}", f"0100007F:{client_port:04X}"
    with open("/proc/net/tcp") as table:
        next(table)  # the column names
        for line in table:
            fields = line.split()
            if fields[1] == local and fields[2] == remote:
                return fields[9]
    return None


def owner(client: socket.socket, pids: list[int]) -> int | None:
    """Which of `pids` has accepted `client`'s connection (None: none yet, still in the listen queue)."""
    server_port = client.getpeername()[1]
    inode = _inode(server_port, client.getsockname()[1])
    if inode is None or inode == "0":
        return None
    wanted = f"socket:[{inode}]"
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == wanted:
                    return pid
            except OSError:
                continue
    return None


def in_other_worker(port: int, pids: list[int], avoid: int, tries: int = 100, timeout: float = 10.0
                    ) -> socket.socket:
    """A connection to `port` (no request sent yet) that a worker of `pids` other than `avoid` accepted.

    With EPOLLEXCLUSIVE the kernel wakes the first worker that sleeps on the listener, so while every worker
    is idle one of them takes every new connection. The connections are made in bursts of CONNECT_BURST with
    no pause: the worker woken by the first is still awake accepting when the next arrive, so they may wake
    another. The ones not returned are closed."""
    from support.waiting import eventually

    for _ in range(max(1, tries // CONNECT_BURST)):
        burst = [socket.create_connection(("127.0.0.1", port), timeout=timeout) for _ in range(CONNECT_BURST)]
        found: socket.socket | None = None
        for sock in burst:
            pid = eventually(lambda sock=sock: owner(sock, pids), timeout=timeout)  # type: ignore[misc]
            if found is None and pid != avoid:
                found = sock
            else:
                sock.close()
        if found is not None:
            return found
    raise AssertionError(f"no connection of {tries} landed in a worker other than {avoid}")


def split_between_workers(port: int, pids: list[int], one: int, other: int, tries: int = 400,
                          timeout: float = 10.0) -> tuple[list[socket.socket], list[socket.socket]]:
    """`one` connections to `port` that one worker accepted and `other` that another did (no request sent yet):
    new connections until two workers hold that many (the kernel picks: with EPOLLEXCLUSIVE an idle worker
    may get every new connection, and one busy closing the last one it got lets another have the next; the
    connections not returned are closed)."""
    from support.waiting import eventually

    held: dict[int, list[socket.socket]] = {}
    chosen: tuple[list[socket.socket], list[socket.socket]] | None = None
    try:
        for _ in range(tries):
            sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
            pid = eventually(lambda sock=sock: owner(sock, pids), timeout=timeout)  # type: ignore[misc]
            mine = held.setdefault(pid, [])
            if len(mine) >= max(one, other):
                sock.close()  # (not needed; closing it also keeps its worker busy as the next one comes)
                continue
            mine.append(sock)
            pairs = [(a, b) for a in held for b in held if a != b and len(held[a]) >= one and len(held[b]) >= other]
            if pairs:
                first, second = pairs[0]
                chosen = held[first][:one], held[second][:other]
                return chosen
    finally:
        keep = {id(sock) for group in chosen or () for sock in group}
        for group in held.values():
            for sock in group:
                if id(sock) not in keep:
                    sock.close()
    raise AssertionError(f"{tries} connections did not give {one} in one worker and {other} in another")
