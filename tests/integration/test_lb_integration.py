"""Load balancing through a running rsp, with real backends on loopback.

Each backend answers every connection with its own name, so the client sees which backend it reached.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from support.backends import BackendServer
from support.rsp_process import SUITE_WORKERS, RspProcess, free_port, rsp_command, with_workers
from support.waiting import wait_until

CLIENT_TIMEOUT = 5.0
# How late a timer may fire on this 2-core machine while other test processes run (seen: 1.1 s).
LOADED_MACHINE_SLACK = 3.0


class NamedBackend(BackendServer):
    """Sends `name\\n`, then holds the connection until the client closes (so `active` stays visible)."""

    def __init__(self, name: str, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.name = name

    def handle(self, conn: socket.socket) -> None:
        conn.sendall(self.name.encode() + b"\n")
        while conn.recv(4096):
            pass


def ask(port: int, source: str = "127.0.0.1") -> str:
    """Connect (from `source`), read the backend's name, close. "" when rsp closed the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=CLIENT_TIMEOUT,
                                  source_address=(source, 0)) as sock:
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(100)
            if not chunk:
                break
            data += chunk
        return data.decode().strip()


def hold(port: int) -> tuple[socket.socket, str]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=CLIENT_TIMEOUT)
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(100)
        assert chunk, "connection closed before the backend answered"
        data += chunk
    return sock, data.decode().strip()


def admin(sock_path: Path, command: str) -> Any:
    out = subprocess.run([*rsp_command("--admin", str(sock_path)), *command.split()], capture_output=True,
                         text=True, timeout=10, check=True)
    return json.loads(out.stdout)


def states(sock_path: Path, pool: str = "default") -> dict[str, str]:
    return {b["name"]: b["state"] for b in admin(sock_path, f"show backends {pool}")[pool]}


def pool_config(port: int, backends: list[str], *, algorithm: str = "roundrobin", health: str = "",
                extra: str = "", admin_path: Path | None = None, pool_extra: str = "",
                workers: int = SUITE_WORKERS) -> str:
    lines = [
        f'listen = {{ {{ address = "127.0.0.1", port = {port} }} }}',
        "pools = { default = {",
        f'  algorithm = "{algorithm}",',
        "  backends = { " + ", ".join(backends) + " },",
    ]
    if health:
        lines.append(f"  health = {health},")
    if pool_extra:
        lines.append(f"  {pool_extra},")
    lines.append("} }")
    if admin_path is not None:
        lines.append(f'admin_socket = "{admin_path}"')
    return "\n".join(with_workers(lines, extra, workers)) + "\n"


def backend_entry(server: NamedBackend, **fields: object) -> str:
    parts = ['address = "127.0.0.1"', f"port = {server.port}", f'name = "{server.name}"']
    for key, value in fields.items():
        parts.append(f"{key} = {str(value).lower() if isinstance(value, bool) else value}")
    return "{ " + ", ".join(parts) + " }"


Start = Callable[..., Any]
Run = Callable[..., RspProcess]


def test_weighted_round_robin_distribution(start_backend: Start, run_rsp: Run) -> None:
    servers = [start_backend(NamedBackend, name) for name in ("a", "b", "c")]
    weights = {"a": 1, "b": 2, "c": 3}
    port = free_port()
    # workers = 1: the exact 10/20/30 is one balancer's rotation; with workers each has its own.
    run_rsp(pool_config(port, [backend_entry(s, weight=weights[s.name]) for s in servers], extra="workers = 1"))
    counts = Counter(ask(port) for _ in range(60))
    assert counts == Counter({"a": 10, "b": 20, "c": 30})


def test_leastconn_sends_new_connections_to_the_idle_backend(start_backend: Start, run_rsp: Run) -> None:
    servers = [start_backend(NamedBackend, name) for name in ("a", "b")]
    port = free_port()
    # workers = 1: "the idle backend" is one balancer's view; with workers each counts only its own
    # connections (as nginx's least_conn does per worker, docs/workers.md).
    run_rsp(pool_config(port, [backend_entry(s) for s in servers], algorithm="leastconn", extra="workers = 1"))
    held = [hold(port) for _ in range(2)]
    try:
        assert sorted(name for _, name in held) == ["a", "b"]
        # Close the one on "a": the next two go to "a" first (0 active vs 1), then alternate.
        on_a = next(sock for sock, name in held if name == "a")
        on_a.close()
        assert wait_until(lambda: ask(port) == "a", timeout=5)
    finally:
        for sock, _ in held:
            sock.close()


def test_refused_backend_is_skipped_by_retries(start_backend: Start, run_rsp: Run, dead_port: int) -> None:
    alive = start_backend(NamedBackend, "alive")
    port = free_port()
    entries = [f'{{ address = "127.0.0.1", port = {dead_port}, name = "dead" }}', backend_entry(alive)]
    proc = run_rsp(pool_config(port, entries, pool_extra="passive_failures = 0"))
    answers = [ask(port) for _ in range(10)]
    assert answers == ["alive"] * 10
    assert proc.wait_for_stderr(r"backend dead 127\.0\.0\.1:\d+ connect failed", timeout=5)


def test_all_backends_down_closes_the_client_and_keeps_running(run_rsp: Run, start_backend: Start) -> None:
    port = free_port()
    backend_port = free_port()
    proc = run_rsp(pool_config(port, [f'"127.0.0.1:{backend_port}"']))
    started = time.monotonic()
    assert ask(port) == ""
    assert time.monotonic() - started < 3
    assert proc.alive
    # The backend comes up: the next client is served (passive ejection never locks out the last backend).
    start_backend(NamedBackend, "late", port=backend_port)
    assert ask(port) == "late"


def test_backup_only_when_primaries_are_down(start_backend: Start, run_rsp: Run, tmp_path: Path) -> None:
    primary = start_backend(NamedBackend, "primary")
    backup = start_backend(NamedBackend, "backup")
    port = free_port()
    sock_path = tmp_path / "admin.sock"
    run_rsp(pool_config(port, [backend_entry(primary), backend_entry(backup, backup=True)],
                        health="{ kind = 'tcp', interval = 0.1, timeout = 0.5, rise = 1, fall = 1 }",
                        admin_path=sock_path))
    assert {ask(port) for _ in range(6)} == {"primary"}
    primary.stop()
    assert wait_until(lambda: states(sock_path)["primary"] == "down", timeout=5)
    assert {ask(port) for _ in range(6)} == {"backup"}


def test_killed_backend_goes_down_then_comes_back(start_backend: Start, run_rsp: Run, tmp_path: Path) -> None:
    a = start_backend(NamedBackend, "a")
    b = start_backend(NamedBackend, "b")
    port = free_port()
    sock_path = tmp_path / "admin.sock"
    interval, fall, rise = 0.2, 2, 2
    # workers = 1: the exact 4/4 split below is one balancer's rotation; with workers each has its own
    # (as nginx's workers do), and the health state they share is tested in tests/master.
    proc = run_rsp(pool_config(
        port, [backend_entry(a), backend_entry(b)], admin_path=sock_path, extra="workers = 1",
        health=f"{{ kind = 'tcp', interval = {interval}, timeout = 0.5, rise = {rise}, fall = {fall} }}"))
    b_port = b.port
    b.stop()
    killed = time.monotonic()
    assert wait_until(lambda: states(sock_path)["b"] == "down", timeout=5)
    # Marked DOWN within fall x interval plus one of phase, and the slack of a loaded machine (the exact
    # timing is tests/health/test_checker.py's, on a fake clock): not after many more intervals.
    assert time.monotonic() - killed <= fall * interval + interval + LOADED_MACHINE_SLACK
    assert proc.wait_for_stderr(r"backend b 127\.0\.0\.1:\d+ is DOWN \(2 failed checks: connection refused\)", 5)
    assert {ask(port) for _ in range(8)} == {"a"}
    start_backend(NamedBackend, "b", port=b_port)
    assert wait_until(lambda: states(sock_path)["b"] == "up", timeout=5)
    assert proc.wait_for_stderr(r"backend b 127\.0\.0\.1:\d+ is UP", 5)
    assert Counter(ask(port) for _ in range(8)) == Counter({"a": 4, "b": 4})


def test_drain_and_ready_through_the_runtime_api(start_backend: Start, run_rsp: Run, tmp_path: Path) -> None:
    a = start_backend(NamedBackend, "a")
    b = start_backend(NamedBackend, "b")
    port = free_port()
    sock_path = tmp_path / "admin.sock"
    # workers = 1: the two held connections take a and b only under one balancer's rotation (each worker has
    # its own, docs/workers.md); the runtime API itself is the master's with any number.
    run_rsp(pool_config(port, [backend_entry(a), backend_entry(b)], admin_path=sock_path, extra="workers = 1"))
    live = [hold(port) for _ in range(2)]
    try:
        reply = admin(sock_path, "drain default b")
        assert reply["backend"]["state"] == "drain"
        assert {ask(port) for _ in range(6)} == {"a"}
        # The live connection to b still works while b drains.
        sock_b = next(sock for sock, name in live if name == "b")
        sock_b.sendall(b"still here\n")
        snapshot = {x["name"]: x for x in admin(sock_path, "show backends")["default"]}
        assert snapshot["b"]["active"] == 1 and snapshot["b"]["state"] == "drain"
        admin(sock_path, "ready default b")
        assert {ask(port) for _ in range(6)} == {"a", "b"}
    finally:
        for sock, _ in live:
            sock.close()


def test_admin_reports_unknown_backend(start_backend: Start, run_rsp: Run, tmp_path: Path) -> None:
    a = start_backend(NamedBackend, "a")
    sock_path = tmp_path / "admin.sock"
    run_rsp(pool_config(free_port(), [backend_entry(a)], admin_path=sock_path))
    out = subprocess.run([*rsp_command("--admin", str(sock_path)), "drain", "default", "zzz"], capture_output=True,
                         text=True, timeout=10, check=False)
    assert out.returncode != 0, out  # an error reply: scripts can tell
    assert "no backend 'zzz'" in json.loads(out.stdout)["error"]


def test_source_hash_is_sticky_and_moves_little(start_backend: Start, run_rsp: Run, tmp_path: Path) -> None:
    servers = [start_backend(NamedBackend, name) for name in ("a", "b", "c", "d")]
    port = free_port()
    sock_path = tmp_path / "admin.sock"
    run_rsp(pool_config(port, [backend_entry(s) for s in servers], algorithm="hash", admin_path=sock_path))
    sources = [f"127.0.0.{i}" for i in range(2, 42)]
    first = {src: ask(port, src) for src in sources}
    assert first == {src: ask(port, src) for src in sources}  # sticky
    assert len(set(first.values())) >= 3  # and spread
    admin(sock_path, "drain default d")
    after = {src: ask(port, src) for src in sources}
    moved = [src for src in sources if after[src] != first[src]]
    # Only the clients that were on d move.
    assert all(first[src] == "d" for src in moved)
    assert "d" not in after.values()


@pytest.mark.parametrize("algorithm", ["random", "first"])
def test_other_algorithms_serve_through_rsp(algorithm: str, start_backend: Start, run_rsp: Run) -> None:
    servers = [start_backend(NamedBackend, name) for name in ("a", "b")]
    port = free_port()
    run_rsp(pool_config(port, [backend_entry(s) for s in servers], algorithm=algorithm))
    answers = Counter(ask(port) for _ in range(40))
    if algorithm == "first":
        assert answers == Counter({"a": 40})  # fills the first backend (no max_conns)
    else:
        assert set(answers) == {"a", "b"}


class GarbageBackend(BackendServer):
    """Answers anything with bytes that are not HTTP, then closes."""

    def handle(self, conn: socket.socket) -> None:
        conn.recv(4096)
        conn.sendall(b"this is not http\r\n\r\n")


class OkHttpBackend(BackendServer):
    """Answers every request on a connection with a tiny 200 (enough for GET without a body)."""

    def handle(self, conn: socket.socket) -> None:
        buf = b""
        while True:
            chunk = conn.recv(4096)
            if not chunk:
                return
            buf += chunk
            while b"\r\n\r\n" in buf:
                _, buf = buf.split(b"\r\n\r\n", 1)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


def http_status(port: int) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=CLIENT_TIMEOUT) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    return int(data.split(b" ", 2)[1])


def test_http_mode_ejects_a_backend_that_answers_garbage(start_backend: Start, run_rsp: Run) -> None:
    bad = start_backend(GarbageBackend)
    good = start_backend(OkHttpBackend)
    port = free_port()
    proc = run_rsp(
        f'listen = {{ {{ address = "127.0.0.1", port = {port}, mode = "http" }} }}\n'
        f'pools = {{ default = {{ backends = {{ {{ address = "127.0.0.1", port = {bad.port}, name = "bad" }},'
        f' {{ address = "127.0.0.1", port = {good.port}, name = "good" }} }},'
        f' passive_failures = 3, passive_cooldown = 60 }} }}\n'
        'http = { access_log = "off" }\n'
        # One process: the exact count of strikes is one detector's. With workers each counts its own and an
        # ejection reaches all (tests/master/test_workers_loopback.py).
        "workers = 1\n"
    )
    statuses = [http_status(port) for _ in range(12)]
    assert statuses.count(502) == 3, statuses  # the bad backend's three strikes, then it is out
    assert statuses[-6:] == [200] * 6
    assert proc.wait_for_stderr(r"backend bad 127\.0\.0\.1:\d+ is DOWN \(3 consecutive failures on traffic", 5)
