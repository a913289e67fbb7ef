"""Sandboxed apps: start-up and stop time of many apps, and the proxy's CPU per request to an app in a namespace.

    sudo .venv/bin/python bench/run_sandbox.py [--apps 50] [--duration 5] [--reps 3]

1. Start: rsp with N sandboxed apps (a tiny TCP server each); the time from launching rsp until the state
   file says every app is ready (target: 50 apps under 10 s), then from SIGTERM until rsp has exited and
   no namespace or veth of the instance is left.
2. CPU per request: one rsp, one HTTP listener per pool; pool "ns" holds the app in its namespace, pool "lo"
   the same program run unsandboxed (`sandbox = false`) on loopback. wrk drives each listener in turn
   (alternating, `reps` times); rsp's CPU time (utime + stime of the master and every worker: the process
   tree's processes titled `rsp: master` or `rsp: worker`, not the apps it started) divided by the requests
   served. Target: namespace / loopback within 1.05x. rsp runs its default `workers` (one per core).
Everything started is stopped in `finally`. Root only (namespaces).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import procstat

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
TINY_TCP_APP = ("import os, socket; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
                "s.bind(('0.0.0.0', int(os.environ['PORT']))); s.listen(64)\n"
                "while True: s.accept()[0].close()")
HTTP_APP = REPO / "bench" / "sandbox_http_app.py"
READY_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def leftovers(tag: str) -> int:
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
    return (sum(line.startswith(f"rsp-{tag}-") for line in netns.splitlines())
            + sum(line.startswith(f"rs{tag}-") for line in links.splitlines()))


def start_rsp(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([PYTHON, "-m", "rsp", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, cwd=REPO)


def stop_rsp(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def wait_ready(state_file: Path, count: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"rsp exited with {proc.returncode} before the apps were ready")
        try:
            apps = json.loads(state_file.read_text())["apps"]
        except (FileNotFoundError, json.JSONDecodeError):
            apps = []
        if len(apps) == count and all(app["state"] == "ready" for app in apps):
            return
        time.sleep(0.02)
    states = [app["state"] for app in apps]
    raise SystemExit(f"not all {count} apps ready within {READY_TIMEOUT} s: {len(apps)} apps, "
                     f"{states.count('ready')} ready")


def bench_start_stop(workdir: Path, count: int) -> tuple[float, float]:
    tag = "bst"
    apps = ",\n".join(f'  a{i} = {{ command = {{ "{PYTHON}", "-S", "-c", {json.dumps(TINY_TCP_APP)} }}, port = 8080 }}'
                      for i in range(count))
    config = workdir / "start.lua"
    config.write_text(f"""listen = {{ {{ address = "127.0.0.1", port = {free_port()}, pool = "none" }} }}
pools = {{ none = {{ backends = {{ "127.0.0.1:9" }} }} }}
apps = {{
{apps}
}}
sandbox_instance = "{tag}"
sandbox_network = "10.212.0.0/16"
sandbox_runtime_dir = "{workdir}"
""")
    state = workdir / f"sandbox-{tag}" / "state.json"
    began = time.monotonic()
    proc = start_rsp(config)
    try:
        wait_ready(state, count, proc)
        ready = time.monotonic() - began
        stopping = time.monotonic()
        stop_rsp(proc)
        while leftovers(tag) and time.monotonic() - stopping < 30:
            time.sleep(0.02)
        stopped = time.monotonic() - stopping
    finally:
        stop_rsp(proc)
    return ready, stopped


# rsp's own processes by their titles (rsp.proctitle): the master and the workers, not the apps' processes.
PROXY_TITLES = ("rsp: master", "rsp: worker")


def cpu_seconds(pid: int) -> float:
    """CPU seconds of rsp's master `pid` and its workers."""
    return procstat.titled_tree_seconds(pid, PROXY_TITLES)


def wrk(port: int, duration: int) -> int:
    out = subprocess.run(["wrk", "-t1", "-c20", f"-d{duration}s", f"http://127.0.0.1:{port}/"], capture_output=True,
                         text=True, timeout=duration + 30).stdout
    match = re.search(r"(\d+) requests in", out)
    if not match or "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"wrk failed on port {port}:\n{out}")
    return int(match.group(1))


def bench_cpu_per_request(workdir: Path, duration: int, reps: int) -> tuple[float, float]:
    tag = "bcpu"
    ports = {"ns": free_port(), "lo": free_port()}
    local = free_port()
    config = workdir / "cpu.lua"
    config.write_text(f"""listen = {{ {{ address = "127.0.0.1", port = {ports['ns']}, pool = "ns", mode = "http" }},
           {{ address = "127.0.0.1", port = {ports['lo']}, pool = "lo", mode = "http" }} }}
apps = {{
  inside = {{ command = {{ "{PYTHON}", "{HTTP_APP}" }}, port = 8080, pool = "ns" }},
  outside = {{ command = {{ "{PYTHON}", "{HTTP_APP}" }}, port = {local}, pool = "lo", sandbox = false }},
}}
sandbox_instance = "{tag}"
sandbox_network = "10.211.0.0/24"
sandbox_runtime_dir = "{workdir}"
""")
    proc = start_rsp(config)
    totals = {"ns": [0.0, 0], "lo": [0.0, 0]}
    try:
        wait_ready(workdir / f"sandbox-{tag}" / "state.json", 2, proc)
        for name in ports:  # warm-up: first connections, imports
            wrk(ports[name], 1)
        for _ in range(reps):
            for name in ("ns", "lo"):
                before = cpu_seconds(proc.pid)
                served = wrk(ports[name], duration)
                totals[name][0] += cpu_seconds(proc.pid) - before
                totals[name][1] += served
                time.sleep(0.3)
    finally:
        stop_rsp(proc)
    per = {name: cpu / max(1, int(count)) * 1e6 for name, (cpu, count) in totals.items()}
    return per["ns"], per["lo"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--apps", type=int, default=50)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--reps", type=int, default=3, help="wrk runs per pool (alternating)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("run_sandbox.py needs root (network and PID namespaces)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="rsp-bench-sandbox-") as tmp:
        workdir = Path(tmp)
        ready, stopped = bench_start_stop(workdir, args.apps)
        print(f"start {args.apps} sandboxed apps until all ready: {ready:6.2f} s   (target < 10 s)")
        print(f"stop them, namespaces and veths removed:     {stopped:6.2f} s")
        ns, lo = bench_cpu_per_request(workdir, args.duration, args.reps)
        print(f"rsp with its default workers (one per core: {os.cpu_count()}); CPU of the master and the workers")
        print(f"proxy CPU per request, app in a namespace:    {ns:7.1f} us")
        print(f"proxy CPU per request, same app on loopback:  {lo:7.1f} us")
        print(f"ratio namespace / loopback:                   {ns / lo:7.3f}x  (target <= 1.05x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
