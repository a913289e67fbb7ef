"""Building blocks of the benchmark harness: processes, ports, load generators and their parsers.

Everything here talks to 127.0.0.1 only, and every wait is bounded by a deadline.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

LOOPBACK = "127.0.0.1"
MIB = 1024 * 1024

# How long a server gets to accept its first connection. nginx and haproxy take milliseconds; rsp starts a
# Python interpreter, imports uvloop and lupa, and runs the Lua config: a few hundred ms on a busy 2-core box.
READY_TIMEOUT = 20.0
# SIGTERM, then this long, then SIGKILL. rsp drains live connections on SIGTERM; after a run none are left.
STOP_GRACE = 5.0
# A load generator may overrun its own duration (connect timeouts, slow teardown); past this it is killed.
CLIENT_SLACK = 60.0

APT_PACKAGES = {"nginx": "nginx-light", "haproxy": "haproxy", "wrk": "wrk", "ab": "apache2-utils"}


class BenchError(Exception):
    """Something the harness cannot work around (a tool missing, a server that did not start)."""


# --------------------------------------------------------------------------------------------- tools


def ensure_tools(names: Sequence[str]) -> dict[str, str]:
    """Path of each tool; installs missing ones with apt-get when root, else raises with the command to run."""
    missing = [n for n in names if _which(n) is None]
    if missing:
        pkgs = sorted({APT_PACKAGES[n] for n in missing})
        if os.geteuid() == 0 and shutil.which("apt-get"):
            print(f"bench: installing {' '.join(pkgs)} with apt-get", file=sys.stderr)
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", *pkgs], env=env,
                           check=False, timeout=900)
        still = [n for n in missing if _which(n) is None]
        if still:
            raise BenchError(f"missing tools {still}; install them with: apt-get install {' '.join(pkgs)}")
    return {n: str(_which(n)) for n in names}


def _which(name: str) -> str | None:
    # Debian puts nginx and haproxy in /usr/sbin, which a non-root PATH may lack.
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/local/sbin")


def tool_version(argv: Sequence[str]) -> str:
    try:
        out = subprocess.run(list(argv), capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc})"
    text = (out.stdout + out.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


# --------------------------------------------------------------------------------------------- ports


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports (held open together while chosen so they differ)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind((LOOPBACK, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_accepts(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------------------------- processes


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    port: int

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Servers:
    """Starts servers in their own sessions and stops every one of them, by pid, in `stop_all`."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.started: list[Server] = []

    def start(self, name: str, argv: Sequence[str], port: int, cwd: Path | None = None) -> Server:
        log = self.logdir / f"{name}.log"
        with open(log, "wb") as f:
            proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                                    cwd=cwd, start_new_session=True)
        server = Server(name=name, proc=proc, log=log, port=port)
        self.started.append(server)
        deadline = time.monotonic() + READY_TIMEOUT
        while not port_accepts(port):
            if proc.poll() is not None:
                raise BenchError(f"{name} exited with {proc.returncode} before accepting on port {port}:\n"
                                 f"  argv: {' '.join(argv)}\n{server.log_tail()}")
            if time.monotonic() > deadline:
                raise BenchError(f"{name} did not accept on port {port} within {READY_TIMEOUT:.0f} s:\n"
                                 f"{server.log_tail()}")
            time.sleep(0.05)
        return server

    def stop_all(self) -> None:
        for server in reversed(self.started):
            stop_process(server.proc)
        self.started.clear()


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process (and its process group: workers it forked), then SIGKILL after STOP_GRACE."""
    if proc.poll() is None:
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            pass
    # Workers left behind in the group (the leader gone or stuck) get SIGKILL too.
    _signal_group(proc.pid, signal.SIGKILL)
    try:
        proc.wait(timeout=STOP_GRACE)
    except subprocess.TimeoutExpired:
        print(f"bench: pid {proc.pid} did not exit after SIGKILL", file=sys.stderr)


def _signal_group(pid: int, sig: int) -> None:
    # The group id is the pid of the process we started (start_new_session=True), never a broader group.
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def run_client(argv: Sequence[str], timeout: float) -> str:
    """Run a load generator to completion (bounded by `timeout`); returns its stdout."""
    proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:
        stop_process(proc)
        raise
    text = out.decode(errors="replace")
    if proc.returncode != 0 and "BENCH " not in text and "Complete requests" not in text:
        raise BenchError(f"{' '.join(argv)} exited {proc.returncode}: {err.decode(errors='replace')[-500:]}")
    return text


# --------------------------------------------------------------------------------------------- load results


@dataclass(frozen=True, slots=True)
class LoadResult:
    requests: int
    bytes: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def mib_per_s(self) -> float:
        return self.bytes / MIB / self.seconds if self.seconds else 0.0


# wrk's `done` hook sees exact counters (its text summary rounds bytes to 3 digits and latency to 2).
WRK_SCRIPT = """\
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d bytes=%d duration_us=%d connect=%d read=%d write=%d status=%d timeout=%d "
    .. "p50_us=%d p99_us=%d\\n",
    summary.requests, summary.bytes, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    math.floor(latency:percentile(50)), math.floor(latency:percentile(99))))
end
"""

# The same report, and every request a different target (`?v=N`), so that no per-connection cache of a
# repeated head (rsp's parsers keep a one-head memo) can answer: every head is parsed in full.
WRK_VARIED_SCRIPT = WRK_SCRIPT + """\
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, wrk.path .. "?v=" .. n)
end
"""

_BENCH_LINE = re.compile(r"^BENCH (.*)$", re.M)


def parse_wrk(text: str) -> LoadResult:
    m = _BENCH_LINE.search(text)
    if not m:
        raise BenchError(f"no BENCH line in wrk output:\n{text[-800:]}")
    kv = {k: int(v) for k, v in (item.split("=") for item in m.group(1).split())}
    errors = kv["connect"] + kv["read"] + kv["write"] + kv["status"] + kv["timeout"]
    return LoadResult(requests=kv["requests"], bytes=kv["bytes"], seconds=kv["duration_us"] / 1e6,
                      errors=errors, p50_ms=kv["p50_us"] / 1e3, p99_ms=kv["p99_us"] / 1e3)


def wrk_argv(wrk: str, script: Path, url: str, conns: int, duration: int) -> list[str]:
    # --timeout: wrk's 2 s default counts a slow 1 MiB response under load as an error.
    return [wrk, "-t1", f"-c{conns}", f"-d{duration}s", "--timeout", "10s", "-s", str(script), url]


def _ab_field(text: str, label: str) -> str:
    m = re.search(rf"^{re.escape(label)}:\s+(\S+)", text, re.M)
    if not m:
        raise BenchError(f"no '{label}' in ab output:\n{text[-800:]}")
    return m.group(1)


def parse_ab(text: str) -> LoadResult:
    complete = int(_ab_field(text, "Complete requests"))
    failed = int(_ab_field(text, "Failed requests"))
    non2xx = re.search(r"^Non-2xx responses:\s+(\d+)", text, re.M)
    pct = dict(re.findall(r"^\s*(\d+)%\s+(\d+)", text, re.M))
    return LoadResult(
        requests=complete - failed,
        bytes=int(_ab_field(text, "Total transferred")),
        seconds=float(_ab_field(text, "Time taken for tests")),
        errors=failed + (int(non2xx.group(1)) if non2xx else 0),
        # ab prints whole milliseconds; good enough for a new-connection test whose latency is queueing.
        p50_ms=float(pct.get("50", "nan")),
        p99_ms=float(pct.get("99", "nan")),
    )


def ab_argv(ab: str, url: str, requests: int, conns: int) -> list[str]:
    # -r: keep going on socket errors (count them) instead of aborting the whole run; -s: per-request timeout.
    return [ab, "-q", "-r", "-s", "10", "-n", str(requests), "-c", str(conns), url]
