"""Filters on a real loopback listener: rsp's Server started in a forked child with Python filters given
programmatically (Server(filters_for=...)), real backends and a real client."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from rsp.pipeline.phases import SUSPEND, ExchangeView, Filter, Verdict
from support.filter_server import Gate, config_for, serve
from support.http_backends import HttpBackend
from support.http_client import HttpConn


@pytest.fixture
def backend() -> Iterator[HttpBackend]:
    server = HttpBackend(name="b")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_a_python_filter_on_every_phase_over_loopback(backend: HttpBackend, tmp_path: Path) -> None:
    log = tmp_path / "filter.log"
    for port in serve(config_for(backend), [Gate(log)]):
        with HttpConn(port) as conn:
            denied = conn.request("GET", "/a")
            assert denied.status == 403 and denied.body == b"DENIED\n"
            ok = conn.request("GET", "/old/x", headers=[("X-Token", "t")])
            assert ok.status == 200 and ok.header("x-filtered") == "1"
            assert ok.body == ok.body.upper() and ok.body
    assert [r.target for r in backend.requests] == ["/new/x"]
    assert log.read_text().splitlines() == ["403 - /a", f"200 127.0.0.1:{backend.port} /new/x"]


class Nothing(Filter):
    def access(self, exchange: ExchangeView) -> Verdict:
        return None


def test_a_filter_that_changes_nothing_forwards_what_no_filter_forwards(backend: HttpBackend) -> None:
    heads: list[bytes] = []
    for filters in ([], [Nothing()]):
        for port in serve(config_for(backend), filters):
            with HttpConn(port) as conn:
                response = conn.request("GET", "/same", headers=[("Accept", "*/*")])
                assert response.status == 200
        heads.append(backend.requests[-1].head)
    assert heads[0] == heads[1]


class LaterToPeer(Filter):
    """access waits for a timer of the loop (SUSPEND, then resume); balancer sends the request to a peer
    outside the pool."""

    def __init__(self, peer_port: int) -> None:
        self.peer_port = peer_port

    def access(self, exchange: ExchangeView) -> Verdict:
        asyncio.get_running_loop().call_later(0.01, exchange.resume)
        return SUSPEND

    def balancer(self, exchange: ExchangeView) -> Verdict:
        exchange.peer = ("127.0.0.1", self.peer_port)
        return None


def test_suspend_resumed_by_a_loop_timer_and_a_peer_outside_the_pool(backend: HttpBackend) -> None:
    peer = HttpBackend(name="peer")
    peer.start()
    try:
        for port in serve(config_for(backend), [LaterToPeer(peer.port)]):
            with HttpConn(port) as conn:
                for _ in range(2):
                    response = conn.request("POST", "/p", body=b"payload")
                    assert response.status == 200 and response.body.startswith(b"peer ")
        assert [r.body for r in peer.requests] == [b"payload", b"payload"]
        assert peer.accepted == 1  # the peer's connection was kept for the second request
        assert not backend.requests
    finally:
        peer.stop()
