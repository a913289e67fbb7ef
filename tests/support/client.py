"""Blocking client helpers for black-box tests (every call bounded by a timeout)."""

from __future__ import annotations

import socket
import time

CLIENT_TIMEOUT = 15.0
RECV_SIZE = 256 * 1024


def connect(port: int, host: str = "127.0.0.1", timeout: float = CLIENT_TIMEOUT,
            rcvbuf: int | None = None) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if rcvbuf is not None:
            # Must be set before connect() so that the TCP window is negotiated with it.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(timeout)
        sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def recv_to_eof(sock: socket.socket, limit: int = 64 * 1024 * 1024) -> bytes:
    data = bytearray()
    while len(data) <= limit:
        chunk = sock.recv(RECV_SIZE)
        if not chunk:
            return bytes(data)
        data += chunk
    raise AssertionError(f"peer sent more than {limit} bytes")


def recv_exact(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(min(RECV_SIZE, size - len(data)))
        if not chunk:
            raise AssertionError(f"EOF after {len(data)} of {size} bytes")
        data += chunk
    return bytes(data)


def request(port: int, data: bytes, host: str = "127.0.0.1", timeout: float = CLIENT_TIMEOUT,
            half_close: bool = True) -> bytes:
    """Connect, send `data`, optionally shut down writing, read until EOF."""
    with connect(port, host, timeout) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        return recv_to_eof(sock)


def echo_roundtrip(port: int, data: bytes, host: str = "127.0.0.1", timeout: float = CLIENT_TIMEOUT) -> bytes:
    """Send `data` through an echo path and read the same number of bytes back (no half-close)."""
    with connect(port, host, timeout) as sock:
        sock.sendall(data)
        return recv_exact(sock, len(data))


def wait_closed(sock: socket.socket, timeout: float) -> tuple[str, float]:
    """Wait for the peer to close: returns ("eof" | "reset" | "timeout", seconds waited).

    Bytes that arrive meanwhile are discarded.
    """
    start = time.monotonic()
    try:
        while (remaining := timeout - (time.monotonic() - start)) > 0:
            sock.settimeout(remaining)
            if not sock.recv(65536):
                return "eof", time.monotonic() - start
    except ConnectionResetError:
        return "reset", time.monotonic() - start
    except TimeoutError:
        pass
    return "timeout", time.monotonic() - start
