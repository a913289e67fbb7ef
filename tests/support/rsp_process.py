"""Run rsp as a black box: `sys.executable -m rsp [ARGS] CONFIG.lua` in its own session.

`RspProcess` captures stdout and stderr line by line on reader threads, knows the ports from the
`[timestamp] Started.  Listening on port N.` lines, measures the resident memory of the process tree, and always
stops: SIGTERM to the main process, then SIGKILL to its whole process group after a bound (rsp may
fork workers; they share the group because the process starts a new session).

`run_cli` runs rsp to completion (config errors, --check, --version) with a time bound and a memory
guard, so that a config that runs away cannot hurt the machine even if rsp fails to stop it.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import IO

# The timestamp every log line and startup line starts with (rsp.logs.TIMESTAMP_FORMAT in brackets).
TIMESTAMP_RE = r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} [+-]\d{4}\]"
STARTED_RE = re.compile(rf"^{TIMESTAMP_RE} Started\.  Listening on port (\d+)\.$")
LOG_LINE_RE = re.compile(rf"^{TIMESTAMP_RE} ")
# Python start-up plus uvloop and lupa imports take well under a second; a loaded 2-core machine can be
# many times slower.
START_TIMEOUT = 15.0
# After SIGTERM with no live connections rsp should exit at once; this bounds a wedged process.
STOP_TIMEOUT = 5.0
# A run_cli() child whose process tree grows beyond this is killed: no config should get anywhere near it.
CLI_RSS_GUARD_KIB = 1536 * 1024
CLI_POLL = 0.05
# Every config a test starts states its `workers` (rsp's default is one per core: a test must not depend on
# the machine). The suite's choice where a helper writes the config: two, so the multi-worker paths run on
# any machine; a test whose assertions need one balancer's view says `workers = 1`.
SUITE_WORKERS = 2
WORKERS_LINE_RE = re.compile(r"^\s*workers\s*=", re.MULTILINE)


# A wrapper for run_cli: the command runs in a network namespace of its own with only loopback, so a name
# lookup that goes past /etc/hosts fails at once and sends no packet off the machine (needs root).
OFFLINE = ("unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "offline")


class RspStartError(AssertionError):
    """rsp exited or stayed silent instead of printing its Started lines."""


# The kernel may hand the same port to two binds in a row once the first socket is closed (a test asking for a
# listener's port and a stats port got one port twice): free_port() never returns one of the last RECENT_PORTS
# it returned, trying at most FREE_PORT_TRIES binds.
RECENT_PORTS = 256
FREE_PORT_TRIES = 50
_recent_ports: deque[int] = deque(maxlen=RECENT_PORTS)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (bind port 0, read it, close), and none this process was given lately."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(FREE_PORT_TRIES):
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port: int = sock.getsockname()[1]
        if port not in _recent_ports:
            _recent_ports.append(port)
            return port
    raise RuntimeError(f"no free port outside the last {RECENT_PORTS} handed out in {FREE_PORT_TRIES} tries")


def with_workers(lines: list[str], extra: str, workers: int) -> list[str]:
    """`lines`, `extra`, then `workers = N` unless `extra` states its own (last: the line numbers of `extra`,
    which error messages name, stay as they were)."""
    out = list(lines)
    if extra:
        out.append(extra)
    if not WORKERS_LINE_RE.search(extra):
        out.append(f"workers = {workers}")
    return out


def legacy_config(listen_port: int | str, backend_port: int | str, *, extra: str = "",
                  listen_address: str | None = "127.0.0.1", workers: int = SUITE_WORKERS) -> str:
    """The original three-globals config (plus listenAddress, loopback by default), `workers`, then `extra`."""
    lines = []
    if listen_address is not None:
        lines.append(f'listenAddress = "{listen_address}"')
    lines += [f"listenPort = {listen_port}", 'backendAddress = "127.0.0.1"', f"backendPort = {backend_port}"]
    return "\n".join(with_workers(lines, extra, workers)) + "\n"


def rsp_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "rsp", *args]


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # rsp must flush its Started lines itself; don't let the environment do it for it.
    env.pop("PYTHONUNBUFFERED", None)
    return env


def _descendants(pid: int) -> list[int]:
    """pid and every descendant, via /proc/PID/task/TID/children (bounded walk)."""
    found: list[int] = []
    todo = [pid]
    while todo and len(found) < 1000:
        current = todo.pop()
        found.append(current)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{current}/task/{tid}/children") as fh:
                    todo.extend(int(child) for child in fh.read().split())
            except OSError:
                continue
    return found


def vm_rss_kib(pid: int) -> int:
    """VmRSS of one process in KiB (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


def tree_rss_kib(pid: int) -> int:
    """Sum of VmRSS over the process and its descendants."""
    return sum(vm_rss_kib(p) for p in _descendants(pid))


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class RspProcess:
    def __init__(self, config_path: Path | str, *args: str) -> None:
        self.config_path = str(config_path)
        self.args = args
        self.cwd: str | None = None  # the directory rsp is started from (None: the test's)
        self.proc: subprocess.Popen[str] | None = None
        self.stdout_lines: list[str] = []
        self.stderr_lines: list[str] = []
        self.ports: list[int] = []
        self._cond = threading.Condition()
        self._readers: list[threading.Thread] = []
        self._eof = 0

    # -- start / stop ----------------------------------------------------------------------------------
    def start(self, listeners: int = 1, timeout: float = START_TIMEOUT) -> RspProcess:
        if not WORKERS_LINE_RE.search(Path(self.config_path).read_text()):
            raise RspStartError(f"{self.config_path} states no `workers`: a test says how many it runs (rsp's "
                                "default is one per core, which differs between machines)")
        self.proc = subprocess.Popen(
            rsp_command(*self.args, self.config_path),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            env=_child_env(),
            cwd=self.cwd,
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        for stream, sink in ((self.proc.stdout, self.stdout_lines), (self.proc.stderr, self.stderr_lines)):
            thread = threading.Thread(target=self._read, args=(stream, sink), daemon=True)
            thread.start()
            self._readers.append(thread)
        if listeners:
            self.wait_started(listeners, timeout)
        return self

    def _read(self, stream: IO[str], sink: list[str]) -> None:
        try:
            for raw in stream:
                line = raw.rstrip("\n")
                with self._cond:
                    sink.append(line)
                    if sink is self.stdout_lines and (match := STARTED_RE.match(line)):
                        self.ports.append(int(match.group(1)))
                    self._cond.notify_all()
        except (OSError, ValueError):
            pass
        finally:
            with self._cond:
                self._eof += 1
                self._cond.notify_all()

    def wait_started(self, listeners: int, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.ports) < listeners:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._eof >= 2:
                    break
                self._cond.wait(min(remaining, 0.1))
            ok = len(self.ports) >= listeners
        if not ok:
            self.stop()
            raise RspStartError(
                f"rsp did not print {listeners} Started line(s) within {timeout} s; "
                f"exit={self.proc.returncode if self.proc else None}\n"
                f"stdout: {self.stdout_lines!r}\nstderr: {self.stderr_lines!r}"
            )

    def wait_for_stderr(self, pattern: str, timeout: float, start: int = 0) -> str | None:
        """The first stderr line (from index `start`) that re.search-es `pattern`, waiting up to `timeout`."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.stderr_lines[start:]:
                    if regex.search(line):
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._eof >= 2:
                    return None
                self._cond.wait(min(remaining, 0.1))

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM, wait `timeout`, then SIGKILL the whole group. Returns the exit code."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            try:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
            except ProcessLookupError:
                pass
        # Workers (if any) are in the group; the group id is the leader's pid because of start_new_session.
        _kill_group(proc.pid)
        if proc.poll() is None:
            proc.wait(STOP_TIMEOUT)
        for thread in self._readers:
            thread.join(STOP_TIMEOUT)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        return proc.returncode

    # -- observation -----------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self.ports[0]

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def rss_kib(self) -> int:
        return tree_rss_kib(self.pid)

    @property
    def stderr_text(self) -> str:
        with self._cond:
            return "\n".join(self.stderr_lines)


@dataclass(frozen=True)
class CliResult:
    returncode: int | None
    stdout: str
    stderr: str
    elapsed: float
    killed: str  # "" if the process exited by itself, else why it was killed
    peak_rss_kib: int

    @property
    def stderr_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def run_cli(*args: str, timeout: float = 20.0, rss_guard_kib: int = CLI_RSS_GUARD_KIB,
            wrapper: tuple[str, ...] = ()) -> CliResult:
    """Run `python -m rsp ARGS` to completion; kill it (and report why) past `timeout` or the RSS guard.
    `wrapper` is a command that runs it (e.g. in a namespace, see OFFLINE)."""
    start = time.monotonic()
    proc = subprocess.Popen(
        [*wrapper, *rsp_command(*args)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env=_child_env(),
    )
    killed = ""
    peak = 0
    out_parts: list[str] = []
    err_parts: list[str] = []
    try:
        while True:
            try:
                out, err = proc.communicate(timeout=CLI_POLL)
                out_parts.append(out)
                err_parts.append(err)
                break
            except subprocess.TimeoutExpired:
                pass
            peak = max(peak, tree_rss_kib(proc.pid))
            if peak > rss_guard_kib:
                killed = f"resident memory {peak} KiB exceeded the test's guard of {rss_guard_kib} KiB"
            elif time.monotonic() - start > timeout:
                killed = f"still running after {timeout} s"
            if killed:
                _kill_group(proc.pid)
                out, err = proc.communicate(timeout=STOP_TIMEOUT)
                out_parts.append(out)
                err_parts.append(err)
                break
    finally:
        if proc.poll() is None:
            _kill_group(proc.pid)
            proc.wait(STOP_TIMEOUT)
    _kill_group(proc.pid)
    return CliResult(proc.returncode, "".join(out_parts), "".join(err_parts), time.monotonic() - start,
                     killed, peak)
