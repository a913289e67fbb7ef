"""The PID 1 init: signal forwarding and reaping (no namespace needed), then a real PID namespace (root)."""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest

from rsp.linux import pid1, syscalls
from support.forked import run_forked

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="PID and mount namespaces need root (CAP_SYS_ADMIN)")


def test_exit_code_of_a_normal_exit_and_of_a_signal() -> None:
    assert pid1.exit_code(3 << 8) == 3
    assert pid1.exit_code(signal.SIGTERM) == 128 + signal.SIGTERM


def test_init_returns_the_main_child_exit_code() -> None:
    def body(out: int) -> int:
        return pid1.run_init(lambda: os._exit(7))

    assert run_forked(body)[0] == 7


def test_init_reports_a_program_that_cannot_exec() -> None:
    def body(out: int) -> int:
        os.dup2(out, 2)
        return pid1.run_init(lambda: os.execv("/nonexistent/program", ["x"]))

    code, output = run_forked(body)
    assert code == pid1.EXEC_FAILED
    assert b"cannot start the program" in output


def test_sigterm_to_init_is_forwarded_to_the_main_child() -> None:
    # The init runs in a child; its main program is a shell that exits 42 on SIGTERM, and says when it is
    # ready (trap installed) on the pipe. The test then sends SIGTERM to the init, not to the program.
    read_fd, write_fd = os.pipe()
    init = os.fork()
    if init == 0:
        try:
            os.close(read_fd)
            os.dup2(write_fd, 1)
            code = pid1.run_init(lambda: os.execv("/bin/sh", ["sh", "-c", "trap 'exit 42' TERM; echo ready; "
                                                              "while :; do sleep 0.05; done"]))
        finally:
            os._exit(code if "code" in locals() else 99)
    os.close(write_fd)
    try:
        assert os.read(read_fd, 6) == b"ready\n"
        os.kill(init, signal.SIGTERM)
        _, status = os.waitpid(init, 0)
        assert os.waitstatus_to_exitcode(status) == 42
    finally:
        os.close(read_fd)
        try:
            os.kill(init, signal.SIGKILL)
            os.waitpid(init, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def test_init_reaps_orphans_of_the_main_child() -> None:
    # The main child double-forks: an intermediate child starts a grandchild and exits at once (reaped by
    # main), so the grandchild is an orphan. With the init as a subreaper (standing in for PID 1, which gets
    # orphans by itself), the grandchild is re-parented to the init; when it exits its zombie must not stay.
    def body(out: int) -> int:
        syscalls.set_child_subreaper(True)

        def main() -> None:
            read_fd, write_fd = os.pipe()
            intermediate = os.fork()
            if intermediate == 0:
                grandchild = os.fork()
                if grandchild == 0:
                    time.sleep(0.1)
                    os._exit(0)
                os.write(write_fd, f"{grandchild}".encode())
                os._exit(0)
            os.waitpid(intermediate, 0)
            grandchild = int(os.read(read_fd, 32))
            os.write(out, f"{grandchild}\n".encode())
            deadline = time.monotonic() + 5
            while _zombie_state(grandchild) != "gone" and time.monotonic() < deadline:
                time.sleep(0.05)
            os.write(out, _zombie_state(grandchild).encode())
            os._exit(0)

        return pid1.run_init(main)

    code, output = run_forked(body)
    assert code == 0, output
    pid_line, state = output.decode().split("\n", 1)
    assert state == "gone", f"grandchild {pid_line}: {state}"


def _zombie_state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return "zombie" if f.read().rsplit(")", 1)[1].split()[0] == "Z" else "alive"
    except (FileNotFoundError, ProcessLookupError):  # reaped before the open, or between open and read (ESRCH)
        return "gone"


@needs_root
def test_pid_namespace_with_fresh_proc_shows_only_its_processes() -> None:
    host_mounts = _proc_mounts()

    def body(out: int) -> int:
        syscalls.unshare(syscalls.CLONE_NEWPID | syscalls.CLONE_NEWNS)
        init = os.fork()
        if init == 0:
            code = 99
            try:
                pid1.make_mounts_private()
                pid1.mount_fresh_proc()
                os.dup2(out, 1)
                code = pid1.run_init(lambda: os.execv(sys.executable, [sys.executable, "-c", _LIST_PROCS]))
            finally:
                os._exit(code)
        _, status = os.waitpid(init, 0)
        return pid1.exit_code(status)

    code, output = run_forked(body)
    assert code == 0, output
    pids, self_pid = eval(output)  # (sorted pids in /proc, getpid()) printed by the program
    assert pids == [1, 2]
    assert self_pid == 2
    assert _proc_mounts() == host_mounts, "the namespace's /proc mount leaked to the host"


@needs_root
def test_killing_pid1_from_the_host_ends_the_namespace() -> None:
    def body(out: int) -> int:
        syscalls.unshare(syscalls.CLONE_NEWPID)
        init = os.fork()
        if init == 0:
            code = 99
            try:
                os.dup2(out, 1)
                code = pid1.run_init(lambda: os.execv("/bin/sh", ["sh", "-c", "echo $$; exec sleep 30"]))
            finally:
                os._exit(code)
        deadline = time.monotonic() + 5
        children = ""
        while not children and time.monotonic() < deadline:
            time.sleep(0.05)
            with open(f"/proc/{init}/task/{init}/children") as f:
                children = f.read().strip()
        program = int(children)  # the program's PID as the host sees it
        os.kill(init, signal.SIGKILL)
        os.waitpid(init, 0)
        while os.path.exists(f"/proc/{program}") and time.monotonic() < deadline:
            time.sleep(0.05)
        return 1 if os.path.exists(f"/proc/{program}") else 0

    code, output = run_forked(body)
    assert code == 0, output


_LIST_PROCS = "import os; print((sorted(int(p) for p in os.listdir('/proc') if p.isdigit()), os.getpid()))"


def _proc_mounts() -> list[str]:
    with open("/proc/self/mounts") as f:
        return sorted(line for line in f if " proc " in line)


@needs_root
def test_pid1_asking_to_die_with_its_parent_outside_the_namespace_keeps_running() -> None:
    # In a new PID namespace getppid() is 0 (the parent is outside): that is not a dead parent.
    def body(out: int) -> int:
        parent = os.getpid()
        syscalls.unshare(syscalls.CLONE_NEWPID)
        init = os.fork()
        if init == 0:
            try:
                pid1.die_with_parent(parent)
                os.write(out, f"alive as {os.getpid()}".encode())
            finally:
                os._exit(0)
        _, status = os.waitpid(init, 0)
        return pid1.exit_code(status)

    assert run_forked(body) == (0, b"alive as 1")
