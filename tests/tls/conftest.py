"""Fixtures of the TLS tests: a certificate set made once per session, TLS backends, config text."""

from __future__ import annotations

import shutil
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.http_backends import Handler, HttpBackend
from support.rsp_process import free_port

from .certs import Authority, Issued


@dataclass
class CertSet:
    ca: Authority  # signs the listener's certificates
    a: Issued  # a.example (RSA 2048)
    b: Issued  # *.b.example and b.example (ECDSA P-256)
    fallback: Issued  # default.example
    client_ca: Authority
    client: Issued  # a client certificate signed by client_ca
    stranger: Issued  # a client certificate signed by another CA
    backend_ca: Authority
    backend: Issued  # backend.test and 127.0.0.1, signed by backend_ca
    other_ca: Authority  # signs nothing rsp is given: the wrong CA


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertSet:
    d: Path = tmp_path_factory.mktemp("certs")
    ca = Authority(d, "listener-ca")
    client_ca = Authority(d, "client-ca")
    other = Authority(d, "other-ca")
    backend_ca = Authority(d, "backend-ca")
    return CertSet(
        ca=ca,
        a=ca.issue("a", ["a.example"], kind="rsa"),
        b=ca.issue("b", ["*.b.example", "b.example"], kind="ec"),
        fallback=ca.issue("default", ["default.example"]),
        client_ca=client_ca,
        client=client_ca.issue("client", ["client.example"], client=True),
        stranger=other.issue("stranger", ["stranger.example"], client=True),
        backend_ca=backend_ca,
        backend=backend_ca.issue("backend", ["backend.test"], ips=("127.0.0.1",)),
        other_ca=other,
    )


class TlsHttpBackend(HttpBackend):
    """HttpBackend behind TLS (Python's ssl, a certificate of its own): for backend TLS and SNI routing."""

    def __init__(self, issued: Issued, handler: Handler | None = None, name: str = "tls-backend") -> None:
        super().__init__(handler, name)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(issued.cert_path, issued.key_path)
        self.server_names: list[str | None] = []

        def remember(_sock: ssl.SSLObject | ssl.SSLSocket, name: str | None, _ctx: ssl.SSLContext) -> None:
            self.server_names.append(name)

        self.context.sni_callback = remember

    def handle(self, conn: socket.socket) -> None:
        try:
            tls = self.context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            return  # a refused handshake is the test's subject, not a backend error
        try:
            super().handle(tls)
        finally:
            tls.close()


@pytest.fixture
def tls_backend() -> Iterator[type[TlsHttpBackend]]:
    started: list[TlsHttpBackend] = []

    class Started(TlsHttpBackend):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            started.append(self)
            self.start()

    try:
        yield Started
    finally:
        for server in started:
            server.stop()


def client_context(ca: Path | None = None, *, alpn: bool = True) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca) if ca else None)
    if alpn:
        context.set_alpn_protocols(["http/1.1"])
    return context


@dataclass
class TlsReply:
    served_name: str  # the first DNS name of the certificate the server presented
    alpn: str | None
    version: str | None
    cipher: str | None
    response: bytes


def tls_get(port: int, ca: Path, server_name: str | None, path: str = "/",
            context: ssl.SSLContext | None = None) -> TlsReply:
    """One GET over TLS to 127.0.0.1:port, read to the end."""
    ctx = context or client_context(ca)
    if server_name is None:
        ctx.check_hostname = False
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    with ctx.wrap_socket(raw, server_hostname=server_name) as tls:
        host = server_name or "nosni"
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while True:
            try:
                data = tls.recv(65536)
            except ssl.SSLZeroReturnError:
                break
            if not data:
                break
            chunks.append(data)
        cert = tls.getpeercert()
        assert cert
        name = next(str(value) for kind, value in cert["subjectAltName"] if kind == "DNS")
        cipher = tls.cipher()
        return TlsReply(name, tls.selected_alpn_protocol(), tls.version(), cipher[0] if cipher else None,
                        b"".join(chunks))


def listener_config(backend_port: int, certs: CertSet, *, extra_tls: str = "", port: int = 0) -> str:
    return f"""
listen = {{ {{ address = "127.0.0.1", port = {port or free_port()}, mode = "http", pool = "web",
  tls = {{ certificates = {{
      {{ cert = "{certs.a.cert_path}", key = "{certs.a.key_path}" }},
      {{ cert = "{certs.b.cert_path}", key = "{certs.b.key_path}" }},
      {{ cert = "{certs.fallback.cert_path}", key = "{certs.fallback.key_path}" }},
    }}, default = "default.example" {extra_tls} }} }} }}
pools = {{ web = {{ backends = {{ "127.0.0.1:{backend_port}" }} }} }}
http = {{ access_log = "off" }}
workers = 2
"""


def copied(issued: Issued, directory: Path) -> tuple[Path, Path]:
    """The certificate and key in a directory of the test's own (a test removes one)."""
    cert, key = directory / issued.cert_path.name, directory / issued.key_path.name
    shutil.copy(issued.cert_path, cert)
    shutil.copy(issued.key_path, key)
    return cert, key


def three_certs(a: tuple[object, object], b: tuple[object, object], fallback: tuple[object, object],
                port: int = 8443, backend_port: int = 9) -> str:
    return f"""
listen = {{ {{ address = "127.0.0.1", port = {port}, mode = "http", pool = "web",
  tls = {{ certificates = {{
      {{ cert = "{a[0]}", key = "{a[1]}" }},
      {{ cert = "{b[0]}", key = "{b[1]}" }},
      {{ cert = "{fallback[0]}", key = "{fallback[1]}" }},
    }}, default = "default.example" }} }} }}
pools = {{ web = {{ backends = {{ "127.0.0.1:{backend_port}" }} }} }}
http = {{ access_log = "off" }}
workers = 1
"""


def pair(issued: Issued) -> tuple[Path, Path]:
    return issued.cert_path, issued.key_path
