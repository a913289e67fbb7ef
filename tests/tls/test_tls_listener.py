"""A TLS listener in HTTP mode, end to end: rsp as a process, real clients (Python ssl, openssl, curl)."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from support.http_backends import HttpBackend
from support.rsp_process import RspProcess

from .conftest import CertSet, client_context, listener_config, tls_get

TOOL_TIMEOUT = 20


@pytest.fixture
def site(run_rsp: Callable[..., RspProcess], start_backend: Callable[..., Any],
         certs: CertSet) -> tuple[RspProcess, HttpBackend]:
    backend = start_backend(HttpBackend)
    return run_rsp(listener_config(backend.port, certs)), backend


@pytest.mark.parametrize(("name", "expected"), [
    ("a.example", "a.example"),
    ("x.b.example", "*.b.example"),  # the wildcard
    ("b.example", "*.b.example"),  # the same certificate's second name
    ("A.Example", "a.example"),  # names compare case-insensitively (RFC 6066 §3)
    ("unknown.example", "default.example"),  # no certificate for it: the default one
])
def test_sni_picks_the_certificate_python_ssl(site: tuple[RspProcess, HttpBackend], certs: CertSet, name: str,
                                              expected: str) -> None:
    rsp, _backend = site
    context = client_context(certs.ca.path)
    context.check_hostname = False  # the unknown name gets the default certificate, which does not match it
    reply = tls_get(rsp.port, certs.ca.path, name, context=context)
    assert reply.served_name == expected
    assert reply.response.startswith(b"HTTP/1.1 200 ")
    assert reply.alpn == "http/1.1"
    assert reply.version in ("TLSv1.2", "TLSv1.3")


def test_client_without_sni_gets_the_default(site: tuple[RspProcess, HttpBackend], certs: CertSet) -> None:
    rsp, _ = site
    reply = tls_get(rsp.port, certs.ca.path, None)
    assert reply.served_name == "default.example"
    assert reply.response.startswith(b"HTTP/1.1 200 ")


def test_x_forwarded_proto_https_reaches_the_backend(site: tuple[RspProcess, HttpBackend], certs: CertSet) -> None:
    rsp, backend = site
    for _ in range(2):  # the second request goes through the head caches
        reply = tls_get(rsp.port, certs.ca.path, "a.example", "/proto")
        assert reply.response.startswith(b"HTTP/1.1 200 ")
    assert [r.header("X-Forwarded-Proto") for r in backend.requests] == ["https", "https"]


def test_keep_alive_requests_over_one_tls_connection(site: tuple[RspProcess, HttpBackend], certs: CertSet) -> None:
    rsp, backend = site
    import socket
    raw = socket.create_connection(("127.0.0.1", rsp.port), timeout=10)
    with client_context(certs.ca.path).wrap_socket(raw, server_hostname="a.example") as tls:
        for i in range(20):
            tls.sendall(f"GET /k{i} HTTP/1.1\r\nHost: a.example\r\n\r\n".encode())
            data = b""
            while b"\r\n\r\n" not in data or not data.endswith(b"\n"):
                chunk = tls.recv(65536)
                assert chunk, data
                data += chunk
            assert data.startswith(b"HTTP/1.1 200 ") and f"/k{i}".encode() in data
    assert backend.paths() == [f"/k{i}" for i in range(20)]


def test_a_large_body_crosses_tls_both_ways(run_rsp: Callable[..., RspProcess], start_backend: Callable[..., Any],
                                            certs: CertSet) -> None:
    from support.http_backends import Reply
    big = bytes(range(256)) * 4096  # 1 MiB: many TLS records, write-buffer flow control
    backend = start_backend(HttpBackend, lambda req: Reply(body=req.body + big))
    rsp = run_rsp(listener_config(backend.port, certs))
    import socket
    raw = socket.create_connection(("127.0.0.1", rsp.port), timeout=20)
    with client_context(certs.ca.path).wrap_socket(raw, server_hostname="a.example") as tls:
        tls.sendall(b"POST /up HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
                    % len(big) + big)
        data = b""
        while True:
            chunk = tls.recv(1 << 20)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert body == big + big


def test_openssl_s_client_servername(site: tuple[RspProcess, HttpBackend], certs: CertSet) -> None:
    rsp, _ = site
    for name, subject in (("a.example", "CN=a.example"), ("z.b.example", "CN=*.b.example")):
        out = subprocess.run(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{rsp.port}", "-servername", name,
             "-CAfile", str(certs.ca.path), "-verify_return_error", "-alpn", "http/1.1", "-brief"],
            input=b"", capture_output=True, timeout=TOOL_TIMEOUT)
        text = (out.stdout + out.stderr).decode(errors="replace").replace(" = ", "=")
        assert subject in text, text
        assert "Verification: OK" in text, text


def test_curl_resolve_cacert(site: tuple[RspProcess, HttpBackend], certs: CertSet) -> None:
    rsp, backend = site
    for name in ("a.example", "www.b.example"):
        out = subprocess.run(
            ["curl", "-sS", "--fail", "--resolve", f"{name}:{rsp.port}:127.0.0.1", "--cacert", str(certs.ca.path),
             "-w", "%{http_version} %{ssl_verify_result}", f"https://{name}:{rsp.port}/curl"],
            capture_output=True, timeout=TOOL_TIMEOUT)
        assert out.returncode == 0, out.stderr
        assert out.stdout.endswith(b"1.1 0"), out.stdout  # HTTP/1.1 (ALPN), verification result 0: OK
    assert backend.paths() == ["/curl", "/curl"]


def test_tls_1_1_is_refused(site: tuple[RspProcess, HttpBackend], certs: CertSet) -> None:
    rsp, _ = site
    # SECLEVEL=0 lets this client offer TLS 1.1 at all: the refusal must come from rsp.
    out = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{rsp.port}", "-servername", "a.example", "-tls1_1",
         "-cipher", "DEFAULT:@SECLEVEL=0"],
        input=b"", capture_output=True, timeout=TOOL_TIMEOUT)
    text = (out.stdout + out.stderr).decode(errors="replace")
    assert out.returncode != 0, text
    assert "protocol version" in text or "unsupported protocol" in text, text
    # and one that offers TLS 1.2 on the same port succeeds
    ok = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{rsp.port}", "-servername", "a.example", "-tls1_2",
         "-CAfile", str(certs.ca.path), "-brief"], input=b"", capture_output=True, timeout=TOOL_TIMEOUT)
    assert b"Protocol version: TLSv1.2" in ok.stdout + ok.stderr


def test_tls12_ciphers_are_the_intermediate_profile(site: tuple[RspProcess, HttpBackend], certs: CertSet) -> None:
    rsp, _ = site
    # A CBC suite (allowed by OpenSSL's defaults, not by Mozilla's intermediate profile) is refused.
    out = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{rsp.port}", "-servername", "a.example", "-tls1_2",
         "-cipher", "ECDHE-RSA-AES128-SHA256"], input=b"", capture_output=True, timeout=TOOL_TIMEOUT)
    assert out.returncode != 0
    ctx = client_context(certs.ca.path)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    cipher = tls_get(rsp.port, certs.ca.path, "a.example", context=ctx).cipher
    assert cipher is not None and cipher.startswith("ECDHE-") and ("GCM" in cipher or "CHACHA" in cipher)
