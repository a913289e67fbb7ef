"""Plain HTTP sent to a TLS port (issue 20, item 6): an HTTP listener answers nginx's 400 in plain text and
closes, a TCP listener with TLS closes; both log it; TLS clients on the same port are served as before."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

from support.backends import EchoBackend
from support.http_backends import HttpBackend
from support.rsp_process import RspProcess, free_port

from .conftest import CertSet, client_context, tls_get

IO_TIMEOUT = 10.0
LOG_TIMEOUT = 10.0


def plain_exchange(port: int, request: bytes) -> bytes:
    """Send `request` unencrypted and read until rsp closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as sock:
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
    rsp = run_rsp(f"""
listen = {{ {{ address = "127.0.0.1", port = {free_port()}, mode = "http", pool = "web",
  tls = {{ certificates = {{ {{ cert = "{certs.a.cert_path}", key = "{certs.a.key_path}" }} }} }} }} }}
pools = {{ web = {{ backends = {{ "127.0.0.1:{backend.port}" }} }} }}
http = {{ access_log = "off" }}
workers = 1
""")
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
