"""One model with one worker or many (docs/architecture.md, "Where state lives"): what is one per machine
(health checks, the admin socket, reload, the stats endpoint) behaves the same with `workers = 1` and
`workers = 2`, on a real rsp on loopback."""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from master.master_support import admin
from rsp.admin.socket_server import MAX_COMMAND_BYTES
from support.http_backends import HttpBackend
from support.http_client import get, http_config, lua
from support.stats_client import metrics, stats_json, value
from support.waiting import eventually

Run = Callable[..., Any]
Start = Callable[..., Any]
Port = Callable[..., int]
WORKERS = pytest.mark.parametrize("workers", [1, 2])
CHECK_INTERVAL = 0.2
ENOUGH_CHECKS = 3


@WORKERS
def test_health_check_results_reach_metrics_and_stats_json(run_rsp: Run, start_backend: Start, free_port: Port,
                                                            tmp_path: Path, workers: int, dead_port: int) -> None:
    alive = start_backend(HttpBackend, name="alive")
    stats_port = free_port()
    sock = str(tmp_path / "admin.sock")
    pools = {"web": {"backends": [f"127.0.0.1:{alive.port}", {"address": f"127.0.0.1:{dead_port}", "name": "dead"}],
                     "health": {"kind": "tcp", "interval": CHECK_INTERVAL, "timeout": 1, "rise": 1,
                                      "fall": 1}}}
    run_rsp(http_config(free_port(), [], pools=pools, pool="web",
                        extra=f'workers = {workers}\nadmin_socket = "{sock}"\n'
                              f"stats = {lua({'listen': f'127.0.0.1:{stats_port}'})}"))

    def checked() -> bool:
        table = metrics(stats_port)
        return (value(table, "rsp_backend_health_checks_total", pool="web", backend="web/1", result="ok")
                >= ENOUGH_CHECKS
                and value(table, "rsp_backend_health_checks_total", pool="web", backend="dead", result="fail")
                >= ENOUGH_CHECKS)

    eventually(checked, timeout=30)
    (pool,) = stats_json(stats_port)["stats"]["pools"]
    by_name = {b["name"]: b for b in pool["backends"]}
    assert by_name["web/1"]["checks_ok"] >= ENOUGH_CHECKS and by_name["web/1"]["checks_fail"] == 0
    assert by_name["dead"]["checks_fail"] >= ENOUGH_CHECKS and by_name["dead"]["checks_ok"] == 0
    assert by_name["web/1"]["last_check"] == admin(sock, "show backends web")["web"][0]["last_check"] != ""
    assert by_name["dead"]["last_check_time"] > 0 and by_name["dead"]["state"] == "down"


@WORKERS
def test_sighup_reloads(run_rsp: Run, start_backend: Start, free_port: Port, workers: int) -> None:
    a = start_backend(HttpBackend, name="a")
    b = start_backend(HttpBackend, name="b")
    port = free_port()
    rsp = run_rsp(http_config(port, [a.port], extra=f"workers = {workers}"))
    assert get(port).body.startswith(b"a")
    Path(rsp.config_path).write_text(http_config(port, [b.port], extra=f"workers = {workers}"))
    rsp.signal(signal.SIGHUP)
    assert rsp.wait_for_stderr(rf"reload: generation 2 serving with {workers} worker\(s\)", 30)
    assert {get(port).body.split()[0] for _ in range(4)} == {b"b"}
    assert rsp.proc.poll() is None


@WORKERS
def test_admin_reload_and_one_set_of_commands(run_rsp: Run, start_backend: Start, free_port: Port,
                                              tmp_path: Path, workers: int) -> None:
    a = start_backend(HttpBackend, name="a")
    b = start_backend(HttpBackend, name="b")
    port = free_port()
    sock = str(tmp_path / "admin.sock")
    extra = f'workers = {workers}\nadmin_socket = "{sock}"'
    rsp = run_rsp(http_config(port, [a.port], extra=extra))
    assert {"show workers", "reload"} <= set(admin(sock, "help")["commands"])
    Path(rsp.config_path).write_text(http_config(port, [b.port], extra=extra))
    reply = admin(sock, "reload")
    assert reply["ok"] and reply["generation"] == 2
    assert {get(port).body.split()[0] for _ in range(4)} == {b"b"}
    serving = [w for w in admin(sock, "show workers")["workers"] if w["role"] == "serving"]
    assert len(serving) == workers
    assert admin(sock, "no such command")["error"]


@WORKERS
def test_one_admin_server_answers_an_overlong_line_and_survives_a_silent_client(
        run_rsp: Run, start_backend: Start, free_port: Port, tmp_path: Path, workers: int) -> None:
    a = start_backend(HttpBackend, name="a")
    sock = str(tmp_path / "admin.sock")
    run_rsp(http_config(free_port(), [a.port], extra=f'workers = {workers}\nadmin_socket = "{sock}"'))
    with socket.socket(socket.AF_UNIX) as silent:  # connects, sends nothing, goes away
        silent.connect(sock)
    reply = admin(sock, "show backends " + "x" * (3 * MAX_COMMAND_BYTES))
    assert "error" in reply  # the line's start is the command: an unknown pool, answered, not dropped
    assert admin(sock, "show backends")["default"][0]["state"] == "up"
