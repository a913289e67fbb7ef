"""The accept side of an HTTP listener with `http2`: which protocol a new connection speaks.

- TLS (`http2 = true`): ALPN decides (the listener offers h2 then http/1.1, rsp.tls.server_context.H2_ALPN):
  "h2" after the handshake means HTTP/2; anything else, or no ALPN, HTTP/1.1.
- Plain (`http2 = "prior-knowledge"`): the first bytes decide (rsp.http2.preface.sniff): the connection
  preface means HTTP/2, anything else HTTP/1.1 on the same listener.

The choice is made on the first read (after the TLS handshake, a read is the first moment ALPN is known),
then every callback goes to the chosen protocol. A listener without `http2` never comes here: its
connections start as ClientConnection directly (no extra call per read).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import TYPE_CHECKING, cast

from rsp.config.model import Http2Settings
from rsp.http2.preface import HTTP2, UNDECIDED, sniff
from rsp.proxy.client import ClientConnection
from rsp.proxy.h2_session import Http2Session
from rsp.proxy.session_io import start_stream, start_tls_stream
from rsp.transport.plain_on_tls import HTTP_PLAIN_GUARD
from rsp.transport.stream import StreamProtocol

if TYPE_CHECKING:
    from rsp.proxy.session_state import SessionState


class ProtocolChoice:
    """A connection's protocol until its first read chooses HTTP/1.1 (ClientConnection) or HTTP/2."""

    def __init__(self, front: Http2Front) -> None:
        self.front = front
        self.transport: asyncio.BaseTransport | None = None
        self.chosen: StreamProtocol | None = None
        self.first = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        chosen = self.chosen
        if chosen is not None:
            chosen.data_received(data)
            return
        transport = self.transport
        assert transport is not None
        front = self.front
        if front.proxy.tls is not None:
            tls = cast("ssl.SSLObject | None", transport.get_extra_info("ssl_object"))
            h2 = tls is not None and tls.selected_alpn_protocol() == "h2"
        else:
            self.first += data
            verdict = sniff(self.first)
            if verdict == UNDECIDED:
                return
            h2 = verdict == HTTP2
            data, self.first = self.first, b""
        chosen = (Http2Session(front.proxy, front.settings, front.proxy.proto, front.sessions) if h2
                  else ClientConnection(front.proxy))
        self.chosen = chosen
        chosen.connection_made(transport)
        chosen.data_received(data)

    def eof_received(self) -> bool | None:
        chosen = self.chosen
        if chosen is None:
            if self.transport is not None:
                self.transport.close()
            return None
        return chosen.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.chosen is not None:
            self.chosen.connection_lost(exc)
        self.transport = None

    def pause_writing(self) -> None:
        if self.chosen is not None:
            self.chosen.pause_writing()

    def resume_writing(self) -> None:
        if self.chosen is not None:
            self.chosen.resume_writing()


class Http2Front:
    """Accepts for one HTTP listener with `http2` (in place of HttpProxy.on_accept)."""

    def __init__(self, proxy: SessionState, settings: Http2Settings) -> None:
        self.proxy = proxy
        self.settings = settings
        # The HTTP/2 connections open (their streams' exchanges are in proxy.connections, as HTTP/1's).
        self.sessions: set[Http2Session] = set()

    def begin_drain(self) -> None:
        """Stop and reload: every HTTP/2 connection sends its graceful GOAWAY now (rsp.http2.server.drain)."""
        for session in list(self.sessions):
            session.drain()

    def live_connections(self) -> int:
        return len(self.sessions)

    def close_all(self) -> None:
        for session in list(self.sessions):
            session.abort()

    def on_accept(self, sock: socket.socket, peer: tuple[object, ...]) -> None:
        proxy = self.proxy
        protocol = ProtocolChoice(self)
        if proxy.tls is not None:
            start_tls_stream(proxy.loop, sock, protocol, peer, proxy.high_water, proxy.low_water, proxy.tls,
                             server_side=True, plain_guard=HTTP_PLAIN_GUARD)
        else:
            start_stream(proxy.loop, sock, protocol, peer, proxy.high_water, proxy.low_water)
