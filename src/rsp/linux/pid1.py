"""A minimal PID 1 for a private PID namespace, and the mount set-up it needs.

After `unshare(CLONE_NEWPID)` the caller stays where it was; its *next* child is PID 1 of the new namespace,
and the namespace dies with that child (the kernel SIGKILLs every other member). So the shape is always:

    fork -> unshare(CLONE_NEWPID | CLONE_NEWNS ...) -> fork -> [PID 1] make_mounts_private(),
    mount_fresh_proc(), run_init(start_main) -> fork -> [main] exec the program

PID 1 has two duties nobody else in the namespace can do: reap every orphan (zombies are re-parented to it)
and pass termination signals on (the kernel drops signals to PID 1 that it has no handler for, and the main
program would never hear of the SIGTERM meant for it). `wait_forwarding` does both without a busy loop: the
forwarded signals and SIGCHLD are blocked and taken with `sigwaitinfo`, so the process sleeps in the kernel
until something happens. A blocked signal is queued even for PID 1 (the kernel only drops signals it would
*ignore*, and a blocked signal is never ignored), so no handler needs to be installed.

/proc must be mounted from inside the namespace (a proc mount shows the PID namespace of the process that
mounts it), and mounts must first be made private, or the new /proc mount and its unmount when the namespace
dies would propagate back to the host's mount table (shared propagation is systemd's default).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Final

from rsp.linux import syscalls

# What a supervisor may send to stop or reload a program: passed on to the main child as-is.
FORWARDED_SIGNALS: Final = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
WAITED_SIGNALS: Final = frozenset((*FORWARDED_SIGNALS, signal.SIGCHLD))

# Python ignores SIGPIPE and SIGXFSZ at start-up; an ignored disposition survives exec, so a program
# started from rsp would not die of a broken pipe as it would from a shell. Reset before exec.
_RESET_BEFORE_EXEC: Final = (*WAITED_SIGNALS, signal.SIGPIPE, signal.SIGXFSZ)

# Exit code of a child that could not exec its program (the shell's "command not found").
EXEC_FAILED: Final = 127
# A child killed by signal N is reported as 128 + N, as shells do.
SIGNAL_EXIT_BASE: Final = 128


def exit_code(status: int) -> int:
    """A wait status as a process exit code: the code itself, or 128 + the signal that killed it."""
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else SIGNAL_EXIT_BASE - code


def block_waited_signals() -> set[int | signal.Signals]:
    """Block the forwarded signals and SIGCHLD (before forking the child they concern); return the old mask.

    Blocked before the fork, nothing can arrive between the fork and the first `sigwaitinfo` and be lost.
    """
    # An inherited SIG_IGN for SIGCHLD would make the kernel reap children itself and never queue SIGCHLD.
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    return signal.pthread_sigmask(signal.SIG_BLOCK, WAITED_SIGNALS)


def reset_signals_for_exec() -> None:
    """In a freshly forked child about to exec: default dispositions, nothing blocked, no wake-up fd.

    The signal mask and ignored dispositions survive exec; a Python handler's wake-up fd (asyncio's
    self-pipe) would otherwise be written to by the child's signals until it execs.
    """
    signal.set_wakeup_fd(-1)
    for signo in _RESET_BEFORE_EXEC:
        signal.signal(signo, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, ())


def wait_forwarding(main_pid: int, *, reap_all: bool = True) -> int:
    """Sleep until `main_pid` exits, forwarding FORWARDED_SIGNALS to it; return its wait status.

    With `reap_all` (PID 1), every other child that exits meanwhile is reaped too. The caller must have
    called `block_waited_signals()` before forking `main_pid`.
    """
    while True:
        # SIGCHLDs coalesce: one delivery may stand for several exits, so reap until nothing is left.
        while True:
            try:
                pid, status = os.waitpid(-1 if reap_all else main_pid, os.WNOHANG)
            except ChildProcessError:
                # No child at all: main_pid was reaped elsewhere; there is nothing left to wait for.
                return 0
            if pid == 0:
                break
            if pid == main_pid:
                return status
        info = signal.sigwaitinfo(WAITED_SIGNALS)
        if info.si_signo != signal.SIGCHLD:
            try:
                os.kill(main_pid, info.si_signo)
            except ProcessLookupError:
                pass  # already gone; its SIGCHLD is queued


def run_init(start_main: Callable[[], object]) -> int:
    """Be PID 1: fork the main child, which calls `start_main` (it should exec), and return its exit code.

    Reaps every orphan and forwards signals meanwhile (`wait_forwarding`). If `start_main` returns or raises,
    the child exits with EXEC_FAILED. When the caller exits with the returned code, the kernel kills whatever
    is left in the namespace.
    """
    old_mask = block_waited_signals()
    pid = os.fork()
    if pid == 0:
        # A forked child must never return into the caller's code: whatever happens, it ends here.
        try:
            reset_signals_for_exec()
            start_main()
        except BaseException as exc:
            try:
                os.write(2, f"rsp init: cannot start the program: {exc}\n".encode())
            except OSError:
                pass
        finally:
            os._exit(EXEC_FAILED)
    try:
        return exit_code(wait_forwarding(pid, reap_all=True))
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)


def die_with_parent(expected_parent: int, signo: int = signal.SIGKILL) -> None:
    """Ask for `signo` when the parent dies; if it already has (re-parented), exit now.

    A chain rsp -> launcher -> PID 1 where each link does this disappears with rsp, even after a SIGKILL of
    rsp, and with PID 1 goes the whole PID namespace.
    """
    syscalls.set_parent_death_signal(signo)
    # getppid() is 0 for PID 1 of a new PID namespace (its parent is outside): the check cannot tell then,
    # and the parent's death in the few instructions since the fork goes unnoticed.
    if os.getppid() not in (expected_parent, 0):
        os._exit(EXEC_FAILED)


def make_mounts_private() -> None:
    """Make every mount of this (new) mount namespace private, recursively, so nothing propagates back."""
    syscalls.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE, None)


def mount_fresh_proc(target: str = "/proc") -> None:
    """Mount a proc filesystem for the caller's PID namespace on `target` (nosuid, nodev, noexec).

    Call from a process inside the new PID namespace (PID 1), after `make_mounts_private()` in a new mount
    namespace. The new mount covers the host's /proc for this namespace only.
    """
    syscalls.mount("proc", target, "proc", syscalls.MS_NOSUID | syscalls.MS_NODEV | syscalls.MS_NOEXEC, None)
