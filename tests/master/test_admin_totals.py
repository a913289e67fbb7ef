"""Admin replies and stats agree (workers = 2, loopback): `drain`, `ready`, `set weight` and `remove backend`
reply with the backend's counters summed over the workers, the same `total` that `show backends` and the
stats endpoint report; after a reload the counters restart from zero and /stats.json says since when."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from master.master_support import admin
from support.backends import EchoBackend
from support.rsp_process import legacy_config
from support.stats_client import stats_json
from support.waiting import eventually

CONNECTIONS = 6


def echo_once(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"x\n")
        assert sock.recv(10) == b"x\n"


def test_mutating_replies_show_the_totals_show_backends_shows(
        run_rsp: Callable[..., Any], start_backend: Callable[..., Any], free_port: Callable[..., int],
        tmp_path: Path) -> None:
    backend = start_backend(EchoBackend)
    sock = str(tmp_path / "admin.sock")
    stats = free_port()
    extra = f'workers = 2\nadmin_socket = "{sock}"\nstats = {{ listen = "127.0.0.1:{stats}" }}'
    rsp = run_rsp(legacy_config(free_port(), backend.port, extra=extra))
    for _ in range(CONNECTIONS):
        echo_once(rsp.port)

    def shown_total() -> int:
        return int(admin(sock, "show backends")["default"][0]["total"])

    eventually(lambda: shown_total() == CONNECTIONS)
    for command in ("drain default 1", "ready default 1", "set weight default 1 3"):
        reply = admin(sock, command)
        assert reply["ok"] is True
        assert reply["backend"]["total"] == CONNECTIONS, (command, reply)
        assert reply["backend"]["workers"] == 2
    page = stats_json(stats)
    assert page["machine"]["last_reload"] is None  # counting since start
    assert sum(b["connections"] for b in page["stats"]["pools"][0]["backends"]) == CONNECTIONS

    added = admin(sock, "add backend default 127.0.0.1:1")
    removed = admin(sock, f"remove backend default {added['backend']['name']}")
    assert removed["removed"]["total"] == 0 and removed["removed"]["workers"] == 2

    assert admin(sock, "reload")["ok"] is True
    assert shown_total() == 0  # new workers: the counters restart at a reload
    assert stats_json(stats)["machine"]["last_reload"] is not None
