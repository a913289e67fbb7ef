"""workers = 2 on loopback: real master, real worker processes, real backends.

Worker crash and restart, health checked once per machine, drain / weight / add / remove reaching every
worker, the runtime API's machine commands, SIGUSR1 reopening the log files, shutdown.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from master.master_support import admin, serving_pids
from support.http_backends import HttpBackend
from support.http_client import get, http_config
from support.stats_client import stats_json
from support.waiting import eventually

# Rounds of requests, at most, until every worker answers by an admin command's news (see settles()).
SETTLE_ROUNDS = 5

Run = Callable[..., Any]
Start = Callable[..., Any]
Port = Callable[..., int]
# Two workers whatever the machine: the tests are about what one per machine means.
WORKERS = "workers = 2"
ENOUGH_CHECKS = 6  # with a checker per worker, the backend would have seen at least twice as many


def config(port: int, sock: Path, backends: list[int], extra: str = "", pools: dict[str, object] | None = None,
           http: dict[str, object] | None = None) -> str:
    return http_config(port, backends, pools=pools, http=http,
                       extra=f'{WORKERS}\nadmin_socket = "{sock}"\n{extra}')


def test_two_workers_serve_and_stop(run_rsp: Run, start_backend: Start, free_port: Port,
                                    tmp_path: Path) -> None:
    backend = start_backend(HttpBackend, name="a")
    sock = tmp_path / "admin.sock"
    rsp = run_rsp(config(free_port(), sock, [backend.port]))
    assert [line for line in rsp.stdout_lines if "Started." in line] == [rsp.stdout_lines[0]]
    pids = serving_pids(str(sock))
    assert len(pids) == 2 and rsp.pid not in pids
    for _ in range(10):
        assert get(rsp.port).status == 200
    rsp.signal(signal.SIGTERM)
    assert rsp.wait(15) == 0
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}/status") or "zombie" in Path(f"/proc/{pid}/status").read_text()
    assert rsp.wait_for_stderr(r"worker 1\.\d \(pid \d+\) exited with status 0", 1)


def test_a_killed_worker_is_restarted_with_its_status_logged(run_rsp: Run, start_backend: Start, free_port: Port,
                                                             tmp_path: Path) -> None:
    backend = start_backend(HttpBackend, name="a")
    sock = str(tmp_path / "admin.sock")
    rsp = run_rsp(config(free_port(), Path(sock), [backend.port]))
    before = serving_pids(sock)
    victim = before[0]
    os.kill(victim, signal.SIGKILL)
    line = rsp.wait_for_stderr(rf"worker 1\.\d \(pid {victim}\) killed by signal 9 \(SIGKILL\)", 10)
    assert line is not None, rsp.stderr_text
    assert rsp.wait_for_stderr(r"restarting it \(restart 1 of this worker\)", 10)
    after = eventually(lambda: (p := serving_pids(sock)) and len(p) == 2 and victim not in p and p)
    assert before[1] in after
    workers = admin(sock, "show workers")
    assert workers["worker_restarts"] == 1
    assert sorted(w["restarts"] for w in workers["workers"]) == [0, 1]
    for _ in range(10):
        assert get(rsp.port).status == 200


def test_health_is_checked_once_per_machine(run_rsp: Run, start_backend: Start, free_port: Port,
                                            tmp_path: Path) -> None:
    """Every check the backend receives is one the machine counted: a checker per worker would send
    `workers` times as many as the master's count. Counts, not a rate over wall-clock time."""
    backend = start_backend(HttpBackend, name="a")
    stats_port = free_port()
    pools = {"default": {"backends": [f"127.0.0.1:{backend.port}"],
                         "health": {"kind": "http", "path": "/health", "interval": 0.2, "timeout": 1}}}
    rsp = run_rsp(config(free_port(), tmp_path / "admin.sock", [], pools=pools,
                         extra=f'stats = {{ listen = "127.0.0.1:{stats_port}" }}'))

    def counted() -> int:
        (pool,) = stats_json(stats_port)["stats"]["pools"]
        return int(pool["backends"][0]["checks_ok"])

    def received() -> int:
        return sum(1 for path in backend.paths() if path == "/health")

    eventually(lambda: counted() >= ENOUGH_CHECKS, timeout=30)
    before = counted()
    seen = received()
    after = counted()
    # Each counted check reached the backend first; at most one more is on its way (one checker, one
    # check at a time per backend).
    assert before <= seen <= after + 1, (before, seen, after)
    assert rsp.alive


def test_drain_weight_add_remove_reach_every_worker(run_rsp: Run, start_backend: Start, free_port: Port,
                                                    tmp_path: Path) -> None:
    a = start_backend(HttpBackend, name="a")
    b = start_backend(HttpBackend, name="b")
    c = start_backend(HttpBackend, name="c")
    sock = str(tmp_path / "admin.sock")
    rsp = run_rsp(config(free_port(), Path(sock), [a.port, b.port]))

    def served(count: int = 24) -> set[str]:
        # A new connection per request: the accept queue is shared, so both workers take some of them.
        return {get(rsp.port).body.decode().split()[0] for _ in range(count)}

    def settles(expected: set[str], count: int = 24) -> None:
        """A round of `count` requests answered by `expected` alone, within SETTLE_ROUNDS rounds: an admin
        command is answered once the master has sent its news, and a worker may still serve a request it read
        in the same loop turn as that news."""
        got: set[str] = set()
        for _ in range(SETTLE_ROUNDS):
            got = served(count)
            if got == expected:
                return
        assert got == expected

    settles({"a", "b"})
    assert admin(sock, "drain default default/1")["ok"]
    settles({"b"})
    assert admin(sock, "ready default default/1")["ok"]
    assert admin(sock, "set weight default default/2 0")["ok"]
    settles({"a"})
    added = admin(sock, f"add backend default 127.0.0.1:{c.port} 3")
    assert added["backend"]["name"] == "default/3" and added["backend"]["weight"] == 3
    settles({"a", "c"})
    assert admin(sock, "remove backend default default/1")["ok"]
    settles({"c"})
    backends = admin(sock, "show backends default")["default"]
    assert [x["name"] for x in backends] == ["default/2", "default/3"]
    # Counters are summed over both workers: every request of the last round went to c.
    assert backends[1]["total"] >= 24
    assert backends[1]["workers"] == 2
    assert admin(sock, "remove backend default default/3")["ok"]
    # b has weight 0 and is the only backend left: nothing is eligible, in either worker.
    assert eventually(lambda: {get(rsp.port).status for _ in range(8)} == {503}, timeout=10.0)
    assert admin(sock, "set weight default default/2 1")["ok"]
    settles({"b"}, 8)
    errors = admin(sock, "add backend default nonsense")
    assert "error" in errors


def test_machine_admin_help_and_errors(run_rsp: Run, start_backend: Start, free_port: Port,
                                       tmp_path: Path) -> None:
    a = start_backend(HttpBackend, name="a")
    sock = str(tmp_path / "admin.sock")
    run_rsp(config(free_port(), Path(sock), [a.port]))
    commands = admin(sock, "help")["commands"]
    assert "show workers" in commands and "reload" in commands
    assert "add backend POOL HOST:PORT [WEIGHT]" in commands
    assert "error" in admin(sock, "remove backend default default/1")  # the last backend stays
    assert "error" in admin(sock, "drain nopool x")


def test_sigusr1_reopens_the_log_files(run_rsp: Run, start_backend: Start, free_port: Port,
                                       tmp_path: Path) -> None:
    a = start_backend(HttpBackend, name="a")
    access = tmp_path / "access.log"
    errors = tmp_path / "error.log"
    rsp = run_rsp(config(free_port(), tmp_path / "admin.sock", [a.port],
                         http={"access_log": "combined", "access_log_path": str(access)},
                         extra=f'error_log = "{errors}"'))
    assert get(rsp.port, "/before").status == 200
    eventually(lambda: "/before" in access.read_text())
    assert "master" in errors.read_text()
    access.rename(tmp_path / "access.log.1")
    errors.rename(tmp_path / "error.log.1")
    rsp.signal(signal.SIGUSR1)
    eventually(lambda: errors.exists() and "log files reopened" in errors.read_text())
    for _ in range(6):  # whichever worker serves it, each reopened its file
        assert get(rsp.port, "/after").status == 200
    eventually(lambda: access.exists() and access.read_text().count("/after") == 6)
    assert "/after" not in (tmp_path / "access.log.1").read_text()


def test_a_passive_ejection_in_one_worker_reaches_the_others(run_rsp: Run, start_backend: Start, free_port: Port,
                                                             tmp_path: Path) -> None:
    from support.backends import BackendServer

    class Refusing(BackendServer):
        """Accepts and closes at once: every request forwarded to it fails before any response byte."""

        def handle(self, conn: object) -> None:
            return

    bad = start_backend(Refusing)
    good = start_backend(HttpBackend, name="good")
    sock = str(tmp_path / "admin.sock")
    pools = {"default": {"backends": [f"127.0.0.1:{bad.port}", f"127.0.0.1:{good.port}"],
                         "passive_failures": 2, "passive_cooldown": 60, "retries": 0}}
    rsp = run_rsp(config(free_port(), Path(sock), [], pools=pools))
    statuses = []
    for _ in range(40):  # bounded: 2 workers x 2 strikes, plus what is in flight when an ejection happens
        statuses.append(get(rsp.port).status)
        if rsp.wait_for_stderr(r"is DOWN \(2 consecutive failures on traffic", 0):
            break
    assert 502 in statuses and len(statuses) < 40, statuses

    def ejected_everywhere() -> bool:
        # One line per process: "DOWN (2 consecutive ...)" where a worker's own traffic decided,
        # "DOWN here too" where the news came over the control channel (the master, the other worker).
        text = rsp.stderr_text
        return text.count("DOWN (2 consecutive failures") + text.count("DOWN here too") >= 3

    eventually(ejected_everywhere, timeout=10)
    assert "DOWN here too" in rsp.stderr_text  # at least the master learnt it from a worker
    # From then on neither worker picks the ejected backend.
    assert [get(rsp.port).status for _ in range(8)] == [200] * 8
    states = {b["name"]: b["state"] for b in admin(sock, "show backends")["default"]}
    assert states["default/1"] == "down"


def test_sigusr1_reopens_the_access_log_of_a_single_process(run_rsp: Run, start_backend: Start, free_port: Port,
                                                            tmp_path: Path) -> None:
    a = start_backend(HttpBackend, name="a")
    access = tmp_path / "access.log"
    rsp = run_rsp(http_config(free_port(), [a.port], http={"access_log": "combined", "access_log_path": str(access)},
                              extra="workers = 1"))
    assert get(rsp.port, "/before").status == 200
    eventually(lambda: "/before" in access.read_text())
    access.rename(tmp_path / "access.log.1")
    rsp.signal(signal.SIGUSR1)
    assert rsp.wait_for_stderr("SIGUSR1 received: log files reopened", 5)
    assert get(rsp.port, "/after").status == 200
    eventually(lambda: access.exists() and "/after" in access.read_text())
    assert rsp.alive


def test_workers_exit_when_the_master_is_killed(run_rsp: Run, start_backend: Start, free_port: Port,
                                                tmp_path: Path) -> None:
    a = start_backend(HttpBackend, name="a")
    sock = str(tmp_path / "admin.sock")
    rsp = run_rsp(config(free_port(), Path(sock), [a.port]))
    pids = serving_pids(sock)
    os.kill(rsp.pid, signal.SIGKILL)
    rsp.wait(10)

    def gone(pid: int) -> bool:
        try:
            return "zombie" in Path(f"/proc/{pid}/status").read_text() or False
        except FileNotFoundError:
            return True

    # A worker alone would never be reloaded nor restarted: it drains and exits on its own.
    eventually(lambda: all(gone(pid) for pid in pids), timeout=15)
