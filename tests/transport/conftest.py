"""Fixtures of the transport tests: the stream variants the contract suite runs against."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import pytest

from tls.certs import Authority


@dataclass(frozen=True)
class StreamVariant:
    """"plain": SocketStream against a plain peer socket; "tls": TlsStream (server side) against a TLS peer
    (support.tls_peer.TlsPeer) over the same kind of socket pair."""

    kind: str
    server: ssl.SSLContext | None = None
    client: ssl.SSLContext | None = None


@pytest.fixture(scope="session")
def tls_contexts(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    ca = Authority(tmp_path_factory.mktemp("stream-certs"), "stream-ca")
    leaf = ca.issue("stream", ["stream.test"])
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(leaf.cert_path, leaf.key_path)
    client = ssl.create_default_context(cafile=str(ca.path))
    return server, client


@pytest.fixture(params=["plain", "tls"])
def variant(request: pytest.FixtureRequest, tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext]) -> StreamVariant:
    if request.param == "plain":
        return StreamVariant("plain")
    server, client = tls_contexts
    return StreamVariant("tls", server, client)
