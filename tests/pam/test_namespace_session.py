"""open/close_namespace_session called directly (no PAM), in a forked child so the test process keeps its
namespaces: the caller's children land in the new PID namespace, a second open is refused without
changing anything, a failure leaves the caller where it was, close brings it home."""

from __future__ import annotations

import os
import signal

import pytest

from rsp.errors import PamError
from rsp.pam.namespace_session import close_namespace_session, open_namespace_session
from support.forked import run_forked

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="PID and mount namespaces need root (CAP_SYS_ADMIN)")


def namespaces() -> tuple[str, str]:
    return os.readlink("/proc/self/ns/mnt"), os.readlink("/proc/self/ns/pid_for_children")


def child_pid_in_namespace() -> int:
    """Fork a child that reports its PID as it sees it (getpid is namespace-relative)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write_fd, str(os.getpid()).encode())
        os._exit(0)
    os.close(write_fd)
    seen = int(os.read(read_fd, 32))
    os.close(read_fd)
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass  # SIGCHLD ignored: the kernel reaped it
    return seen


def test_open_twice_is_refused_and_close_brings_the_caller_home() -> None:
    def body(out: int) -> int:
        home = namespaces()
        session = open_namespace_session()
        assert child_pid_in_namespace() == 2  # the helper is 1
        try:
            open_namespace_session()
        except PamError as exc:
            assert "already opened a session" in str(exc)
        else:
            raise AssertionError("a second open was accepted")
        assert child_pid_in_namespace() == 3  # still the same namespace
        close_namespace_session(session)
        assert namespaces() == home
        assert child_pid_in_namespace() not in (1, 2, 3, 4)
        return 0

    code, output = run_forked(body)
    assert code == 0, output.decode()


@pytest.mark.parametrize("sigchld", [signal.SIG_DFL, signal.SIG_IGN], ids=["sigchld-default", "sigchld-ignored"])
def test_a_failed_open_leaves_the_caller_where_it_was(sigchld: signal.Handlers) -> None:
    # A login program that ignores SIGCHLD has its children reaped by the kernel: the failed helper may be
    # gone before its pidfd is opened, and the reason must still come through.
    def body(out: int) -> int:
        signal.signal(signal.SIGCHLD, sigchld)
        home = namespaces()
        cwd = os.getcwd()
        try:
            open_namespace_session("no_such_option")
        except PamError as exc:
            os.write(out, str(exc).encode())
        assert namespaces() == home and os.getcwd() == cwd
        try:
            os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return 0  # the failed helper was reaped
        return 1

    code, output = run_forked(body)
    assert code == 0, output.decode()
    assert output.startswith(b"namespace helper: mount a fresh /proc:")


def test_open_and_close_in_a_login_program_that_ignores_sigchld() -> None:
    def body(out: int) -> int:
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)
        home = namespaces()
        session = open_namespace_session()
        assert child_pid_in_namespace() == 2
        close_namespace_session(session)  # the helper was reaped by the kernel: waitid's ECHILD is fine
        assert namespaces() == home
        return 0

    code, output = run_forked(body)
    assert code == 0, output.decode()
