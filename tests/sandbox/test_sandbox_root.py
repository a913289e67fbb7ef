"""Sandboxed apps end to end (root): rsp started as a subprocess with two demo apps both on port 8080.

Each test uses its own instance tag, runtime directory and a random /24 for the apps' networks, so that
concurrent runs never touch each other's namespaces; traffic goes to loopback, to the apps' namespaces, or
to a client namespace the NAT test creates.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rsp.proctitle import title_of
from support.native_build import REPO_ROOT
from support.rsp_process import RspProcess, free_port, rsp_command

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="sandboxed apps need root (CAP_SYS_ADMIN, CAP_NET_ADMIN)"),
]

HELLO = str(Path(REPO_ROOT) / "examples" / "apps" / "hello.py")
READY_TIMEOUT = 30.0


@dataclass
class Sandboxed:
    proc: RspProcess
    config: Path
    tag: str
    state_dir: Path
    ports: dict[str, int]
    network: str

    def state(self) -> dict[str, dict[str, object]]:
        try:
            data = json.loads((self.state_dir / "state.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}
        if self.proc.proc is None or data["rsp_pid"] != self.proc.proc.pid:
            return {}  # an earlier (killed) run's file
        return {app["name"]: app for app in data["apps"]}

    def wait_ready(self, names: tuple[str, ...] = ("one", "two"), restarts: int = 0) -> dict[str, dict[str, object]]:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            state = self.state()
            if all(n in state and state[n]["state"] == "ready" and int(str(state[n]["restarts"])) >= restarts
                   for n in names):
                return state
            time.sleep(0.05)
        raise AssertionError(f"apps not ready: {self.state()}\nstderr: {self.proc.stderr_lines}")

    def apps_cmd(self, *args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
        return subprocess.run(rsp_command("apps", "-c", str(self.config), *args), capture_output=True, text=True,
                              timeout=timeout)


def leftovers(tag: str) -> list[str]:
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    return ([line for line in netns.splitlines() if line.startswith(f"rsp-{tag}-")]
            + [line for line in links.splitlines() if line.startswith(f"rs{tag}-")]
            + [line for line in tables.splitlines() if line.endswith(f"rsp_{tag}")])


def force_cleanup(tag: str) -> None:
    """The test's own safety net: whatever a failed test left of its instance."""
    for line in leftovers(tag):
        name = line.split()[0].split("@")[0]
        if name.startswith("rsp-"):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        elif name.startswith("rs"):
            subprocess.run(["ip", "link", "del", name], capture_output=True)
        else:
            subprocess.run(["nft", "delete", "table", "ip", f"rsp_{tag}"], capture_output=True)


def http_get(host: str, port: int, timeout: float = 5.0) -> str:
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def app_config(tag: str, runtime: Path, network: str, ports: dict[str, int], mode: str = "relay") -> str:
    return f"""
listen = {{ {{ address = "127.0.0.1", port = {ports['web']}, pool = "web", mode = "http" }} }}
apps = {{
  one = {{ command = {{ "{sys.executable}", "{HELLO}" }}, port = 8080, pool = "web", grace = 3 }},
  two = {{ command = {{ "{sys.executable}", "{HELLO}" }}, port = 8080, pool = "web", grace = 3 }},
}}
forward = {{ [{ports['one']}] = "one:8080", [{ports['two']}] = "two:8080" }}
forward_mode = "{mode}"
sandbox_instance = "{tag}"
sandbox_network = "{network}"
sandbox_runtime_dir = "{runtime}"
workers = 2
"""


@pytest.fixture
def sandboxed(tmp_path: Path) -> Iterator[Callable[..., Sandboxed]]:
    started: list[Sandboxed] = []

    def launch(mode: str = "relay", tag: str = "", network: str = "", config: Path | None = None,
               ports: dict[str, int] | None = None) -> Sandboxed:
        tag = tag or f"t{random.randrange(16**5):05x}"
        network = network or f"10.{random.randrange(220, 250)}.{random.randrange(256)}.0/24"
        ports = ports or {"web": free_port(), "one": free_port(), "two": free_port()}
        runtime = tmp_path / "run"
        if config is None:
            config = tmp_path / f"sandbox-{len(started)}.lua"
            config.write_text(app_config(tag, runtime, network, ports, mode))
        listeners = 1 if mode == "nat" else 3
        proc = RspProcess(config)
        box = Sandboxed(proc, config, tag, runtime / f"sandbox-{tag}", ports, network)
        started.append(box)
        proc.start(listeners, timeout=30)
        return box

    try:
        yield launch
    finally:
        for box in started:
            box.proc.stop(timeout=15)
        for tag in {box.tag for box in started}:
            force_cleanup(tag)


def test_two_apps_on_8080_answer_on_their_forwards_and_through_the_pool(sandboxed: Callable[..., Sandboxed]) -> None:
    box = sandboxed()
    box.wait_ready()
    assert http_get("127.0.0.1", box.ports["one"]).count("Hello from app one") == 1
    assert "Hello from app two" in http_get("127.0.0.1", box.ports["two"])
    seen = {re.search(r"Hello from app (\w+)", http_get("127.0.0.1", box.ports["web"])).group(1)  # type: ignore[union-attr]
            for _ in range(6)}
    assert seen == {"one", "two"}


def test_inside_an_app_ps_shows_only_its_processes_and_the_other_app_is_unreachable(
        sandboxed: Callable[..., Sandboxed]) -> None:
    box = sandboxed()
    state = box.wait_ready()
    body = http_get("127.0.0.1", box.ports["one"]).split("\r\n\r\n", 1)[1]
    ps_lines = [line for line in body.splitlines()[1:] if line.strip() and not line.lstrip().startswith("PID")]
    pids = sorted(int(line.split()[0]) for line in ps_lines)
    # PID 1 (rsp's init), the app, and the `ps` it ran: nothing of the host.
    assert pids[:2] == [1, 2] and len(pids) == 3, body
    assert "-m pytest" not in body  # the test runner, on the host, is not visible
    listing = box.apps_cmd("exec", "one", "--", "ps", "ax")
    assert listing.returncode == 0, listing.stderr
    assert len(listing.stdout.strip().splitlines()) == 4, listing.stdout  # header, init, app, ps

    two = str(state["two"]["address"]).split(":")[0]
    one = str(state["one"]["address"]).split(":")[0]
    probe = "import socket, sys; socket.create_connection((sys.argv[1], 8080), 1.5)"
    own = box.apps_cmd("exec", "one", "--", sys.executable, "-c", probe, one)
    assert own.returncode == 0, own.stderr  # the probe itself works: its own address answers
    other = box.apps_cmd("exec", "one", "--", sys.executable, "-c", probe, two)
    assert other.returncode != 0
    assert re.search(r"TimeoutError|unreachable|refused", other.stderr), other.stderr


def test_a_killed_app_is_restarted_and_rejoins_the_pool(sandboxed: Callable[..., Sandboxed]) -> None:
    box = sandboxed()
    state = box.wait_ready()
    launcher = int(str(state["one"]["pid"]))
    init = int(Path(f"/proc/{launcher}/task/{launcher}/children").read_text().split()[0])
    app = int(Path(f"/proc/{init}/task/{init}/children").read_text().split()[0])
    os.kill(app, signal.SIGKILL)
    state = box.wait_ready(("one",), restarts=1)
    assert int(str(state["one"]["pid"])) != launcher
    assert "Hello from app one" in http_get("127.0.0.1", box.ports["one"])
    seen = {re.search(r"Hello from app (\w+)", http_get("127.0.0.1", box.ports["web"])).group(1)  # type: ignore[union-attr]
            for _ in range(6)}
    assert seen == {"one", "two"}
    deadline = time.monotonic() + 10  # rsp copies the app's output to the file as it reads the pipe
    while "GET / HTTP/1.1" not in (logs := box.apps_cmd("logs", "one").stdout) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "GET / HTTP/1.1" in logs


def test_launchers_and_inits_are_titled_with_their_app_and_rsp_as_the_master(
        sandboxed: Callable[..., Sandboxed]) -> None:
    """`pgrep -f '^rsp: master'` finds rsp alone; the apps' launchers and inits say whose they are."""
    box = sandboxed()
    state = box.wait_ready()
    assert title_of(box.proc.pid) == f"rsp: master {box.config}"
    for name in ("one", "two"):
        launcher = int(str(state[name]["pid"]))
        init = int(Path(f"/proc/{launcher}/task/{launcher}/children").read_text().split()[0])
        assert title_of(launcher) == f"rsp: app {name}"
        assert title_of(init) == f"rsp: app {name} init"
    masters = subprocess.run(["pgrep", "-f", f"^rsp: master {box.config}$"], capture_output=True, text=True)
    assert masters.stdout.split() == [str(box.proc.pid)]


def test_stopping_rsp_leaves_no_namespace_link_or_table(sandboxed: Callable[..., Sandboxed]) -> None:
    box = sandboxed()
    box.wait_ready()
    assert len(leftovers(box.tag)) == 4  # two netns, two host veth ends, while running
    assert box.proc.stop(timeout=15) == 0
    assert leftovers(box.tag) == []


def test_after_a_sigkill_of_rsp_the_next_start_removes_the_stale_namespaces(
        sandboxed: Callable[..., Sandboxed]) -> None:
    box = sandboxed()
    state = box.wait_ready()
    launchers = [int(str(app["pid"])) for app in state.values()]
    box.proc.signal(signal.SIGKILL)
    box.proc.wait(10)
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in launchers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(Path(f"/proc/{pid}").exists() for pid in launchers), "apps outlived a SIGKILLed rsp"
    assert len(leftovers(box.tag)) == 4

    again = sandboxed(tag=box.tag, config=box.config, ports=box.ports)
    assert again.proc.wait_for_stderr("removed leftovers of an earlier run", 10) is not None
    again.wait_ready()
    assert "Hello from app two" in http_get("127.0.0.1", box.ports["two"])
    assert again.proc.stop(timeout=15) == 0
    assert leftovers(box.tag) == []


def test_without_the_capabilities_rsp_refuses_naming_the_capability_and_the_app(tmp_path: Path) -> None:
    tag = f"t{random.randrange(16**5):05x}"
    ports = {"web": free_port(), "one": free_port(), "two": free_port()}
    config = tmp_path / "sandbox.lua"
    config.write_text(app_config(tag, tmp_path / "run", "10.250.0.0/24", ports))
    done = subprocess.run(["setpriv", "--bounding-set", "-sys_admin,-net_admin", *rsp_command(str(config))],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert "apps.one" in done.stderr and "CAP_SYS_ADMIN" in done.stderr and "CAP_NET_ADMIN" in done.stderr
    # Located like every config error: the file, the app's line, its key.
    assert done.stderr.splitlines()[-1].startswith(f"rsp: {config}:4: apps.one: sandboxed apps need"), done.stderr
    assert leftovers(tag) == []


# ---- NAT mode: a client namespace of the test's own, connected to the host by a veth pair ----------------

@pytest.fixture
def client_netns() -> Iterator[tuple[str, str, str]]:
    """(netns name, host-side address, client address) of a client namespace the test creates."""
    suffix = f"{random.randrange(16**5):05x}"
    name, host_if, peer_if = f"rsptc-{suffix}", f"tch{suffix}", f"tcc{suffix}"
    third = random.randrange(256)
    host_ip, client_ip = f"10.251.{third}.1", f"10.251.{third}.2"
    commands = [
        ["ip", "netns", "add", name],
        ["ip", "link", "add", host_if, "type", "veth", "peer", "name", peer_if, "netns", name],
        ["ip", "addr", "add", f"{host_ip}/30", "dev", host_if],
        ["ip", "link", "set", host_if, "up"],
        ["ip", "-n", name, "addr", "add", f"{client_ip}/30", "dev", peer_if],
        ["ip", "-n", name, "link", "set", peer_if, "up"],
        ["ip", "-n", name, "link", "set", "lo", "up"],
    ]
    try:
        for command in commands:
            subprocess.run(command, check=True, capture_output=True)
        yield name, host_ip, client_ip
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def test_nat_mode_forwards_from_a_client_namespace_and_from_the_host(
        sandboxed: Callable[..., Sandboxed], client_netns: tuple[str, str, str]) -> None:
    name, host_ip, _ = client_netns
    box = sandboxed(mode="nat")
    box.wait_ready()
    fetch = ("import socket, sys; s = socket.create_connection((sys.argv[1], int(sys.argv[2])), 5); "
             "s.sendall(b'GET / HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n'); "
             "print(b''.join(iter(lambda: s.recv(65536), b'')).decode())")
    for app in ("one", "two"):
        done = subprocess.run(["ip", "netns", "exec", name, sys.executable, "-c", fetch, host_ip,
                               str(box.ports[app])], capture_output=True, text=True, timeout=20)
        assert f"Hello from app {app}" in done.stdout, done.stderr
    # OUTPUT: the host itself, to its loopback address.
    assert "Hello from app two" in http_get("127.0.0.1", box.ports["two"])
    assert any(line.endswith(f"rsp_{box.tag}") for line in leftovers(box.tag))
    assert box.proc.stop(timeout=15) == 0
    assert leftovers(box.tag) == []


def test_a_second_instance_on_the_same_range_is_refused_and_leaves_the_first_alone(
        sandboxed: Callable[..., Sandboxed], tmp_path: Path) -> None:
    box = sandboxed()
    box.wait_ready()
    other_tag = f"t{random.randrange(16**5):05x}"
    ports = {"web": free_port(), "one": free_port(), "two": free_port()}
    config = tmp_path / "other.lua"
    config.write_text(app_config(other_tag, tmp_path / "run", box.network, ports))
    try:
        done = subprocess.run(rsp_command(str(config)), capture_output=True, text=True, timeout=60)
        assert done.returncode == 1
        assert f"sandbox_network {box.network} is already routed here" in done.stderr, done.stderr
        assert leftovers(other_tag) == []
    finally:
        force_cleanup(other_tag)
    assert "Hello from app one" in http_get("127.0.0.1", box.ports["one"])


def test_a_second_sigterm_while_stopping_still_removes_everything(sandboxed: Callable[..., Sandboxed]) -> None:
    box = sandboxed()
    box.wait_ready()
    box.proc.signal(signal.SIGTERM)
    time.sleep(0.01)
    box.proc.signal(signal.SIGTERM)  # as `timeout` or an impatient operator would
    assert box.proc.wait(20) == 0
    assert leftovers(box.tag) == []
