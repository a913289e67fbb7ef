"""Client-certificate verification on a listener, and TLS from rsp to its backends."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from typing import Any

import pytest

from support.backends import EchoBackend
from support.http_backends import HttpBackend
from support.http_client import plain_get
from support.rsp_process import RspProcess, free_port
from support.waiting import wait_until

from .conftest import CertSet, TlsHttpBackend, client_context, listener_config, tls_get


def test_client_certificate_required(run_rsp: Callable[..., RspProcess], start_backend: Callable[..., Any],
                                     certs: CertSet) -> None:
    backend = start_backend(HttpBackend)
    rsp = run_rsp(listener_config(backend.port, certs, extra_tls=f', client_ca = "{certs.client_ca.path}"'))
    good = client_context(certs.ca.path)
    good.load_cert_chain(certs.client.cert_path, certs.client.key_path)
    assert tls_get(rsp.port, certs.ca.path, "a.example", context=good).response.startswith(b"HTTP/1.1 200 ")
    stranger = client_context(certs.ca.path)
    stranger.load_cert_chain(certs.stranger.cert_path, certs.stranger.key_path)
    for context in (client_context(certs.ca.path), stranger):  # none, and one from another CA
        with pytest.raises((ssl.SSLError, ConnectionError)):
            tls_get(rsp.port, certs.ca.path, "a.example", context=context)
    assert backend.paths() == ["/"]  # only the client with a certificate got through


def backend_tls_config(listen_port: int, backend_port: int, tls: str) -> str:
    return f"""
listen = {{ {{ address = "127.0.0.1", port = {listen_port}, mode = "http", pool = "secure" }} }}
pools = {{ secure = {{ backends = {{ "127.0.0.1:{backend_port}" }}, retries = 0, {tls} }} }}
http = {{ access_log = "off" }}
workers = 1 -- one process, one upstream keep-alive pool: the tests count the backend's TLS connections
"""


@pytest.mark.parametrize("sni", ["", "backend.test"])
def test_backend_tls_verified(run_rsp: Callable[..., RspProcess], tls_backend: type[TlsHttpBackend],
                              certs: CertSet, sni: str) -> None:
    backend = tls_backend(certs.backend, name="secure")
    sni_key = f', sni = "{sni}"' if sni else ""
    rsp = run_rsp(backend_tls_config(free_port(), backend.port, f'tls = {{ ca = "{certs.backend_ca.path}"{sni_key} }}'))
    for i in range(3):  # the second and third reuse the pooled TLS connection
        reply = plain_get(rsp.port, f"/s{i}")
        assert reply.startswith(b"HTTP/1.1 200 "), reply
        assert f"secure GET /s{i}".encode() in reply
    # The certificate names 127.0.0.1 as an IP SAN: without `sni`, rsp checks the address and sends no SNI
    # (RFC 6066 §3: literal addresses are not sent).
    assert backend.server_names[0] == (sni or None)
    assert backend.accepted == 1


def test_backend_tls_wrong_ca_is_502(run_rsp: Callable[..., RspProcess], tls_backend: type[TlsHttpBackend],
                                     certs: CertSet) -> None:
    backend = tls_backend(certs.backend, name="secure")
    rsp = run_rsp(backend_tls_config(free_port(), backend.port, f'tls = {{ ca = "{certs.other_ca.path}" }}'))
    reply = plain_get(rsp.port)
    assert reply.startswith(b"HTTP/1.1 502 "), reply
    assert backend.requests == []


def test_backend_tls_wrong_name_is_502(run_rsp: Callable[..., RspProcess], tls_backend: type[TlsHttpBackend],
                                       certs: CertSet) -> None:
    backend = tls_backend(certs.backend, name="secure")
    rsp = run_rsp(backend_tls_config(free_port(), backend.port,
                                     f'tls = {{ ca = "{certs.backend_ca.path}", sni = "elsewhere.test" }}'))
    assert plain_get(rsp.port).startswith(b"HTTP/1.1 502 ")
    off = run_rsp(backend_tls_config(free_port(), backend.port, 'tls = { verify = false, sni = "elsewhere.test" }'))
    assert plain_get(off.port).startswith(b"HTTP/1.1 200 ")  # verify = false: encrypted, not authenticated


def test_tcp_mode_terminates_tls_and_relays_plaintext(run_rsp: Callable[..., RspProcess],
                                                      start_backend: Callable[..., Any], certs: CertSet) -> None:
    echo = start_backend(EchoBackend)
    rsp = run_rsp(f"""
listen = {{ {{ address = "127.0.0.1", port = {free_port()}, pool = "echo",
  tls = {{ certificates = {{ {{ cert = "{certs.a.cert_path}", key = "{certs.a.key_path}" }} }} }} }} }}
pools = {{ echo = {{ backends = {{ "127.0.0.1:{echo.port}" }} }} }}
workers = 2
""")
    payload = bytes(range(256)) * 2048  # 512 KiB
    raw = socket.create_connection(("127.0.0.1", rsp.port), timeout=20)
    with client_context(certs.ca.path, alpn=False).wrap_socket(raw, server_hostname="a.example") as tls:
        tls.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = tls.recv(1 << 20)
            assert chunk
            got += chunk
        assert got == payload


def test_sigterm_drains_a_terminated_tcp_connection(run_rsp: Callable[..., RspProcess],
                                                    start_backend: Callable[..., Any], certs: CertSet) -> None:
    import signal
    import time

    echo = start_backend(EchoBackend)
    rsp = run_rsp(f"""
listen = {{ {{ address = "127.0.0.1", port = {free_port()}, pool = "echo",
  tls = {{ certificates = {{ {{ cert = "{certs.a.cert_path}", key = "{certs.a.key_path}" }} }} }} }} }}
pools = {{ echo = {{ backends = {{ "127.0.0.1:{echo.port}" }} }} }}
timeouts = {{ drain = 10 }}
workers = 2
""")
    raw = socket.create_connection(("127.0.0.1", rsp.port), timeout=10)
    with client_context(certs.ca.path, alpn=False).wrap_socket(raw, server_hostname="a.example") as tls:
        tls.sendall(b"before\n")
        assert tls.recv(100) == b"before\n"
        rsp.signal(signal.SIGTERM)
        time.sleep(0.5)
        assert rsp.alive  # the live TLS connection holds the drain open
        tls.sendall(b"during the drain\n")
        assert tls.recv(100) == b"during the drain\n"
    assert rsp.wait(8.0) == 0  # the last connection gone, rsp exits


def test_health_checks_speak_tls_to_a_tls_pool(run_rsp: Callable[..., RspProcess],
                                                tls_backend: type[TlsHttpBackend], certs: CertSet) -> None:
    import time

    good = tls_backend(certs.backend, name="good")
    health = 'health = { kind = "http", path = "/health", interval = 0.2, timeout = 1, rise = 1, fall = 1 }'
    rsp = run_rsp(backend_tls_config(free_port(), good.port, f'tls = {{ ca = "{certs.backend_ca.path}" }}, {health}'))
    deadline = time.monotonic() + 10
    while "/health" not in good.paths() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "/health" in good.paths()  # the probe completed a verified handshake and an HTTP exchange
    assert plain_get(rsp.port, "/app").startswith(b"HTTP/1.1 200 ")
    # The same backend seen through the wrong CA: its checks fail, it is marked down, requests get 503.
    wrong = run_rsp(backend_tls_config(free_port(), good.port, f'tls = {{ ca = "{certs.other_ca.path}" }}, {health}'))
    assert wrong.wait_for_stderr("DOWN", 10.0) is not None, wrong.stderr_lines
    # A worker that takes a request in the same loop turn as the master's news answers it with the state
    # before (it tries the backend: 502); the 503 follows (tests/integration/test_http_errors.py says why).
    answers: list[bytes] = []

    def answered_503() -> bool:
        head = plain_get(wrong.port)[:12]
        answers.append(head)
        assert head in (b"HTTP/1.1 502", b"HTTP/1.1 503"), answers
        return head == b"HTTP/1.1 503"

    assert wait_until(answered_503, timeout=5.0), answers


def test_idle_timeout_closes_a_terminated_tcp_connection(run_rsp: Callable[..., RspProcess],
                                                          start_backend: Callable[..., Any], certs: CertSet) -> None:
    import time

    echo = start_backend(EchoBackend)
    rsp = run_rsp(f"""
listen = {{ {{ address = "127.0.0.1", port = {free_port()}, pool = "echo",
  tls = {{ certificates = {{ {{ cert = "{certs.a.cert_path}", key = "{certs.a.key_path}" }} }} }} }} }}
pools = {{ echo = {{ backends = {{ "127.0.0.1:{echo.port}" }} }} }}
timeouts = {{ idle = 1 }}
workers = 2
""")
    raw = socket.create_connection(("127.0.0.1", rsp.port), timeout=10)
    with client_context(certs.ca.path, alpn=False).wrap_socket(raw, server_hostname="a.example") as tls:
        for _ in range(4):  # activity every 0.4 s keeps it open past the 1 s limit
            tls.sendall(b"ping\n")
            assert tls.recv(100) == b"ping\n"
            time.sleep(0.4)
        started = time.monotonic()
        try:
            closed = tls.recv(100) == b""  # then silence: rsp closes it
        except (ConnectionError, ssl.SSLError):
            closed = True
        assert closed and time.monotonic() - started < 5
    assert rsp.wait_for_stderr("idle timeout", 5.0) is not None
