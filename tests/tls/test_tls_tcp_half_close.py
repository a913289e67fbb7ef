"""TLS termination in TCP mode keeps the relay's half-close rule through the streams' own (one
implementation: rsp.transport.stream): the client's close_notify reaches the backend as a FIN, the backend's
answer and its FIN come back as data and close_notify, and then the connection is gone."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

from support.backends import EchoBackend
from support.rsp_process import RspProcess, free_port

from .conftest import CertSet, client_context

IO_TIMEOUT = 10.0
PAYLOAD = bytes(range(256)) * 1024  # 256 KiB: more than one socket buffer, so backpressure plays


def test_client_half_close_is_relayed_and_the_echo_ends_the_connection(run_rsp: Callable[..., RspProcess],
                                                                         start_backend: Callable[..., Any],
                                                                         certs: CertSet) -> None:
    echo = start_backend(EchoBackend)
    rsp = run_rsp(f"""
listen = {{ {{ address = "127.0.0.1", port = {free_port()}, pool = "echo",
  tls = {{ certificates = {{ {{ cert = "{certs.a.cert_path}", key = "{certs.a.key_path}" }} }} }} }} }}
pools = {{ echo = {{ backends = {{ "127.0.0.1:{echo.port}" }} }} }}
workers = 1
""")
    sock = socket.create_connection(("127.0.0.1", rsp.port), timeout=IO_TIMEOUT)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = client_context(certs.ca.path, alpn=False).wrap_bio(incoming, outgoing, server_hostname="a.example")
    with sock:
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                sock.sendall(outgoing.read())
                incoming.write(sock.recv(65536))
        sock.sendall(outgoing.read())
        tls.write(PAYLOAD)
        try:
            tls.unwrap()  # our close_notify; the peer's is read below
        except ssl.SSLWantReadError:
            pass
        sock.sendall(outgoing.read())
        sock.shutdown(socket.SHUT_WR)  # the client's direction has ended
        echoed = b""
        notified = ended = False
        deadline = time.monotonic() + IO_TIMEOUT
        while time.monotonic() < deadline:
            data = sock.recv(65536)
            if not data:
                ended = True  # rsp closed the connection: both directions ended
                break
            incoming.write(data)
            while True:
                try:
                    echoed += tls.read(65536)
                except ssl.SSLWantReadError:
                    break
                except ssl.SSLZeroReturnError:
                    notified = True
                    break
    assert echoed == PAYLOAD
    assert ended
    assert notified  # the backend's FIN came back as close_notify
    assert echo.received == len(PAYLOAD)
