"""Supervise child processes from an asyncio loop: start, watch the exit, restart with backoff, stop.

Exits are watched with a pidfd (`os.pidfd_open`, Linux >= 5.3) registered with `loop.add_reader`: the
pidfd becomes readable when the child exits, and only then does the supervisor call `os.waitpid(pid,
WNOHANG)` for that one pid. No polling, no timer per child, and no SIGCHLD handler, which would fight
asyncio's own child watcher (the subprocess machinery reaps the pids it spawned; this reaps only the pids
it was handed). Restarts are timers (`loop.call_later`) armed with `Backoff`'s delay, never a sleep loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rsp.logs import get_logger
from rsp.supervise.backoff import Backoff

# Grace between SIGTERM and SIGKILL when a spec names none: long enough for a proxy to finish short
# requests, short enough that a stuck child does not hold a shutdown for long.
DEFAULT_GRACE = 10.0

RUNNING = "running"
RESTARTING = "restarting"
STOPPED = "stopped"


def describe_status(status: int) -> str:
    """A `waitpid` status as a log line fragment: "exited with status 3", "killed by signal 9 (SIGKILL)"."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            return f"killed by signal {number}"
        return f"killed by signal {number} ({name})"
    if os.WIFEXITED(status):
        return f"exited with status {os.WEXITSTATUS(status)}"
    return f"ended with wait status {status}"


@dataclass
class ChildSpec:
    """What to run: `start` starts the process (fork, exec, spawn) and returns its pid."""

    name: str
    start: Callable[[], int]
    grace: float = DEFAULT_GRACE
    restart: bool = True
    backoff: Backoff | None = None  # None: Backoff() with its defaults


@dataclass
class ChildInfo:
    """What the supervisor knows of one child; `started_at` is in the supervisor's clock."""

    name: str
    pid: int | None = None
    state: str = STOPPED
    restarts: int = 0
    started_at: float | None = None
    last_exit: str | None = None


@dataclass
class _Child:
    spec: ChildSpec
    info: ChildInfo
    backoff: Backoff = field(default_factory=Backoff)
    pidfd: int = -1
    restart_timer: asyncio.TimerHandle | None = None
    kill_timer: asyncio.TimerHandle | None = None
    stopping: bool = False
    exit_waiters: list[asyncio.Future[int | None]] = field(default_factory=list)


class Supervisor:
    """Starts children, restarts those that exit (unless told to stop them), stops them on request."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        clock: Callable[[], float] | None = None,
        on_event: Callable[[str, ChildInfo], None] | None = None,
    ) -> None:
        self._loop = loop
        # Wall clock by default, so that `started_at` can be shown to a person; Backoff only takes
        # differences, and a clock step costs at most one odd delay.
        self._clock = clock if clock is not None else time.time
        self._on_event = on_event
        self._children: dict[str, _Child] = {}

    # ---- public API -----------------------------------------------------------------------------------

    def add(self, spec: ChildSpec) -> None:
        """Register `spec` and start it now. A name may be reused once its previous child has stopped."""
        previous = self._children.get(spec.name)
        if previous is not None and previous.info.state != STOPPED:
            raise ValueError(f"a child named {spec.name!r} is already supervised")
        child = _Child(spec=spec, info=ChildInfo(name=spec.name), backoff=spec.backoff or Backoff())
        self._children[spec.name] = child
        self._start(child)

    async def stop(self, name: str) -> int | None:
        """SIGTERM the child, SIGKILL it after its grace, never restart it. Returns its exit code
        (negative: the signal that killed it, as `os.waitstatus_to_exitcode`), None if it was not running."""
        return await self._stop(name, terminate=True)

    async def retire(self, name: str) -> int | None:
        """Like `stop`, for a child already asked to stop by other means (a message on its own channel): no
        SIGTERM, no restart, SIGKILL if it is still there after its grace. Returns its exit code."""
        return await self._stop(name, terminate=False)

    async def _stop(self, name: str, *, terminate: bool) -> int | None:
        child = self._children.get(name)
        if child is None:
            raise KeyError(name)
        child.stopping = True
        if child.restart_timer is not None:
            child.restart_timer.cancel()
            child.restart_timer = None
        pid = child.info.pid
        if child.info.state != RUNNING or pid is None:
            self._set_stopped(child)
            return None
        waiter: asyncio.Future[int | None] = self._loop.create_future()
        child.exit_waiters.append(waiter)
        if terminate:
            self._signal(pid, signal.SIGTERM)
        if child.kill_timer is None:
            child.kill_timer = self._loop.call_later(child.spec.grace, self._kill, child, pid)
        return await waiter

    def forget(self, name: str) -> None:
        """Drop the record of a stopped child whose name will not come back (a worker a reload retired):
        without it, the record (and whatever its start function holds) lives as long as the supervisor."""
        child = self._children.get(name)
        if child is None:
            return
        if child.info.state != STOPPED:
            raise ValueError(f"child {name!r} is {child.info.state}, not stopped: it cannot be forgotten")
        del self._children[name]

    async def stop_all(self) -> None:
        """Stop every child at once (each with its own grace) and wait for all of them."""
        names = [name for name, child in self._children.items() if child.info.state != STOPPED]
        await asyncio.gather(*(self.stop(name) for name in names))

    def info(self) -> list[ChildInfo]:
        """A copy of every child's state, in the order they were added."""
        return [ChildInfo(**vars(child.info)) for child in self._children.values()]

    # ---- starting and watching ------------------------------------------------------------------------

    def _start(self, child: _Child) -> None:
        child.restart_timer = None
        now = self._clock()
        try:
            pid = child.spec.start()
        except Exception as exc:  # a failed start is an exit like any other: logged, retried with backoff
            child.info.pid = None
            child.info.last_exit = f"failed to start: {exc}"
            child.info.started_at = now
            get_logger().error("%s: %s", child.spec.name, child.info.last_exit)
            child.info.state = RESTARTING  # not STOPPED: the exit below is reported like any other
            self._emit("exited", child)
            self._after_exit(child, now)
            return
        child.info.pid = pid
        child.info.state = RUNNING
        child.info.started_at = now
        try:
            child.pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            # Already reaped by someone else: nothing left to watch, count it as an exit of unknown status.
            child.pidfd = -1
            self._exited(child, None)
            return
        self._loop.add_reader(child.pidfd, self._readable, child)
        self._emit("started", child)

    def _readable(self, child: _Child) -> None:
        pid = child.info.pid
        if pid is None:
            return
        try:
            reaped, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            reaped, status = pid, -1  # reaped elsewhere; the status is lost
        if reaped == 0:
            return  # spurious wake-up: the pidfd said readable but the child is still there
        self._exited(child, status if status >= 0 else None)

    def _exited(self, child: _Child, status: int | None) -> None:
        if child.pidfd >= 0:
            self._loop.remove_reader(child.pidfd)
            os.close(child.pidfd)
            child.pidfd = -1
        if child.kill_timer is not None:
            child.kill_timer.cancel()
            child.kill_timer = None
        now = self._clock()
        description = describe_status(status) if status is not None else "exited (status unknown)"
        child.info.last_exit = description
        child.info.pid = None
        code = os.waitstatus_to_exitcode(status) if status is not None else None
        for waiter in child.exit_waiters:
            if not waiter.done():
                waiter.set_result(code)
        child.exit_waiters.clear()
        self._emit("exited", child)
        self._after_exit(child, child.info.started_at if child.info.started_at is not None else now)

    def _after_exit(self, child: _Child, started_at: float) -> None:
        if child.stopping or not child.spec.restart:
            self._set_stopped(child)
            return
        delay = child.backoff.delay_after_exit(started_at, self._clock())
        child.info.state = RESTARTING
        child.info.restarts += 1
        child.restart_timer = self._loop.call_later(delay, self._start, child)
        self._emit("restarting", child)

    def _set_stopped(self, child: _Child) -> None:
        if child.info.state == STOPPED:
            return
        child.info.state = STOPPED
        child.backoff.reset()
        self._emit("stopped", child)

    # ---- signals --------------------------------------------------------------------------------------

    def _kill(self, child: _Child, pid: int) -> None:
        child.kill_timer = None
        if child.info.pid == pid:
            get_logger().warning("%s: still running %gs after SIGTERM, sending SIGKILL",
                                 child.spec.name, child.spec.grace)
            self._signal(pid, signal.SIGKILL)

    def _signal(self, pid: int, signum: signal.Signals) -> None:
        # The pid is ours and unreaped (we reap it only on its pidfd's exit), so it cannot have been reused.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    def _emit(self, event: str, child: _Child) -> None:
        if self._on_event is not None:
            self._on_event(event, ChildInfo(**vars(child.info)))
