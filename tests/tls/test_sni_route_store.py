"""SNI routing reads the route store (docs/routestore.md): a name no static `sni_routes` entry has is looked
up in Redis (`hostnames:<name>:backends`, then `httpsDefault`, never the HTTP default), with one worker or
many. The backends hold the certificates: rsp only reads the ClientHello's name."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable

import pytest

from support.http_client import lua
from support.redis_server import RedisServer
from support.rsp_process import RspProcess, free_port

from .conftest import CertSet, TlsHttpBackend, client_context

IO_TIMEOUT = 10.0
PROPAGATION_BOUND = 1.0  # a published change is live within this (docs/routestore.md)


def tls_get(port: int, context: ssl.SSLContext, name: str) -> bytes:
    """One GET over TLS through rsp's passthrough, to whichever backend the name routes to."""
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as raw, \
            context.wrap_socket(raw, server_hostname=name) as tls:
        tls.sendall(f"GET /sni HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
        out = b""
        while True:
            try:
                chunk = tls.recv(65536)
            except ssl.SSLZeroReturnError:
                break
            if not chunk:
                break
            out += chunk
        return out


@pytest.mark.parametrize("workers", [1, 2])
def test_sni_names_are_looked_up_in_the_route_store(run_rsp: Callable[..., RspProcess], redis_server: RedisServer,
                                                    tls_backend: type[TlsHttpBackend], certs: CertSet,
                                                    workers: int) -> None:
    static = tls_backend(certs.a, name="static")
    stored = tls_backend(certs.b, name="stored")
    tls_default = tls_backend(certs.fallback, name="tls-default")
    http_default = tls_backend(certs.fallback, name="http-default")
    client = redis_server.client()
    client.sadd("hostnames:b.example:backends", f"127.0.0.1:{stored.port}")
    client.sadd("hostnames:httpDefault:backends", f"127.0.0.1:{http_default.port}")
    rsp = run_rsp(f"""
listen = {{ {{ address = "127.0.0.1", port = {free_port()}, pool = "a",
  sni_routes = {{ {{ name = "a.example", pool = "a" }} }} }} }}
pools = {{ a = {{ backends = {{ "127.0.0.1:{static.port}" }} }} }}
route_store = {lua({"url": redis_server.url, "template": "a"})}
workers = {workers}
""")
    context = client_context(certs.ca.path, alpn=False)
    for _ in range(2 * workers):  # new connections: with two workers both take some
        assert b"static GET /sni" in tls_get(rsp.port, context, "a.example")
        assert b"stored GET /sni" in tls_get(rsp.port, context, "b.example")
    # A name with no key of its own and no httpsDefault: closed (the HTTP default is not for TLS).
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        tls_get(rsp.port, context, "default.example")
    assert http_default.accepted == 0
    client.sadd("hostnames:httpsDefault:backends", f"127.0.0.1:{tls_default.port}")
    client.publish("rsp:routes", "httpsDefault")  # what `rsp routes` does after a write
    reply, deadline = b"", time.monotonic() + PROPAGATION_BOUND
    while b"tls-default GET /sni" not in reply and time.monotonic() < deadline:
        try:
            reply = tls_get(rsp.port, context, "default.example")
        except (ssl.SSLError, ConnectionError, OSError):
            time.sleep(0.01)
    assert b"tls-default GET /sni" in reply, rsp.stderr_lines[-15:]
    assert http_default.accepted == 0
