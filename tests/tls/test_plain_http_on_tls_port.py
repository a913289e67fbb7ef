"""Plain HTTP sent to a TLS port (issue 20, item 6): an HTTP listener answers nginx's 400 in plain text and
closes, a TCP listener with TLS closes; both log it; TLS clients on the same port are served as before."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from support.backends import EchoBackend
from support.http_backends import HttpBackend
from support.rsp_process import RspProcess, free_port

from .conftest import CertSet, client_context, tls_get

IO_TIMEOUT = 10.0
LOG_TIMEOUT = 10.0
# How long a first segment is left alone, so that rsp reads it by itself before the rest comes.
SEGMENT_GAP = 0.3


def still_open_after(sock: socket.socket, seconds: float) -> bytes:
    """What rsp sent within `seconds` (b"" when it sent nothing and kept the connection open); raises when
    it closed the connection."""
    sock.settimeout(seconds)
    try:
        data = sock.recv(65536)
    except TimeoutError:
        return b""
    finally:
        sock.settimeout(IO_TIMEOUT)
    if not data:
        raise ConnectionError("closed")
    return data


def http_tls_config(certs: CertSet, backend: int, extra: str = "") -> str:
    return f"""
listen = {{ {{ address = "127.0.0.1", port = {free_port()}, mode = "http", pool = "web",
  tls = {{ certificates = {{ {{ cert = "{certs.a.cert_path}", key = "{certs.a.key_path}" }} }} }} }} }}
pools = {{ web = {{ backends = {{ "127.0.0.1:{backend}" }} }} }}
http = {{ access_log = "off"{extra} }}
workers = 1
"""


def plain_exchange(port: int, request: bytes, first: bytes = b"") -> bytes:
    """Send `request` unencrypted (`first` alone before it, as its own segment) and read until rsp closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as sock:
        if first:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(first)
            assert not still_open_after(sock, SEGMENT_GAP), "rsp closed on the first segment"
        sock.sendall(request)
        received = b""
        deadline = time.monotonic() + IO_TIMEOUT
        while time.monotonic() < deadline:
            data = sock.recv(65536)
            if not data:
                return received
            received += data
        raise AssertionError(f"rsp did not close the connection; got {received!r}")


def test_http_listener_answers_plain_http_with_400(run_rsp: Callable[..., RspProcess],
                                                   start_backend: Callable[..., Any], certs: CertSet) -> None:
    backend = start_backend(HttpBackend)
    rsp = run_rsp(http_tls_config(certs, backend.port))
    reply = plain_exchange(rsp.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 400 Bad Request"
    assert b"Connection: close" in head.split(b"\r\n")
    assert b"The plain HTTP request was sent to HTTPS port" in body
    assert backend.requests == []  # nothing of it reached the backend
    assert rsp.wait_for_stderr(r"plain HTTP request sent to a HTTP TLS port; answered 400 \(1 refused",
                               LOG_TIMEOUT) is not None
    # TLS clients on the same port are served
    reply_tls = tls_get(rsp.port, certs.ca.path, "a.example")
    assert reply_tls.response.startswith(b"HTTP/1.1 200 ")


def test_tcp_tls_listener_closes_plain_http(run_rsp: Callable[..., RspProcess],
                                            start_backend: Callable[..., Any], certs: CertSet) -> None:
    echo = start_backend(EchoBackend)
    rsp = run_rsp(f"""
listen = {{ {{ address = "127.0.0.1", port = {free_port()}, pool = "echo",
  tls = {{ certificates = {{ {{ cert = "{certs.a.cert_path}", key = "{certs.a.key_path}" }} }} }} }} }}
pools = {{ echo = {{ backends = {{ "127.0.0.1:{echo.port}" }} }} }}
workers = 1
""")
    assert plain_exchange(rsp.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") == b""
    assert rsp.wait_for_stderr(r"plain HTTP request sent to a TCP TLS port; closed \(1 refused",
                               LOG_TIMEOUT) is not None
    # a TLS client still gets its echo
    raw = socket.create_connection(("127.0.0.1", rsp.port), timeout=IO_TIMEOUT)
    with client_context(certs.ca.path, alpn=False).wrap_socket(raw, server_hostname="a.example") as tls:
        tls.sendall(b"ping")
        assert tls.recv(4) == b"ping"


@pytest.mark.parametrize("first", [b"G", b"GE", b"GET", b"M-SEARC"])
def test_a_plain_request_split_before_its_first_space_gets_the_400_too(
        run_rsp: Callable[..., RspProcess], start_backend: Callable[..., Any], certs: CertSet, first: bytes) -> None:
    backend = start_backend(HttpBackend)
    rsp = run_rsp(http_tls_config(certs, backend.port))
    line = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" if first.startswith(b"G") else b"M-SEARCH * HTTP/1.1\r\n\r\n"
    reply = plain_exchange(rsp.port, line[len(first):], first=first)
    assert reply.startswith(b"HTTP/1.1 400 Bad Request\r\n"), reply
    assert b"The plain HTTP request was sent to HTTPS port" in reply
    assert rsp.wait_for_stderr(r"answered 400 \(1 refused", LOG_TIMEOUT) is not None


def test_a_connection_that_never_decides_is_closed_at_the_handshake_bound(
        run_rsp: Callable[..., RspProcess], start_backend: Callable[..., Any], certs: CertSet) -> None:
    # Undecided first bytes wait under the handshake's bound (http.header_timeout in HTTP mode), no longer.
    backend = start_backend(HttpBackend)
    rsp = run_rsp(http_tls_config(certs, backend.port, extra=", header_timeout = 1"))
    with socket.create_connection(("127.0.0.1", rsp.port), timeout=IO_TIMEOUT) as sock:
        sock.sendall(b"GE")
        assert sock.recv(65536) == b""  # closed by rsp (within IO_TIMEOUT, or recv raises)
    assert "refused" not in rsp.stderr_text
    # A TLS client is not kept waiting by the check: served as before.
    assert tls_get(rsp.port, certs.ca.path, "a.example").response.startswith(b"HTTP/1.1 200 ")
