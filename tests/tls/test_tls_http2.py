"""HTTP/2 over TLS: ALPN h2 on a listener with `http2 = true`, HTTP/1.1 for clients that do not offer it."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Callable
from typing import Any

from support.h2_client import H2Client
from support.http_backends import HttpBackend, ReceivedRequest, Reply
from support.payload import payload as content
from support.rsp_process import RspProcess, free_port

from .conftest import CertSet, tls_get


def config(backend_port: int, certs: CertSet) -> str:
    return f"""
listen = {{ {{ address = "127.0.0.1", port = {free_port()}, mode = "http", pool = "web", http2 = true,
  tls = {{ certificates = {{ {{ cert = "{certs.a.cert_path}", key = "{certs.a.key_path}" }} }} }} }} }}
pools = {{ web = {{ backends = {{ "127.0.0.1:{backend_port}" }} }} }}
http = {{ access_log = "off" }}
workers = 1
"""


def h2_context(certs: CertSet) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(certs.ca.path))
    context.set_alpn_protocols(["h2", "http/1.1"])
    return context


def test_alpn_h2_serves_http2_and_http1_clients_still_get_http1(
        run_rsp: Callable[..., RspProcess], start_backend: Callable[..., Any], certs: CertSet) -> None:
    backend = start_backend(HttpBackend, name="b")
    rsp = run_rsp(config(backend.port, certs))
    with H2Client(rsp.port, tls=h2_context(certs), server_name="a.example") as client:
        assert client.alpn == "h2"
        responses = client.exchange([("GET", f"/t{i}", [], b"") for i in range(10)])
    assert [r.status for r in responses] == [200] * 10
    assert all(r.body.startswith(b"b GET /t") for r in responses)
    assert backend.requests[0].header("x-forwarded-proto") == "https"
    # A client offering only http/1.1 is served HTTP/1.1 on the same listener.
    reply = tls_get(rsp.port, certs.ca.path, "a.example")
    assert reply.alpn == "http/1.1"


def test_curl_http2_over_tls(run_rsp: Callable[..., RspProcess], start_backend: Callable[..., Any],
                             certs: CertSet) -> None:
    backend = start_backend(HttpBackend, name="b")
    rsp = run_rsp(config(backend.port, certs))
    out = subprocess.run(["curl", "-sS", "--http2", "--cacert", str(certs.ca.path), "--resolve",
                          f"a.example:{rsp.port}:127.0.0.1", "-w", "\n%{http_version} %{http_code}",
                          f"https://a.example:{rsp.port}/over-tls"], capture_output=True, timeout=20, check=True)
    body, _, status = out.stdout.rpartition(b"\n")
    assert status == b"2 200", out
    assert body.startswith(b"b GET /over-tls "), body


def test_large_downloads_over_tls_arrive_whole_and_in_order(
        run_rsp: Callable[..., RspProcess], start_backend: Callable[..., Any], certs: CertSet) -> None:
    """Large bodies over HTTP/2 + TLS: DATA frames cut from the backend's chunks without copies, and TLS
    encrypting only what the socket takes. Through a 16 KiB window (rsp holds the rest back, stream by
    stream), and three at once through a wide one (large writes, the socket full, interleaved frames)."""
    bodies = {f"/big{i}": content(3 * 1024 * 1024 + i)[::1 if i % 2 else -1] for i in range(3)}

    def handler(req: ReceivedRequest) -> Reply:
        return Reply(headers=[("Content-Type", "application/octet-stream")], body=bodies[req.target])

    backend = start_backend(HttpBackend, handler=handler, name="b")
    rsp = run_rsp(config(backend.port, certs))
    with H2Client(rsp.port, tls=h2_context(certs), server_name="a.example", timeout=60, window=16384) as client:
        (small_window,) = client.exchange([("GET", "/big0", [], b"")])
    assert small_window.status == 200 and small_window.body == bodies["/big0"]
    with H2Client(rsp.port, tls=h2_context(certs), server_name="a.example", timeout=60) as client:
        responses = client.exchange([("GET", path, [], b"") for path in bodies])
    assert [r.status for r in responses] == [200] * 3
    assert [r.body == bodies[path] for r, path in zip(responses, bodies, strict=True)] == [True] * 3
