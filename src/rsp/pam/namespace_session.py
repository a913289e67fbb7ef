"""Open and close a session's private PID and mount namespace, from the login program's side.

open_namespace_session, in the process that calls pam_open_session (sshd's session process, su):

1. keeps descriptors of its own PID and mount namespaces (to come back to);
2. `unshare(CLONE_NEWPID)`: the caller stays where it is, its next child is PID 1 of a new namespace;
3. forks that child, the helper (`session_init.run_helper`), which builds the session's mount namespace
   and its /proc, and blocks (poll, bounded by HELPER_READY_TIMEOUT_S) until the helper reports;
4. on "ok", joins the helper's mount namespace with setns(2): from here on the caller's /proc is the
   session's, and every child it forks (the user's shell) is in the new PID namespace and sees only it.

The risky work (unmounting and mounting /proc) happens in the helper, in a mount namespace the caller has
not joined yet: when it fails, the caller's mounts were never touched, and the only change to undo is the
PID namespace of its future children (setns back). The caller is never left half in a new namespace.

close_namespace_session closes the session pipe (the helper's EOF), waits for the helper's exit on its
pidfd (bounded, then SIGKILL), reaps it, and returns the caller to its own namespaces.
"""

from __future__ import annotations

import os
import select
import signal
from typing import Final, NamedTuple

from rsp.errors import PamError
from rsp.linux import syscalls
from rsp.pam import session_init

# Mounting proc takes microseconds; a helper that has not reported in this time is stuck (a hung
# filesystem under /), and a login waiting longer than this is worse than a login refused.
HELPER_READY_TIMEOUT_S: Final = 10.0
# After EOF on its session pipe the helper exits at once, and the kernel then kills what is left in the
# namespace; a helper still there after this long is killed so that close_session never hangs a logout.
HELPER_EXIT_TIMEOUT_S: Final = 5.0


class NamespaceSession(NamedTuple):
    """What close needs: the helper (pid and pidfd), the session pipe's write end, the way home."""

    helper_pid: int
    helper_pidfd: int
    session_fd: int
    host_mnt_fd: int
    host_pid_fd: int


def open_namespace_session(proc_options: str = "") -> NamespaceSession:
    """Put the caller's future children into a new PID namespace and the caller into its mount namespace.

    Raises PamError with the reason; the caller is then in its own namespaces as before.
    """
    if not os.path.exists("/proc/self/ns"):
        # After an open, the caller sees the session's /proc, which does not show the caller itself.
        raise PamError("/proc does not show this process: it already opened a session (or /proc is not mounted)")
    host_mnt_fd = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    host_pid_fd = -1
    try:
        host_pid_fd = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        if os.readlink("/proc/self/ns/pid_for_children") != os.readlink("/proc/self/ns/pid"):
            raise PamError("this process already unshared its PID namespace (a session opened twice?)")
        cwd = _cwd_or_root()
        try:
            syscalls.unshare(syscalls.CLONE_NEWPID)
        except OSError as exc:
            raise PamError(f"unshare(CLONE_NEWPID): {exc.strerror}") from exc
        try:
            session = _start_helper(proc_options, host_mnt_fd, host_pid_fd)
        except BaseException:
            syscalls.setns(host_pid_fd, syscalls.CLONE_NEWPID)
            raise
    except BaseException:
        os.close(host_mnt_fd)
        if host_pid_fd >= 0:
            os.close(host_pid_fd)
        raise
    _change_directory(cwd)  # setns(CLONE_NEWNS) moved the caller to the namespace's root
    return session


def close_namespace_session(session: NamespaceSession) -> None:
    """End the session: the helper exits (and with it the namespace), the caller goes back home.

    Every step is tried even when one fails (the caller must get home whatever happened to the helper);
    the first failure is raised afterwards.
    """
    failures: list[BaseException] = []
    try:
        _stop_helper(session.helper_pidfd, session.session_fd)
    except OSError as exc:
        failures.append(exc)
    cwd = _cwd_or_root()
    try:
        syscalls.setns(session.host_mnt_fd, syscalls.CLONE_NEWNS)
        _change_directory(cwd)
    except OSError as exc:
        failures.append(PamError(f"setns back to the login's mount namespace: {exc.strerror}"))
    try:
        syscalls.setns(session.host_pid_fd, syscalls.CLONE_NEWPID)
    except OSError as exc:
        failures.append(PamError(f"setns back to the login's PID namespace: {exc.strerror}"))
    for fd in (session.helper_pidfd, session.host_mnt_fd, session.host_pid_fd):
        os.close(fd)
    if failures:
        raise failures[0]


def _start_helper(proc_options: str, host_mnt_fd: int, host_pid_fd: int) -> NamespaceSession:
    ready_read, ready_write = os.pipe()  # both close-on-exec: the user's shell never holds them
    session_read, session_write = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        for fd in (ready_read, ready_write, session_read, session_write):
            os.close(fd)
        raise
    if pid == 0:
        os.close(ready_read)
        os.close(session_write)
        session_init.run_helper(ready_write, session_read, proc_options)
    os.close(ready_write)
    os.close(session_read)
    try:
        pidfd = os.pidfd_open(pid)
    except OSError as exc:
        # Only if the helper is already gone and reaped: a login program that ignores SIGCHLD (the kernel
        # reaps its children itself). Its report, if any, is still in the pipe.
        report = os.read(ready_read, session_init.MAX_REPORT_BYTES)
        os.close(ready_read)
        os.close(session_write)
        _reap_pid(pid)
        reason = report.decode(errors="replace") if report != session_init.READY else exc.strerror
        raise PamError(f"namespace helper: {reason or 'exited before /proc was mounted'}") from exc
    try:
        report = _read_report(ready_read)
        if report != session_init.READY:
            reason = report.decode(errors="replace") or "exited before /proc was mounted"
            raise PamError(f"namespace helper: {reason}")
        # The helper is our unreaped child, so its PID cannot be reused before we open this.
        mnt_fd = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        try:
            syscalls.setns(mnt_fd, syscalls.CLONE_NEWNS)
        except OSError as exc:
            raise PamError(f"setns into the session's mount namespace: {exc.strerror}") from exc
        finally:
            os.close(mnt_fd)
    except BaseException:
        _stop_helper(pidfd, session_write)
        os.close(pidfd)
        raise
    finally:
        os.close(ready_read)
    return NamespaceSession(pid, pidfd, session_write, host_mnt_fd, host_pid_fd)


def _read_report(ready_fd: int) -> bytes:
    """The helper's one report (written in one write below PIPE_BUF), or b"" if it died first."""
    poller = select.poll()
    poller.register(ready_fd, select.POLLIN)
    if not poller.poll(int(HELPER_READY_TIMEOUT_S * 1000)):
        raise PamError(f"namespace helper did not report within {HELPER_READY_TIMEOUT_S:g} s")
    return os.read(ready_fd, session_init.MAX_REPORT_BYTES)


def _stop_helper(pidfd: int, session_fd: int) -> None:
    """Close the session pipe (the helper's signal to exit), wait on the pidfd (bounded), reap."""
    os.close(session_fd)
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)  # a pidfd is readable once the process has exited
    if not poller.poll(int(HELPER_EXIT_TIMEOUT_S * 1000)):
        try:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        os.waitid(os.P_PIDFD, pidfd, os.WEXITED)
    except ChildProcessError:
        pass  # the login program reaped it already (a SIGCHLD handler with waitpid(-1), or SIGCHLD ignored)


def _reap_pid(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _cwd_or_root() -> str:
    try:
        return os.getcwd()
    except OSError:
        return "/"


def _change_directory(path: str) -> None:
    """Back to the directory the caller was in, resolved in the namespace it is now in (else stay at /)."""
    try:
        os.chdir(path)
    except OSError:
        pass
