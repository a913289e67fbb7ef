"""The helper's init loop without namespaces: it reaps children as they exit and returns at the session
pipe's EOF; and pam_unshare.py loads in the system Python as pam_python loads it (standard library only)."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

from rsp.pam import pam_unshare
from rsp.pam.session_init import reap_children, wait_for_session_end

# Bounded waits on real processes (exits and reaping are asynchronous).
DEADLINE_S = 10.0
MODULE_FILE = Path(pam_unshare.__file__).resolve()
# The interpreter Debian's libpam-python embeds (libpython3.11 of the system Python; python3-venv in
# scripts/bootstrap installs it).
SYSTEM_PYTHON = "/usr/bin/python3"


def children_of(pid: int) -> list[int]:
    return [int(word) for word in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def wait_exit(pid: int) -> int:
    pidfd = os.pidfd_open(pid)
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        assert poller.poll(int(DEADLINE_S * 1000)), "the init loop did not return at EOF"
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    finally:
        os.close(pidfd)


def test_init_loop_reaps_exited_children_and_ends_at_eof() -> None:
    session_read, session_write = os.pipe()
    started_read, started_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(session_write)
            os.close(started_read)
            for _ in range(3):
                if os.fork() == 0:
                    os._exit(0)
            os.close(started_write)
            wait_for_session_end(session_read)
            code = 0
        finally:
            os._exit(code)
    os.close(session_read)
    os.close(started_write)
    try:
        assert os.read(started_read, 1) == b""  # the three children exist (maybe exited) from here on
        deadline = time.monotonic() + DEADLINE_S
        while children_of(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert children_of(pid) == []  # reaped: not even zombies are left
        assert Path(f"/proc/{pid}/stat").read_text().split()[2] == "S"  # asleep in poll, not spinning
    finally:
        os.close(session_write)
        os.close(started_read)
    assert wait_exit(pid) == 0


def test_reap_children_without_children() -> None:
    if os.fork() == 0:
        os._exit(reap_children())
    _, status = os.wait()
    assert os.waitstatus_to_exitcode(status) == 0


def test_the_module_loads_in_the_system_python_with_the_standard_library_only() -> None:
    # -I: no environment, no user site, no current directory on the path; and not rsp's venv. What the
    # file imports (beyond what site imported) must be standard library or rsp.
    probe = (
        "import runpy, sys\n"
        "before = set(sys.modules)\n"
        f"module = runpy.run_path({str(MODULE_FILE)!r})\n"
        "assert all(callable(module[f'pam_sm_{name}']) for name in ('open_session', 'close_session',"
        " 'authenticate', 'setcred', 'acct_mgmt', 'chauthtok'))\n"
        "foreign = sorted({name.split('.')[0] for name in set(sys.modules) - before}"
        " - set(sys.stdlib_module_names)"
        " - {'rsp', '__main__'})\n"
        "print(foreign)\n"
    )
    result = subprocess.run([SYSTEM_PYTHON, "-I", "-c", probe], capture_output=True, text=True, cwd="/", timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


class FakeHandle:
    """pam_python's handle, as far as the module reads it."""

    service = "test"

    def __init__(self, user: str | None) -> None:
        self.user = user

    def get_user(self, prompt: str | None) -> str | None:
        return self.user


def test_exempt_users_and_bad_arguments_without_touching_namespaces(tmp_path: Path) -> None:
    argv = [str(MODULE_FILE), f"syslog_socket={tmp_path / 'absent.sock'}"]
    mnt = os.readlink("/proc/self/ns/mnt")
    assert pam_unshare.pam_sm_open_session(FakeHandle("root"), 0, argv) == pam_unshare.PAM_SUCCESS
    handle = FakeHandle("alice")
    assert pam_unshare.pam_sm_open_session(handle, 0, [*argv, "exempt_users=alice"]) == pam_unshare.PAM_SUCCESS
    assert pam_unshare.pam_sm_close_session(handle, 0, argv) == pam_unshare.PAM_SUCCESS
    assert pam_unshare.pam_sm_open_session(FakeHandle("bob"), 0, [*argv, "bogus=1"]) == pam_unshare.PAM_SESSION_ERR
    assert pam_unshare.pam_sm_open_session(FakeHandle(None), 0, argv) == pam_unshare.PAM_SESSION_ERR
    assert os.readlink("/proc/self/ns/mnt") == mnt
    assert pam_unshare.pam_sm_authenticate(handle, 0, argv) == pam_unshare.PAM_IGNORE
    assert sys.modules["rsp.pam.pam_unshare"] is pam_unshare
