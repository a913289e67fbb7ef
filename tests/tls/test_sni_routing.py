"""SNI routing without terminating TLS: rsp reads the server name, the backends hold the certificates."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

from support.backends import EchoBackend
from support.rsp_process import RspProcess, free_port

from .conftest import CertSet, TlsHttpBackend, client_context

# Pause between the 1-byte segments of a split ClientHello: long enough for each to leave as its own segment
# (TCP_NODELAY), short enough that a 2 KiB hello takes a second or two at most.
SEGMENT_PAUSE = 0.0005
IO_TIMEOUT = 10.0


def routing_config(port: int, a_port: int, b_port: int, default_port: int | None, timeout: float = 5) -> str:
    default = ', sni_default = "plain"' if default_port else ""
    pools = f'plain = {{ backends = {{ "127.0.0.1:{default_port}" }} }},' if default_port else ""
    return f"""
listen = {{ {{ address = "127.0.0.1", port = {port}, pool = "a",
  sni_routes = {{ {{ name = "a.example", pool = "a" }}, {{ name = "*.b.example", pool = "b" }} }}{default},
  sni_timeout = {timeout} }} }}
pools = {{ a = {{ backends = {{ "127.0.0.1:{a_port}" }} }}, b = {{ backends = {{ "127.0.0.1:{b_port}" }} }}, {pools} }}
workers = 2
"""


def handshake_split(port: int, context: ssl.SSLContext, name: str) -> tuple[socket.socket, ssl.SSLObject,
                                                                            ssl.MemoryBIO, ssl.MemoryBIO]:
    """A TLS client over memory BIOs whose ClientHello goes out one byte per TCP segment."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=name)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outgoing.read()
    assert hello[0] == 22
    for i in range(len(hello)):
        sock.send(hello[i:i + 1])
        time.sleep(SEGMENT_PAUSE)
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            if outgoing.pending:
                sock.sendall(outgoing.read())
            data = sock.recv(65536)
            assert data, "connection closed during the handshake"
            incoming.write(data)
    if outgoing.pending:
        sock.sendall(outgoing.read())
    return sock, tls, incoming, outgoing


def get_over(sock: socket.socket, tls: ssl.SSLObject, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO,
             host: str) -> bytes:
    tls.write(f"GET /sni HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    sock.sendall(outgoing.read())
    out = b""
    while True:
        try:
            out += tls.read(65536)
            continue
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLZeroReturnError:
            return out
        data = sock.recv(65536)
        if not data:
            return out
        incoming.write(data)


def test_two_names_reach_two_backends_without_termination(run_rsp: Callable[..., RspProcess],
                                                           tls_backend: type[TlsHttpBackend],
                                                           start_backend: Callable[..., Any],
                                                           certs: CertSet) -> None:
    a = tls_backend(certs.a, name="backend-a")
    b = tls_backend(certs.b, name="backend-b")
    plain = start_backend(EchoBackend)
    rsp = run_rsp(routing_config(free_port(), a.port, b.port, plain.port))
    # check_hostname on, CA of the backends' certificates: the handshake succeeds only if the backend itself
    # answered (rsp has no certificate on this listener at all).
    context = client_context(certs.ca.path)
    for name, backend, expected in (("a.example", a, b"backend-a"), ("www.b.example", b, b"backend-b")):
        sock, tls, incoming, outgoing = handshake_split(rsp.port, context, name)
        with sock:
            cert = tls.getpeercert()
            assert cert is not None
            reply = get_over(sock, tls, incoming, outgoing, name)
        assert reply.startswith(b"HTTP/1.1 200 ") and expected in reply, reply
        assert backend.server_names == [name]
    assert plain.accepted == 0


def test_not_tls_and_no_sni_go_to_the_default_pool(run_rsp: Callable[..., RspProcess],
                                                   tls_backend: type[TlsHttpBackend],
                                                   start_backend: Callable[..., Any], certs: CertSet) -> None:
    a = tls_backend(certs.a, name="backend-a")
    b = tls_backend(certs.b, name="backend-b")
    plain = start_backend(EchoBackend)
    rsp = run_rsp(routing_config(free_port(), a.port, b.port, plain.port))
    with socket.create_connection(("127.0.0.1", rsp.port), timeout=IO_TIMEOUT) as sock:
        sock.sendall(b"hello, not TLS\n")  # echoed back by the default pool's backend, first bytes included
        got = b""
        while len(got) < 15:
            chunk = sock.recv(100)
            assert chunk
            got += chunk
        assert got == b"hello, not TLS\n"
    # A ClientHello without server_name (a client connecting by address) also goes to the default.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", rsp.port), timeout=IO_TIMEOUT) as raw:
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = context.wrap_bio(incoming, outgoing)  # no server_hostname: no SNI
        try:
            tls.do_handshake()
        except ssl.SSLWantReadError:
            pass
        hello = outgoing.read()
        raw.sendall(hello)
        echoed = b""
        while len(echoed) < len(hello):
            chunk = raw.recv(65536)
            assert chunk
            echoed += chunk
        assert echoed == hello  # the echo backend got the peeked hello, byte for byte
    assert a.accepted == 0 and b.accepted == 0


def test_without_a_default_unknown_or_silent_clients_are_closed(run_rsp: Callable[..., RspProcess],
                                                                tls_backend: type[TlsHttpBackend],
                                                                certs: CertSet) -> None:
    a = tls_backend(certs.a, name="backend-a")
    b = tls_backend(certs.b, name="backend-b")
    rsp = run_rsp(routing_config(free_port(), a.port, b.port, None, timeout=0.5))
    with socket.create_connection(("127.0.0.1", rsp.port), timeout=IO_TIMEOUT) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
        assert sock.recv(100) == b""  # not TLS, no default: closed
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", rsp.port), timeout=IO_TIMEOUT) as sock:
        sock.sendall(b"\x16\x03\x01")  # the start of a record, then silence
        assert sock.recv(100) == b""
    assert time.monotonic() - started < 5  # closed by sni_timeout (0.5 s), not by the client
    context = client_context(certs.ca.path)
    context.check_hostname = False
    with socket.create_connection(("127.0.0.1", rsp.port), timeout=IO_TIMEOUT) as raw:
        try:
            context.wrap_socket(raw, server_hostname="nobody.example").close()
            raise AssertionError("a name without a route was relayed somewhere")
        except (ssl.SSLError, ConnectionError):
            pass
    assert a.accepted == 0 and b.accepted == 0
