"""Reload with workers = 2 on loopback: under continuous load with zero errors, a TCP tunnel held open across
it, a bad config refused with its error while the old one keeps serving, SIGHUP and `rsp reload`."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from master.load import Load
from master.master_support import admin, serving_pids
from support.backends import EchoBackend
from support.http_backends import HttpBackend, ReceivedRequest, Reply
from support.http_client import HttpConn, build_request, get, http_config
from support.waiting import eventually

Run = Callable[..., Any]
Start = Callable[..., Any]
Port = Callable[..., int]
RELOADS = 20
SERVED_BETWEEN_RELOADS = 20  # requests answered before the first reload and after each one


@contextlib.contextmanager
def bound_port() -> Iterator[int]:
    """A port held by a listening socket for the duration of the block."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


def reload_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rsp", "reload", *args], capture_output=True, text=True,
                          timeout=90, check=False)


@pytest.mark.slow
def test_twenty_reloads_under_load_with_zero_errors(run_rsp: Run, start_backend: Start, free_port: Port,
                                                    tmp_path: Path) -> None:
    a = start_backend(HttpBackend, name="a")
    b = start_backend(HttpBackend, name="b")
    sock = str(tmp_path / "admin.sock")
    port = free_port()

    def text(weight: int) -> str:
        pools = {"default": {"backends": [f"127.0.0.1:{a.port}", {"address": f"127.0.0.1:{b.port}",
                                                                   "weight": weight}]}}
        return http_config(port, [], pools=pools, extra=f'workers = 2\nadmin_socket = "{sock}"')

    rsp = run_rsp(text(1))
    config_path = Path(rsp.config_path)
    generations = []
    with Load(port, clients=4) as load:
        load.wait_served(SERVED_BETWEEN_RELOADS)
        for i in range(RELOADS):
            config_path.write_text(text(1 + i % 3))  # a change each time: the new workers run the new file
            reply = admin(sock, "reload")
            assert reply.get("ok"), reply
            generations.append(reply["generation"])
            # Each reload happens while clients are being served, and they go on being served after it
            # (an event, not a duration: the machine's speed does not matter).
            load.wait_served(SERVED_BETWEEN_RELOADS)
        result = load.stop()
    assert generations == list(range(2, RELOADS + 2))
    assert result.ok >= (RELOADS + 1) * SERVED_BETWEEN_RELOADS, result
    assert not result.errors, (result.errors, result.examples)
    # The clients moved to new workers as they were told to close: many connections, none refused.
    assert result.connections > RELOADS
    eventually(lambda: len(admin(sock, "show workers")["workers"]) == 2, timeout=30)
    assert admin(sock, "show workers")["reloads"] == RELOADS


def test_a_tcp_tunnel_stays_open_across_a_reload(run_rsp: Run, start_backend: Start, free_port: Port,
                                                 tmp_path: Path) -> None:
    echo = start_backend(EchoBackend)
    sock = str(tmp_path / "admin.sock")
    port = free_port()
    rsp = run_rsp(f'listen = {{ {{ address = "127.0.0.1", port = {port} }} }}\n'
                  f'backends = {{ "127.0.0.1:{echo.port}" }}\nworkers = 2\nadmin_socket = "{sock}"\n'
                  "timeouts = { reload_grace = 30 }\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as tunnel:
        tunnel.sendall(b"before\n")
        assert tunnel.recv(100) == b"before\n"
        old = serving_pids(sock)
        assert admin(sock, "reload")["ok"]
        new = serving_pids(sock)
        assert not set(old) & set(new)
        # The tunnel's worker is an old one, still finishing: the tunnel works.
        finishing = [w for w in admin(sock, "show workers")["workers"] if w["role"].startswith("finishing")]
        assert finishing and all(w["state"] == "running" for w in finishing)
        tunnel.sendall(b"after\n")
        assert tunnel.recv(100) == b"after\n"
        # New connections go to the new workers meanwhile.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as fresh:
            fresh.sendall(b"fresh\n")
            assert fresh.recv(100) == b"fresh\n"
    # Closed by the client: the old workers have nothing left and exit on their own, long before the grace.
    eventually(lambda: all(not w["role"].startswith("finishing") for w in admin(sock, "show workers")["workers"]),
               timeout=15)
    assert rsp.wait_for_stderr(r"worker 1\.\d \(pid \d+\) exited with status 0", 5)


def test_a_bad_config_is_refused_and_the_old_one_keeps_serving(run_rsp: Run, start_backend: Start,
                                                               free_port: Port, tmp_path: Path) -> None:
    a = start_backend(HttpBackend, name="a")
    sock = str(tmp_path / "admin.sock")
    rsp = run_rsp(http_config(free_port(), [a.port], extra=f'workers = 2\nadmin_socket = "{sock}"'))
    before = serving_pids(sock)
    path = Path(rsp.config_path)
    good = path.read_text()
    path.write_text(good + "timeouts = { idle = -5 }\n")
    done = reload_cli("--admin", sock)
    assert done.returncode == 1
    assert "reload refused" in done.stderr and f"{path}:6" in done.stderr and "timeouts.idle" in done.stderr
    assert rsp.wait_for_stderr("reload refused, the running config stays", 5)
    # Given the file that does not load, `rsp reload` asks the running rsp of that file, which refuses it.
    done = reload_cli(str(path))
    assert done.returncode == 1 and "timeouts.idle" in done.stderr and "running config stays" in done.stderr
    # A config that loads but cannot start (a listener on a port in use) is refused too.
    with bound_port() as taken:
        path.write_text(good + f'listen = {{ {{ address = "127.0.0.1", port = {taken}, mode = "http" }} }}\n')
        refused = admin(sock, "reload")
    assert "error" in refused
    assert serving_pids(sock) == before
    assert get(rsp.port).status == 200
    path.write_text(good)
    done = reload_cli(str(path))
    assert done.returncode == 0, done.stderr
    assert serving_pids(sock) != before


WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3


def test_a_websocket_stays_open_across_a_reload(run_rsp: Run, start_backend: Start, free_port: Port,
                                                tmp_path: Path) -> None:
    def handler(req: ReceivedRequest) -> Reply:
        key = req.header("Sec-WebSocket-Key") or ""
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        return Reply(101, "Switching Protocols", [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                                                  ("Sec-WebSocket-Accept", accept)], content_length=False,
                     tunnel=True)

    backend = start_backend(HttpBackend, handler, name="ws")
    sock = str(tmp_path / "admin.sock")
    port = free_port()
    rsp = run_rsp(http_config(port, [backend.port], extra=f'workers = 2\nadmin_socket = "{sock}"'))
    key = base64.b64encode(b"0123456789abcdef").decode()
    upgrade = build_request("GET", "/ws", headers=[("Connection", "Upgrade"), ("Upgrade", "websocket"),
                                                   ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", "13")])
    with HttpConn(port) as ws:
        ws.send(upgrade)
        assert ws.read_response().status == 101
        ws.send(b"before")
        assert ws.read_exact(6) == b"before"
        assert admin(sock, "reload")["ok"]
        time.sleep(1.5)  # longer than the idle linger: a tunnel is not an idle keep-alive connection
        ws.send(b"after the reload")
        assert ws.read_exact(16) == b"after the reload"
        finishing = [w for w in admin(sock, "show workers")["workers"] if w["role"].startswith("finishing")]
        assert len(finishing) >= 1
        ws.sock.shutdown(socket.SHUT_WR)
        assert ws.wait_closed(5.0) == ("eof", b"")
    # The tunnel ended (each side half-closed): its old worker holds nothing more and exits long before the
    # 30 s reload_grace.
    eventually(lambda: all(not w["role"].startswith("finishing")
                           for w in admin(sock, "show workers")["workers"]), timeout=10)
    assert rsp.alive
