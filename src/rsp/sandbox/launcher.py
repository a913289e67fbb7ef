"""Start one app: the fork chain into its namespaces.

    rsp --fork--> launcher, titled `rsp: app NAME`: joins the app's netns, unshare(NEWPID | NEWNS | NEWUTS),
                  waits for PID 1 and passes signals on (the pid the Supervisor watches and signals)
        --fork--> PID 1 of the new PID namespace, `rsp: app NAME init`: private mounts, fresh /proc, hostname;
                  rsp.linux.pid1
            --fork--> the app: its user, dir and environment; exec

`unshare(CLONE_NEWPID)` moves only the children of the caller, hence the launcher between rsp and PID 1: the
Supervisor needs a child of rsp to wait for, and PID 1 cannot be one. Each link asks for SIGKILL when its
parent dies (PR_SET_PDEATHSIG), so a SIGKILL of rsp takes the launcher, PID 1 and with it the whole PID
namespace: nothing of an app outlives rsp. An unsandboxed app (`sandbox = false`) is exec'd by the
launcher itself.

Everything between fork and exec stays in the child and ends in `os._exit`: no exception, no return into
rsp's event loop.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from typing import Final

from rsp.linux import pid1, syscalls
from rsp.proctitle import PREFIX, set_title

# The environment an app starts from (plus HOME, its `env` and PORT/APP_NAME): not rsp's, which may hold
# anything of the operator's shell.
BASE_PATH: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NAMESPACES: Final = syscalls.CLONE_NEWPID | syscalls.CLONE_NEWNS | syscalls.CLONE_NEWUTS


@dataclass(frozen=True, slots=True)
class LaunchSpec:
    name: str
    argv: tuple[str, ...]
    env: dict[str, str]
    cwd: str  # "" keeps rsp's working directory
    uid: int | None  # None keeps rsp's user
    gid: int | None
    groups: tuple[int, ...]
    netns_path: str  # "" for an unsandboxed app
    hostname: str


def launch(spec: LaunchSpec, output_fd: int) -> int:
    """Fork the launcher; return its pid. The app's stdout and stderr go to `output_fd` (rsp keeps its own
    copy open; the caller closes it after this returns)."""
    parent = os.getpid()
    pid = os.fork()
    if pid != 0:
        return pid
    code = pid1.EXEC_FAILED
    try:
        set_title(f"{PREFIX}app {spec.name}")
        _prepare_child(parent, output_fd)
        if not spec.netns_path:
            pid1.reset_signals_for_exec()
            exec_app(spec)
        code = _launch_sandboxed(spec)
    except BaseException as exc:
        _report(spec.name, exc)
    finally:
        os._exit(code)


def _prepare_child(parent: int, output_fd: int) -> None:
    pid1.die_with_parent(parent)
    signal.set_wakeup_fd(-1)
    # stdin from /dev/null, stdout and stderr to the log pipe, and nothing else of rsp's (listening sockets,
    # the epoll fd) kept open by the processes that do not exec.
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(output_fd, 1)
    os.dup2(output_fd, 2)
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))


def _launch_sandboxed(spec: LaunchSpec) -> int:
    launcher = os.getpid()
    pid1.block_waited_signals()
    syscalls.enter_namespace(spec.netns_path, syscalls.CLONE_NEWNET)
    syscalls.unshare(NAMESPACES)
    init = os.fork()
    if init == 0:
        code = pid1.EXEC_FAILED
        try:
            pid1.die_with_parent(launcher)
            set_title(f"{PREFIX}app {spec.name} init")
            pid1.make_mounts_private()
            pid1.mount_fresh_proc()
            syscalls.sethostname(spec.hostname)
            code = pid1.run_init(lambda: exec_app(spec))
        except BaseException as exc:
            _report(spec.name, exc)
        finally:
            os._exit(code)
    return pid1.exit_code(pid1.wait_forwarding(init, reap_all=False))


def exec_app(spec: LaunchSpec) -> None:
    """In the app's process: its directory, groups, group, user (in that order: setuid last, it drops the
    right to change the others), then exec."""
    if spec.cwd:
        os.chdir(spec.cwd)
    if spec.gid is not None:
        os.setgroups(list(spec.groups))
        os.setgid(spec.gid)
    if spec.uid is not None:
        os.setuid(spec.uid)
    os.execvpe(spec.argv[0], list(spec.argv), spec.env)


def _report(name: str, exc: BaseException) -> None:
    try:
        os.write(2, f"rsp: app {name}: cannot start: {exc}\n".encode())
    except OSError:
        pass
