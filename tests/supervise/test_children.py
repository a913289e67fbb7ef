"""Supervisor with real short-lived child processes: exit statuses, restarts with backoff, stop and kill."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sys
from collections.abc import Callable

import pytest

from rsp.supervise import Backoff, ChildInfo, ChildSpec, Supervisor, describe_status

FAST = Backoff(initial=0.05, maximum=0.2, reset_after=10.0)


def spawner(code: str, started: list[int] | None = None) -> Callable[[], int]:
    """A `start` that runs `python -c code` and records each pid it started."""

    def start() -> int:
        pid = os.posix_spawn(sys.executable, [sys.executable, "-c", code], os.environ)
        if started is not None:
            started.append(pid)
        return pid

    return start


def run(coro_factory: Callable[[asyncio.AbstractEventLoop], object]) -> None:
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(coro_factory(loop))  # type: ignore[arg-type]
    finally:
        loop.close()


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def test_describe_status() -> None:
    assert describe_status(3 << 8) == "exited with status 3"
    assert describe_status(0) == "exited with status 0"
    assert describe_status(signal.SIGKILL) == "killed by signal 9 (SIGKILL)"
    assert describe_status(signal.SIGTERM) == "killed by signal 15 (SIGTERM)"


def test_a_child_that_dies_is_restarted_with_its_status_reported() -> None:
    events: list[tuple[str, ChildInfo]] = []
    started: list[int] = []

    async def scenario(loop: asyncio.AbstractEventLoop) -> None:
        sup = Supervisor(loop, on_event=lambda event, info: events.append((event, info)))
        sup.add(ChildSpec("crasher", spawner("import sys; sys.exit(3)", started), backoff=FAST))
        await wait_for(lambda: len(started) >= 3)
        [info] = sup.info()
        assert info.restarts >= 2
        assert info.last_exit == "exited with status 3"
        await sup.stop_all()
        assert sup.info()[0].state == "stopped"

    run(scenario)
    kinds = [event for event, _ in events]
    assert kinds[:4] == ["started", "exited", "restarting", "started"]
    exited = [info for event, info in events if event == "exited"]
    assert exited[0].last_exit == "exited with status 3"
    assert exited[0].pid is None
    started_events = [info for event, info in events if event == "started"]
    assert [info.pid for info in started_events] == started[: len(started_events)]
    # Every pid was reaped: none is left as a zombie of this test process.
    for pid in started:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def test_backoff_spaces_the_restarts() -> None:
    starts: list[float] = []

    async def scenario(loop: asyncio.AbstractEventLoop) -> None:
        inner = spawner("pass")

        def start() -> int:
            starts.append(loop.time())
            return inner()

        sup = Supervisor(loop)
        sup.add(ChildSpec("quick", start, backoff=Backoff(initial=0.1, maximum=0.4, reset_after=10.0)))
        await wait_for(lambda: len(starts) >= 4)
        await sup.stop("quick")

    run(scenario)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    # Delays 0.1, 0.2, 0.4 (plus the child's own run time): each gap at least its delay.
    assert gaps[0] >= 0.1
    assert gaps[1] >= 0.2
    assert gaps[2] >= 0.4


def test_stop_terminates_and_does_not_restart() -> None:
    started: list[int] = []

    async def scenario(loop: asyncio.AbstractEventLoop) -> None:
        sup = Supervisor(loop)
        sup.add(ChildSpec("sleeper", spawner("import time; time.sleep(60)", started), backoff=FAST))
        assert sup.info()[0].state == "running"
        code = await sup.stop("sleeper")
        assert code == -signal.SIGTERM
        await asyncio.sleep(0.3)  # longer than any backoff delay: a restart would have happened
        [info] = sup.info()
        assert info.state == "stopped"
        assert info.last_exit == "killed by signal 15 (SIGTERM)"
        assert await sup.stop("sleeper") is None  # stopping a stopped child is harmless

    run(scenario)
    assert len(started) == 1


def test_a_child_ignoring_sigterm_is_killed_after_its_grace() -> None:
    code = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "sys.stdout.write('ready\\n'); sys.stdout.flush()\n"
        "time.sleep(60)\n"
    )

    async def scenario(loop: asyncio.AbstractEventLoop) -> None:
        read_end, write_end = os.pipe()

        def start() -> int:
            actions = [(os.POSIX_SPAWN_DUP2, write_end, 1)]
            return os.posix_spawn(sys.executable, [sys.executable, "-c", code], os.environ, file_actions=actions)

        sup = Supervisor(loop)
        sup.add(ChildSpec("stubborn", start, grace=0.3))
        os.close(write_end)
        assert os.read(read_end, 16) == b"ready\n"  # the SIGTERM handler is in place
        os.close(read_end)
        began = loop.time()
        assert await sup.stop("stubborn") == -signal.SIGKILL
        assert loop.time() - began >= 0.3
        assert sup.info()[0].last_exit == "killed by signal 9 (SIGKILL)"

    run(scenario)


def test_a_failed_start_is_retried_with_backoff() -> None:
    attempts: list[int] = []

    async def scenario(loop: asyncio.AbstractEventLoop) -> None:
        inner = spawner("import time; time.sleep(60)")

        def start() -> int:
            attempts.append(1)
            if len(attempts) < 3:
                raise OSError("no such binary")
            return inner()

        sup = Supervisor(loop)
        sup.add(ChildSpec("flaky", start, backoff=FAST))
        await wait_for(lambda: sup.info()[0].state == "running")
        [info] = sup.info()
        assert info.restarts == 2
        assert info.last_exit == "failed to start: no such binary"
        await sup.stop_all()

    run(scenario)
    assert len(attempts) == 3


def test_names_are_unique_while_running() -> None:
    async def scenario(loop: asyncio.AbstractEventLoop) -> None:
        sup = Supervisor(loop)
        sup.add(ChildSpec("one", spawner("import time; time.sleep(60)")))
        with pytest.raises(ValueError):
            sup.add(ChildSpec("one", spawner("pass")))
        await sup.stop("one")
        sup.add(ChildSpec("one", spawner("import time; time.sleep(60)")))  # reusable once stopped
        assert sup.info()[0].state == "running"
        await sup.stop_all()

    run(scenario)


def test_retire_waits_for_a_child_asked_to_stop_otherwise() -> None:
    async def scenario(loop: asyncio.AbstractEventLoop) -> None:
        sup = Supervisor(loop)
        sup.add(ChildSpec("worker", spawner("import sys, time; time.sleep(0.3); sys.exit(4)"), grace=5.0,
                          backoff=FAST))
        # No signal: the child exits on its own (as a worker told to stop over its channel does).
        assert await sup.retire("worker") == 4
        await asyncio.sleep(0.2)
        [info] = sup.info()
        assert info.state == "stopped"
        assert info.last_exit == "exited with status 4"

    run(scenario)


def test_forget_drops_a_stopped_child_and_refuses_a_running_one() -> None:
    async def scenario(loop: asyncio.AbstractEventLoop) -> None:
        sup = Supervisor(loop)
        sup.add(ChildSpec("old", spawner("import time; time.sleep(30)"), backoff=FAST))
        sup.add(ChildSpec("new", spawner("import time; time.sleep(30)"), backoff=FAST))
        with pytest.raises(ValueError, match="not stopped"):
            sup.forget("new")
        await sup.stop("old")
        sup.forget("old")
        sup.forget("never-added")  # nothing to forget: no error
        assert [info.name for info in sup.info()] == ["new"]
        await sup.stop_all()

    run(scenario)
