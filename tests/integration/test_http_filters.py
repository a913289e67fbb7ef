"""Filters on a real loopback listener: rsp's Server started in a forked child with Python filters given
programmatically (Server(filters_for=...)), real backends and a real client."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest

from rsp.config.lua_loader import parse_config
from rsp.config.model import Listener
from rsp.pipeline.messages import UNKNOWN_LENGTH, LocalReply
from rsp.pipeline.phases import SUSPEND, ExchangeView, Filter, Verdict
from rsp.server import Server
from rsp.transport.event_loop import RspEventLoop
from rsp.transport.listener import bind_listener
from support.http_backends import HttpBackend
from support.http_client import HttpConn

# A child that does not report its port in this time failed to start; one that does not exit after
# SIGTERM in this time is killed.
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0


def _wait_exit(pid: int) -> int:
    for _ in range(int(STOP_TIMEOUT_S * 20)):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        select.select([], [], [], 0.05)
    os.kill(pid, signal.SIGKILL)
    return os.waitpid(pid, 0)[1]


def serve(config_text: str, filters: list[Filter]) -> Iterator[int]:
    """rsp with `filters` on its HTTP listener, in a forked child: yields the listener's port."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(read_fd)
            loop = RspEventLoop()
            config = parse_config(config_text, "filters.lua")

            def filters_for(listener: Listener) -> list[Filter]:
                return filters

            # Bound here on a free port (the config's port is a placeholder; a config refuses port 0). The
            # worker's Server alone: the filters are Python objects, which the master cannot hand a worker.
            sock = bind_listener("127.0.0.1", 0)
            server = Server(config, loop, [sock], filters_for=filters_for)
            loop.run_until_complete(server.start())
            os.write(write_fd, b"%d\n" % server.ports[0])
            os.close(write_fd)
            loop.run_until_complete(server.wait_stopped())
            code = 0
        except BaseException:
            traceback.print_exc()  # the child's failure, in the test's captured output
        finally:
            os._exit(code)
    os.close(write_fd)
    try:
        ready, _, _ = select.select([read_fd], [], [], START_TIMEOUT_S)
        line = os.read(read_fd, 64) if ready else b""
        assert line, "rsp did not start"
        yield int(line)
    finally:
        os.close(read_fd)
        os.kill(pid, signal.SIGTERM)
        assert _wait_exit(pid) == 0


@pytest.fixture
def backend() -> Iterator[HttpBackend]:
    server = HttpBackend(name="b")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def config_for(backend: HttpBackend) -> str:
    return (f'listen = {{ {{ address = "127.0.0.1", port = 1, mode = "http" }} }}\n'
            f'backends = {{ "127.0.0.1:{backend.port}" }}\nhttp = {{ access_log = "off" }}\n')


class Gate(Filter):
    """Denies without a token; rewrites /old/ to /new/; tags and uppercases responses; logs to a file."""

    name = "gate"

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path

    def rewrite(self, exchange: ExchangeView) -> Verdict:
        request = exchange.request
        if request.path.startswith(b"/old/"):
            request.target = b"/new/" + request.target[5:]
        return None

    def access(self, exchange: ExchangeView) -> Verdict:
        if exchange.request.get(b"x-token") != b"t":
            return LocalReply(403, [(b"Content-Type", b"text/plain")], b"denied\n")
        return None

    def header_filter(self, exchange: ExchangeView) -> Verdict:
        response = exchange.response
        assert response is not None
        response.set(b"x-filtered", b"1")
        response.body_length = UNKNOWN_LENGTH
        return None

    def body_filter(self, exchange: ExchangeView, chunk: bytes, last: bool) -> bytes:
        return chunk.upper()

    def log(self, exchange: ExchangeView) -> None:
        with self.log_path.open("a") as out:
            out.write(f"{exchange.status} {exchange.upstream_addr or '-'} {exchange.request.target.decode()}\n")


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
