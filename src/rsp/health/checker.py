"""Active health checks: one asyncio task per backend probes it every `interval` seconds.

Probe kinds (rsp.config.model.HealthCheck.kind):
- "tcp": connect, then close (HAProxy `check` without an option);
- "http": connect, send one request, read the status line (RFC 9112 §4) and succeed if the status code equals
  `expect_status` (HAProxy `option httpchk` + `http-check expect status`). The request names the check's `host`
  or, without one, the backend's address (RFC 9110 §7.2: Host carries the port when it is not the default);
- "none": start() does nothing.

Each probe is bounded by `timeout` (asyncio.wait_for) and runs on the event loop beside the traffic, never
blocking it. Results feed a RiseFall policy; on a transition the checker sets `record.up`, logs

    backend app1 127.0.0.1:9001 is DOWN (3 failed checks: connection refused)
    backend app1 127.0.0.1:9001 is UP (2 successful checks)

and calls `on_change(record, transition)` (the server updates the balancer there). The name is `record.name`:
the configured name, else `pool/N` with N counting the pool's backends from 1. `record.last_check` gets the
reason of every result: "ok", "timeout", "connection refused", "status 500", "invalid response", ...

If someone else changed `record.up` (outlier detection ejected it, the runtime API set it), the policy adopts
that state before counting the next result, so a passively ejected backend comes back after `rise` good checks.

Probes start spread over the first interval (HAProxy spreads its checks too) so a large pool does not open all
its check connections in the same instant.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
import traceback
from collections.abc import Callable, Sequence

from rsp.config.model import Backend, Pool
from rsp.health.policy import DOWN, UP, RiseFall, Transition
from rsp.upstream.records import BackendRecord

# The longest status line we read. RFC 9112 §4 sets no limit; the reason phrase is meant to be short, and
# 8 KiB is the request-line limit RFC 9112 §3 recommends supporting at least, generous for a status line.
STATUS_LINE_LIMIT = 8 * 1024
# RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ]; HTTP-version = "HTTP/" DIGIT "." DIGIT.
_STATUS_LINE = re.compile(rb"HTTP/[0-9]\.[0-9] ([0-9]{3})(?: [^\r\n]*)?\r?\n")

OK = "ok"
TIMEOUT = "timeout"
INVALID_RESPONSE = "invalid response"
CLOSED = "connection closed"

# A pool reached over TLS: the client context and the name (SNI, certificate check) of a backend.
CheckTls = tuple[ssl.SSLContext, Callable[[Backend], str]]


def parse_status(line: bytes) -> int | None:
    """The status code of a status line (with its line ending), or None if it is not one."""
    match = _STATUS_LINE.fullmatch(line)
    return int(match.group(1)) if match else None


def describe_error(exc: OSError) -> str:
    """A short lower-case reason for a failed connection ("connection refused", "connection reset", ...)."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


def check_request(method: str, path: str, host: str) -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
        "User-Agent: rsp-health\r\n\r\n"
    ).encode("latin-1")


def transition_message(record: BackendRecord, transition: Transition) -> str:
    where = f"backend {record.label}"
    plural = "" if transition.count == 1 else "s"
    if transition.new_state == DOWN:
        return f"{where} is DOWN ({transition.count} failed check{plural}: {transition.reason})"
    return f"{where} is UP ({transition.count} successful check{plural})"


class HealthChecker:
    def __init__(
        self,
        pool: Pool,
        records: Sequence[BackendRecord],
        on_change: Callable[[BackendRecord, Transition], None],
        log: Callable[[str], None],
        tls: CheckTls | None = None,
    ) -> None:
        self.pool = pool
        # A pool with `tls`: probes speak TLS with the pool's context and each backend's name, so a
        # certificate that fails verification marks the backend down, as its 502s would.
        self._tls = tls
        self.records = tuple(records)
        self._on_change = on_change
        self._log = log
        self._tasks: dict[asyncio.Task[None], BackendRecord] = {}
        health = pool.health
        self._policies = {r: RiseFall(health.rise, health.fall) for r in self.records}

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    def policy(self, record: BackendRecord) -> RiseFall:
        return self._policies[record]

    def start(self) -> None:
        """Start one probe task per backend (none for kind "none"). Needs a running event loop."""
        if self.pool.health.kind == "none" or self._tasks:
            return
        loop = asyncio.get_running_loop()
        count = len(self.records)
        for i, record in enumerate(self.records):
            delay = self.pool.health.interval * i / count
            task = loop.create_task(self._run(record, delay), name=f"health check {record.name}")
            self._tasks[task] = record
            task.add_done_callback(self._task_done)

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    def _task_done(self, task: asyncio.Task[None]) -> None:
        record = self._tasks.pop(task, None)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            name = record.name if record is not None else task.get_name()
            trace = "".join(traceback.format_exception(exc)).rstrip()
            self._log(f"health check of backend {name} crashed: {exc!r}\n{trace}")

    async def _run(self, record: BackendRecord, delay: float) -> None:
        loop = asyncio.get_running_loop()
        interval = self.pool.health.interval
        if delay > 0:
            await asyncio.sleep(delay)
        while True:
            started = loop.time()
            ok, reason = await self.probe(record)
            self.observe(record, ok, reason)
            await asyncio.sleep(max(0.0, started + interval - loop.time()))

    def observe(self, record: BackendRecord, ok: bool, reason: str) -> Transition | None:
        """Apply one probe result to `record` (public so the server can feed results of its own probes)."""
        record.last_check = reason
        stats = record.stats
        if ok:
            stats.checks_ok += 1
        else:
            stats.checks_fail += 1
        stats.last_check_time = time.time()  # wall clock: shown as a date on the stats page and in metrics
        policy = self._policies[record]
        actual = UP if record.up else DOWN
        if policy.state != actual:
            policy.reset(actual)
        transition = policy.observe(ok, reason)
        if transition is None:
            return None
        record.up = transition.new_state == UP
        self._log(transition_message(record, transition))
        try:
            self._on_change(record, transition)
        except Exception as exc:  # the server's callback must not stop the checks of this backend
            trace = "".join(traceback.format_exception(exc)).rstrip()
            self._log(f"health check on_change for backend {record.name} failed: {exc!r}\n{trace}")
        return transition

    async def probe(self, record: BackendRecord) -> tuple[bool, str]:
        """One check of `record`: (success, reason). Never raises for network failures."""
        try:
            return await asyncio.wait_for(self._probe(record), self.pool.health.timeout)
        except TimeoutError:
            return False, TIMEOUT
        except OSError as exc:
            return False, describe_error(exc)

    async def _probe(self, record: BackendRecord) -> tuple[bool, str]:
        health = self.pool.health
        tls = self._tls
        if tls is None:
            reader, writer = await asyncio.open_connection(record.spec.host, record.spec.port, limit=STATUS_LINE_LIMIT)
        else:
            context, name_for = tls
            name = name_for(record.spec)
            reader, writer = await asyncio.open_connection(record.spec.host, record.spec.port, limit=STATUS_LINE_LIMIT,
                                                           ssl=context, server_hostname=name)
        try:
            if health.kind != "http":
                return True, OK
            writer.write(check_request(health.method, health.path, health.host or record.spec.address))
            try:
                line = await reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as exc:
                return False, CLOSED if not exc.partial else INVALID_RESPONSE
            except asyncio.LimitOverrunError:
                return False, INVALID_RESPONSE
            status = parse_status(line)
            if status is None:
                return False, INVALID_RESPONSE
            if status != health.expect_status:
                return False, f"status {status}"
            return True, OK
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass
