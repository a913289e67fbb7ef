"""The session's PID 1: the helper pam_unshare forks into the new PID namespace.

It is forked from the login program (sshd, su) after `unshare(CLONE_NEWPID)`, so it is PID 1 of the new
namespace, still root. In order, it:

1. lets go of the login program: closes every descriptor but its two pipes (it must not hold the client's
   connection or terminal open), becomes its own session (signals to the login's process group are not
   for it), default signal dispositions (the host's C handlers would run the host's code);
2. creates the session's mount namespace and makes every mount in it private (MS_REC|MS_PRIVATE) *before*
   touching /proc, so neither the unmount nor the new mount propagates to the host (shared propagation is
   systemd's default);
3. detaches the host's /proc and mounts a proc for its own PID namespace (nosuid, nodev, noexec): a proc
   mount shows the PID namespace of the process that mounts it, which is why PID 1 mounts it;
4. reports "ok" (or the reason it failed) on the ready pipe: the caller blocks on that pipe and joins the
   mount namespace only after the report, so the session never sees a half-built /proc;
5. is init until the session ends: reaps every orphan of the session (they are re-parented to it) and
   sleeps in poll(2) on the session pipe and on SIGCHLD's wake-up pipe. The caller holds the session pipe's
   write end: close_session closes it, and so does the kernel if the caller dies, so EOF is "the session is
   over" in both cases. No polling loop, no timer.

When it exits the kernel kills whatever is left in the namespace: a session's processes do not outlive it.
"""

from __future__ import annotations

import errno
import os
import select
import signal
from types import FrameType
from typing import Final, NoReturn

from rsp.linux import pid1, syscalls

READY: Final = b"ok"
# The name `ps` shows for the helper inside and outside the namespace (/proc/PID/comm, at most 15 bytes).
HELPER_NAME: Final = b"pam_unshare"
# The fresh proc mount's flags: a session user must not run or open devices from /proc (proc(5) mounts
# them this way everywhere).
PROC_MOUNT_FLAGS: Final = syscalls.MS_NOSUID | syscalls.MS_NODEV | syscalls.MS_NOEXEC
# Exit codes of the helper (only its parent, the login program, sees them).
EXIT_SESSION_OVER: Final = 0
EXIT_SETUP_FAILED: Final = 1
# A report is one write below PIPE_BUF (4096 on Linux), so the caller reads it whole in one read.
MAX_REPORT_BYTES: Final = 1024
# Signals whose disposition cannot be changed, or that glibc keeps for its threads (32 and 33).
_UNCHANGEABLE_SIGNALS: Final = frozenset({signal.SIGKILL, signal.SIGSTOP})


def run_helper(ready_fd: int, session_fd: int, proc_options: str) -> NoReturn:
    """The helper's whole life, in the forked child. Never returns: the child must not run the caller's code."""
    code = EXIT_SETUP_FAILED
    try:
        step = "leave the login program's descriptors and signals"
        detach_from_caller(keep=(ready_fd, session_fd))
        step = "create the session's mount namespace"
        syscalls.unshare(syscalls.CLONE_NEWNS)
        step = "make the mounts private"
        pid1.make_mounts_private()
        step = "mount a fresh /proc"
        mount_session_proc(proc_options)
        name_process()
        os.write(ready_fd, READY)
        os.close(ready_fd)
        code = EXIT_SESSION_OVER
        step = "wait for the end of the session"
        wait_for_session_end(session_fd)
    except BaseException as exc:  # a forked child reports and exits, whatever happened
        if code == EXIT_SETUP_FAILED:
            report_failure(ready_fd, f"{step}: {exc}")
    finally:
        os._exit(code)


def detach_from_caller(keep: tuple[int, ...]) -> None:
    """Close every descriptor but `keep` (0-2 become /dev/null), new session, default signal handling."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        if fd != null:
            os.dup2(null, fd)
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)  # close_range(2): one system call whatever the descriptor limit
        low = fd + 1
    os.closerange(low, os.sysconf("SC_OPEN_MAX"))
    os.setsid()
    signal.set_wakeup_fd(-1)
    for signo in signal.valid_signals():
        if signo in _UNCHANGEABLE_SIGNALS:
            continue
        try:
            signal.signal(signo, signal.SIG_DFL)
        except (OSError, ValueError):
            pass  # glibc's reserved real-time signals
    signal.pthread_sigmask(signal.SIG_SETMASK, ())


def mount_session_proc(proc_options: str) -> None:
    """Replace the host's /proc, in this (private) mount namespace only, by one for this PID namespace.

    The host's proc is detached rather than covered, so that a root session cannot unmount the cover and
    find it underneath. (rsp.linux.pid1.mount_fresh_proc has the same flags but takes no mount options.)
    """
    try:
        syscalls.umount2("/proc", syscalls.MNT_DETACH)
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # EINVAL: nothing mounted on /proc, which is fine
            raise
    syscalls.mount("proc", "/proc", "proc", PROC_MOUNT_FLAGS, proc_options or None)


def name_process() -> None:
    """Call the helper pam_unshare in ps (it would otherwise carry the login program's name)."""
    try:
        with open("/proc/self/comm", "wb") as comm:
            comm.write(HELPER_NAME)
    except OSError:
        pass  # cosmetic only


def report_failure(ready_fd: int, reason: str) -> None:
    try:
        os.write(ready_fd, reason.encode(errors="replace")[:MAX_REPORT_BYTES])
    except OSError:
        pass  # the caller is gone or closed its end: it sees EOF, which is a failure too


def _wake(signo: int, frame: FrameType | None) -> None:
    """SIGCHLD's Python handler does nothing: the C handler's byte on the wake-up pipe ends poll(2)."""


def wait_for_session_end(session_fd: int) -> None:
    """Be init until the session pipe reaches EOF: reap children as they exit, sleep otherwise."""
    wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.signal(signal.SIGCHLD, _wake)
    signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
    poller = select.poll()
    poller.register(session_fd, select.POLLIN)
    poller.register(wake_read, select.POLLIN)
    while True:
        # Reap before sleeping: a SIGCHLD that arrives after this call writes the wake-up pipe, so poll
        # returns at once and no exit is missed.
        reap_children()
        for fd, _events in poller.poll():
            if fd == wake_read:
                _drain(wake_read)
            elif not os.read(session_fd, MAX_REPORT_BYTES):
                return  # EOF (POLLHUP reads as EOF too): the caller closed the session or died


def reap_children() -> int:
    """waitpid every exited child without blocking (SIGCHLDs coalesce); return how many were reaped."""
    reaped = 0
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return reaped
        if pid == 0:
            return reaped
        reaped += 1


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass
