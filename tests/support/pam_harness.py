"""Real PAM sessions for tests/pam: a throw-away service in /etc/pam.d, the C login driver, syslog capture.

- `build_driver(directory)` compiles support/pam_driver.c (gcc, libpam0g-dev) and returns the binary.
- `pam_service(lines)` writes /etc/pam.d/rsp-test-XXXXXXXX and removes it on exit, whatever happens.
- `module_line(*arguments)` is the session line for this checkout's pam_unshare.py.
- `SessionRun` starts the driver (`SERVICE USER COMMAND...`), lets a test talk to the command in the
  session, and parses the driver's report lines.
- `SyslogCapture` is a datagram socket standing in for /dev/log (the module's `syslog_socket=`).
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import rsp.pam

PAMD_DIR = Path("/etc/pam.d")
MODULE_PATH = Path(rsp.pam.__file__).resolve().with_name("pam_unshare.py")
DRIVER_SOURCE = Path(__file__).resolve().with_name("pam_driver.c")
# A session that takes longer than this is a bug (a helper that never reports, a close that hangs).
SESSION_TIMEOUT_S = 30.0
# Rules that let the driver's session stack run without authentication (the tests open sessions only).
PERMIT_RULES = ("auth sufficient pam_permit.so", "account sufficient pam_permit.so")


def build_driver(directory: Path) -> Path:
    binary = directory / "pam_driver"
    subprocess.run(["gcc", "-O1", "-Wall", "-Werror", "-o", str(binary), str(DRIVER_SOURCE), "-lpam"],
                   check=True, capture_output=True, timeout=120)
    return binary


def module_line(*arguments: str) -> str:
    return " ".join(("session required pam_python.so", str(MODULE_PATH), *arguments))


@contextmanager
def pam_service(lines: list[str]) -> Iterator[str]:
    """A PAM service with these rules, removed on exit; yields its name."""
    name = f"rsp-test-{secrets.token_hex(4)}"
    path = PAMD_DIR / name
    try:
        path.write_text("\n".join(lines) + "\n")
        yield name
    finally:
        path.unlink(missing_ok=True)


class SyslogCapture:
    """A datagram socket at `path`: the module's log lines arrive here."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0)

    def lines(self) -> list[str]:
        received = []
        while True:
            try:
                received.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return received

    def close(self) -> None:
        self.sock.close()
        self.path.unlink(missing_ok=True)


class SessionRun:
    """One driver run: `SERVICE USER COMMAND...`, stdin and stdout piped to the test."""

    def __init__(self, driver: Path, service: str, user: str, command: list[str]) -> None:
        # cwd "/": the driver's user (nobody) must be able to stay where it starts
        self.proc = subprocess.Popen([str(driver), service, user, *command], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd="/")
        self.lines: list[str] = []
        self.stderr = ""

    def read_until(self, marker: str) -> list[str]:
        """Lines of stdout up to and including `marker` (the command waits for the test after it)."""
        assert self.proc.stdout is not None
        while True:
            raw = self.proc.stdout.readline()
            if not raw:
                raise AssertionError(f"no {marker!r} before EOF; output so far: {self.lines}")
            line = raw.decode().rstrip("\n")
            self.lines.append(line)
            if line == marker:
                return self.lines

    def finish(self, stdin: bytes = b"") -> int:
        try:
            out, err = self.proc.communicate(stdin, timeout=SESSION_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise
        self.lines.extend(out.decode().splitlines())
        self.stderr = err.decode()
        return self.proc.returncode

    def kill(self) -> None:
        """Stop the driver if it still runs and close the pipes (a test's finally)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=SESSION_TIMEOUT_S)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def report(self) -> dict[str, str]:
        """The driver's `driver: key=value` lines."""
        found = {}
        for line in self.lines:
            if line.startswith("driver: "):
                key, _, value = line.removeprefix("driver: ").partition("=")
                found[key] = value
        return found

    def command_output(self) -> list[str]:
        return [line for line in self.lines if not line.startswith("driver: ")]


def proc_mounts(mountinfo: str) -> list[str]:
    """The mountinfo lines of proc filesystems (what a leaked mount or unmount would change)."""
    return [line for line in mountinfo.splitlines() if " - proc " in line]


def host_children(pid: int) -> list[int]:
    """Children of `pid` as the host's /proc shows them."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(word) for word in children.read_text().split()] if children.exists() else []


def status_field(pid: int, field: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return line.split(":", 1)[1].strip()
    raise KeyError(field)


def comm(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def is_running(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")
