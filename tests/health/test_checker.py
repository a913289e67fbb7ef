"""The active checker against real loopback servers, with short intervals."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from rsp.config.model import Backend, HealthCheck, Pool
from rsp.health.checker import (
    HealthChecker,
    check_request,
    describe_error,
    parse_status,
    transition_message,
)
from rsp.health.policy import Transition
from rsp.upstream.records import BackendRecord, records_for

INTERVAL = 0.05
# Scheduling slack on a shared 2-core machine: generous, but far below what a broken checker would take.
SLACK = 1.0


class LoopbackBackend:
    """A server on 127.0.0.1 that answers health checks; `mode` is "tcp", "http" or "silent"."""

    def __init__(self, mode: str = "tcp", status: int = 200) -> None:
        self.mode = mode
        self.status = status
        self.port = 0
        self.requests: list[bytes] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if self.mode == "http":
                self.requests.append(await reader.readuntil(b"\r\n\r\n"))
                writer.write(f"HTTP/1.1 {self.status} Whatever\r\nContent-Length: 0\r\n\r\n".encode())
                await writer.drain()
            elif self.mode == "silent":
                await reader.read()  # until the checker gives up and closes
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@dataclass
class Harness:
    server: LoopbackBackend
    checker: HealthChecker
    record: BackendRecord
    logs: list[str] = field(default_factory=list)
    changes: asyncio.Queue[Transition] = field(default_factory=asyncio.Queue)

    async def next_change(self, within: float) -> Transition:
        return await asyncio.wait_for(self.changes.get(), within)


def pool_for(port: int, **health: object) -> Pool:
    check = HealthCheck(**health)  # type: ignore[arg-type]
    return Pool("web", (Backend("127.0.0.1", port, name="app1"),), health=check)


def run_with(
    server: LoopbackBackend, test: Callable[[Harness], Awaitable[None]], **health: object
) -> None:
    async def main() -> None:
        await server.start()
        pool = pool_for(server.port, **health)
        (record,) = records_for(pool)
        logs: list[str] = []
        queue: asyncio.Queue[Transition] = asyncio.Queue()

        def on_change(rec: BackendRecord, transition: Transition) -> None:
            assert rec is record
            assert rec.up == (transition.new_state == "up")  # set before the callback
            queue.put_nowait(transition)

        checker = HealthChecker(pool, [record], on_change, logs.append)
        checker.start()
        try:
            await test(Harness(server, checker, record, logs, queue))
        finally:
            await checker.stop()
            await server.stop()
        assert not checker.running

    asyncio.run(main())


async def wait_until(condition: Callable[[], bool], within: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def test_a_killed_backend_goes_down_within_fall_intervals_and_comes_back() -> None:
    async def scenario(h: Harness) -> None:
        await wait_until(lambda: h.record.last_check == "ok", SLACK)
        loop = asyncio.get_running_loop()
        killed = loop.time()
        await h.server.stop()
        down = await h.next_change(3 * INTERVAL + SLACK)
        assert loop.time() - killed <= 3 * INTERVAL + SLACK
        assert down == Transition("down", 3, "connection refused")
        assert not h.record.up
        assert h.record.last_check == "connection refused"
        port = h.server.port
        assert h.logs == [f"backend app1 127.0.0.1:{port} is DOWN (3 failed checks: connection refused)"]

        revived = loop.time()
        await h.server.start()  # same port
        up = await h.next_change(2 * INTERVAL + SLACK)
        assert loop.time() - revived <= 2 * INTERVAL + SLACK
        assert up == Transition("up", 2, "ok")
        assert h.record.up
        assert h.logs[1] == f"backend app1 127.0.0.1:{port} is UP (2 successful checks)"

    run_with(LoopbackBackend("tcp"), scenario, kind="tcp", interval=INTERVAL, timeout=0.5, rise=2, fall=3)


def test_http_check_with_a_wrong_status_marks_down_then_up() -> None:
    async def scenario(h: Harness) -> None:
        down = await h.next_change(2 * INTERVAL + SLACK)
        assert down == Transition("down", 2, "status 500")
        assert h.record.last_check == "status 500"
        assert h.logs == [f"backend app1 127.0.0.1:{h.server.port} is DOWN (2 failed checks: status 500)"]
        assert h.server.requests[0] == (
            b"HEAD /healthz HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n"
            b"User-Agent: rsp-health\r\n\r\n"
        )
        h.server.status = 204
        up = await h.next_change(INTERVAL + SLACK)
        assert up == Transition("up", 1, "ok")
        assert h.logs[1] == f"backend app1 127.0.0.1:{h.server.port} is UP (1 successful check)"

    run_with(
        LoopbackBackend("http", status=500),
        scenario,
        kind="http",
        interval=INTERVAL,
        timeout=0.5,
        rise=1,
        fall=2,
        method="HEAD",
        path="/healthz",
        expect_status=204,
        host="example.test",
    )


def test_http_host_defaults_to_the_backend_address() -> None:
    async def scenario(h: Harness) -> None:
        await wait_until(lambda: h.record.last_check == "ok", SLACK)
        assert b"\r\nHost: 127.0.0.1:%d\r\n" % h.server.port in h.server.requests[0]
        assert h.server.requests[0].startswith(b"GET / HTTP/1.1\r\n")

    run_with(LoopbackBackend("http"), scenario, kind="http", interval=INTERVAL, timeout=0.5)


def test_a_backend_that_never_answers_times_out() -> None:
    async def scenario(h: Harness) -> None:
        down = await h.next_change(0.1 + INTERVAL + SLACK)
        assert down == Transition("down", 1, "timeout")
        assert h.logs == [f"backend app1 127.0.0.1:{h.server.port} is DOWN (1 failed check: timeout)"]

    run_with(LoopbackBackend("silent"), scenario, kind="http", interval=INTERVAL, timeout=0.1, fall=1)


def test_a_passively_ejected_backend_returns_after_rise_good_checks() -> None:
    async def scenario(h: Harness) -> None:
        await wait_until(lambda: h.record.last_check == "ok", SLACK)
        h.record.up = False  # what OutlierDetector.record_failure does
        up = await h.next_change(3 * INTERVAL + SLACK)
        assert up == Transition("up", 3, "ok")
        assert h.logs == [f"backend app1 127.0.0.1:{h.server.port} is UP (3 successful checks)"]

    run_with(LoopbackBackend("tcp"), scenario, kind="tcp", interval=INTERVAL, timeout=0.5, rise=3)


def test_a_failing_on_change_is_logged_and_checks_go_on() -> None:
    async def main() -> None:
        server = LoopbackBackend("http", status=503)
        await server.start()
        pool = pool_for(server.port, kind="http", interval=INTERVAL, timeout=0.5, rise=1, fall=1)
        (record,) = records_for(pool)
        logs: list[str] = []

        def on_change(rec: BackendRecord, transition: Transition) -> None:
            raise RuntimeError("balancer exploded")

        checker = HealthChecker(pool, [record], on_change, logs.append)
        checker.start()
        try:
            await wait_until(lambda: len(logs) >= 2, SLACK)
            assert logs[0].endswith("is DOWN (1 failed check: status 503)")
            assert logs[1].startswith("health check on_change for backend app1 failed: RuntimeError")
            server.status = 200
            await wait_until(lambda: record.up, SLACK)
            assert checker.running
        finally:
            await checker.stop()
            await server.stop()

    asyncio.run(main())


def test_a_crashing_probe_task_is_logged() -> None:
    class Broken(HealthChecker):
        async def probe(self, record: BackendRecord) -> tuple[bool, str]:
            raise RuntimeError("probe bug")

    async def main() -> None:
        pool = pool_for(1, kind="tcp", interval=INTERVAL)
        logs: list[str] = []
        checker = Broken(pool, records_for(pool), lambda r, t: None, logs.append)
        checker.start()
        try:
            await wait_until(lambda: bool(logs), SLACK)
            assert logs[0].startswith("health check of backend app1 crashed: RuntimeError('probe bug')")
            assert "Traceback" in logs[0]
            assert not checker.running
        finally:
            await checker.stop()

    asyncio.run(main())


def test_kind_none_starts_nothing() -> None:
    async def main() -> None:
        pool = pool_for(1)
        checker = HealthChecker(pool, records_for(pool), lambda r, t: None, lambda m: None)
        checker.start()
        assert not checker.running
        await checker.stop()

    asyncio.run(main())


def test_checks_of_several_backends_are_independent() -> None:
    async def main() -> None:
        good, bad = LoopbackBackend("tcp"), LoopbackBackend("tcp")
        await good.start()
        await bad.start()
        await bad.stop()  # a port nobody listens on any more
        health = HealthCheck(kind="tcp", interval=INTERVAL, timeout=0.5, fall=2)
        pool = Pool(
            "web", (Backend("127.0.0.1", good.port), Backend("127.0.0.1", bad.port)), health=health
        )
        recs = records_for(pool)
        logs: list[str] = []
        checker = HealthChecker(pool, recs, lambda r, t: None, logs.append)
        checker.start()
        try:
            await wait_until(lambda: not recs[1].up, 2 * INTERVAL + SLACK)
            assert recs[0].up and recs[0].last_check == "ok"
            assert logs == [
                f"backend web/2 127.0.0.1:{bad.port} is DOWN (2 failed checks: connection refused)"
            ]
        finally:
            await checker.stop()
            await good.stop()

    asyncio.run(main())


@pytest.mark.parametrize(
    ("line", "status"),
    [
        (b"HTTP/1.1 200 OK\r\n", 200),
        (b"HTTP/1.0 503 Service Unavailable\r\n", 503),
        (b"HTTP/1.1 204\r\n", 204),
        (b"HTTP/1.1 301 \n", 301),
        (b"HTTP/1.1 20 OK\r\n", None),
        (b"HTTP/1.1 2000 OK\r\n", None),
        (b"http/1.1 200 OK\r\n", None),
        (b"SSH-2.0-OpenSSH_9.2\r\n", None),
        (b"HTTP/1.1 200 OK", None),
    ],
)
def test_parse_status(line: bytes, status: int | None) -> None:
    assert parse_status(line) == status


def test_error_descriptions() -> None:
    assert describe_error(ConnectionRefusedError(111, "Connection refused")) == "connection refused"
    assert describe_error(ConnectionResetError(104, "Connection reset by peer")) == "connection reset"
    assert describe_error(OSError(113, "No route to host")) == "no route to host"
    assert describe_error(OSError("Multiple exceptions: x, y")) == "Multiple exceptions: x, y"


def test_request_and_messages() -> None:
    assert check_request("GET", "/", "h:1") == (
        b"GET / HTTP/1.1\r\nHost: h:1\r\nConnection: close\r\nUser-Agent: rsp-health\r\n\r\n"
    )
    rec = BackendRecord(Backend("::1", 9001), 0, "web")
    msg = transition_message(rec, Transition("down", 3, "timeout"))
    assert msg == "backend web/1 [::1]:9001 is DOWN (3 failed checks: timeout)"
    assert re.fullmatch(r"backend \S+ \S+ is UP \(2 successful checks\)",
                        transition_message(rec, Transition("up", 2, "ok")))
