"""Fixtures of the transport tests: the loops the stream tests run on, and the stream variants the contract
suite (tests/transport/test_stream_*.py) runs against."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator

import pytest
import uvloop

from rsp.transport.event_loop import RspEventLoop
from support.stream_harness import StreamVariant
from tls.certs import Authority


@pytest.fixture(params=["rsp", "uvloop", "asyncio"])
def loop(request: pytest.FixtureRequest) -> Iterator[asyncio.AbstractEventLoop]:
    """Every loop rsp runs on (rsp.cli.new_event_loop): its own epoll loop, where streams register on the
    loop's poller instead of add_reader/add_writer, uvloop, and the stdlib loop. (test_event_loop.py and
    test_relay.py define their own `loop`, for the loops they are about.)"""
    loop: asyncio.AbstractEventLoop
    if request.param == "rsp":
        loop = RspEventLoop()
    elif request.param == "uvloop":
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    try:
        yield loop
    finally:
        loop.close()


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
