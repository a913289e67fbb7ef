"""The listener and the accept loop on real loopback sockets: TCP_NODELAY set on the listening socket before
listen() and inherited by accepted sockets (Linux copies it on accept), and accepted sockets as the C type."""

from __future__ import annotations

import _socket
import asyncio
import select
import socket
import time
from pathlib import Path

from rsp.transport.event_loop import RspEventLoop
from rsp.transport.listener import NODELAY_INHERITED, Acceptor, bind_listener
from rsp.transport.poller import poller_of

ROUNDS = 200


def nodelay(sock: _socket.socket) -> bool:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_the_listener_has_tcp_nodelay_and_an_accepted_socket_inherits_it() -> None:
    listener = bind_listener("127.0.0.1", 0)
    try:
        assert nodelay(listener)
        client = socket.create_connection(listener.getsockname())
        try:
            listener.setblocking(True)
            conn, _ = listener.accept()
            with conn:
                assert nodelay(conn)  # inherited: no setsockopt of its own
        finally:
            client.close()
    finally:
        listener.close()


def test_a_connection_queued_before_the_acceptor_starts_is_accepted_with_nodelay_and_as_the_c_type() -> None:
    """As with workers: the master binds and listens, connections queue, then a worker's Acceptor starts."""
    listener = bind_listener("127.0.0.1", 0)
    loop = RspEventLoop()
    accepted: list[socket.socket] = []
    client = socket.create_connection(listener.getsockname())  # queued before any Acceptor exists
    acceptor = Acceptor(loop, listener, lambda conn, _addr: accepted.append(conn))
    try:
        acceptor.start()
        for _ in range(ROUNDS):
            if accepted:
                break
            loop.run_until_complete(asyncio.sleep(0.01))
        assert len(accepted) == 1
        conn = accepted[0]
        assert type(conn) is _socket.socket  # not socket.py's interpreted subclass
        assert nodelay(conn) and not conn.getblocking()
        assert acceptor.nodelay == NODELAY_INHERITED  # so no later connection gets a setsockopt
        client.sendall(b"ping")
        deadline = time.monotonic() + 5.0
        got = b""
        while not got and time.monotonic() < deadline:
            try:
                got = conn.recv(16)
            except BlockingIOError:
                time.sleep(0.01)
        assert got == b"ping"
        conn.close()
        assert conn.fileno() == -1
    finally:
        client.close()
        for conn in accepted:
            conn.close()
        acceptor.stop()
        loop.close()



def test_on_rsps_loop_the_listener_is_watched_with_epollexclusive() -> None:
    """One worker woken per connection: the flag as the kernel reports it (/proc/self/fdinfo of the epoll)."""
    listener = bind_listener("127.0.0.1", 0)
    loop = RspEventLoop()
    acceptor = Acceptor(loop, listener, lambda conn, _addr: conn.close())
    try:
        acceptor.start()
        poller = poller_of(loop)
        assert poller is not None
        info = Path(f"/proc/self/fdinfo/{poller._ep.fileno()}").read_text()
        mask = next(int(line.split()[3], 16) for line in info.splitlines()
                    if line.startswith("tfd:") and int(line.split()[1]) == listener.fileno())
        assert mask & select.EPOLLEXCLUSIVE and mask & select.EPOLLIN
    finally:
        acceptor.stop()
        loop.close()
