"""rsp's worker Server with Python filters given programmatically (Server(filters_for=...)) in a forked child,
on a free loopback port, for the filter tests over real sockets (HTTP/1 and HTTP/2 run the same filters); and the
Gate filter those tests share."""

from __future__ import annotations

import os
import select
import signal
import traceback
from collections.abc import Iterator
from pathlib import Path

from rsp.config.lua_loader import parse_config
from rsp.config.model import Listener
from rsp.pipeline.messages import UNKNOWN_LENGTH, LocalReply
from rsp.pipeline.phases import ExchangeView, Filter, Verdict
from rsp.server import Server
from rsp.transport.event_loop import RspEventLoop
from rsp.transport.listener import bind_listener
from support.http_backends import HttpBackend

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
