"""`rsp apps -c CONFIG list | logs NAME | exec NAME -- CMD...`: the sandboxed apps of a running rsp.

`list` and `logs` read what the running rsp writes in its runtime directory (rsp.sandbox.state, the
bounded log files); `exec` runs a command inside an app's namespaces (network, PID, mount, UTS, IPC) by
setns into those of the app's PID 1, found as the only child of the launcher pid in the state file.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from rsp.commands.config_arg import add_config_option, chosen_config
from rsp.config.lua_loader import load_config
from rsp.errors import SandboxError
from rsp.sandbox import naming
from rsp.sandbox.logfiles import read_log
from rsp.sandbox.state import read_state

# Joined in this order; all files are opened first, since joining the mount namespace changes what /proc is.
EXEC_NAMESPACES = ("ipc", "uts", "net", "pid", "mnt")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rsp apps", description="the sandboxed apps of a running rsp")
    add_config_option(parser)
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="name, namespace, address, pid, state, restarts, uptime")
    logs = sub.add_parser("logs", help="an app's captured stdout and stderr")
    logs.add_argument("name")
    run = sub.add_parser("exec", help="run a command inside an app's namespaces: exec NAME -- CMD...")
    run.add_argument("name")
    run.add_argument("cmd", nargs=argparse.REMAINDER)
    return parser


def main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.config = chosen_config(parser, args.config)
    config = load_config(args.config)
    tag = naming.instance_tag(config.path, config.sandbox.instance)
    directory = naming.runtime_dir(config.sandbox.runtime_dir, tag)
    try:
        state = read_state(directory)
    except FileNotFoundError:
        raise SandboxError(f"no running rsp with apps for {args.config} (no state in {directory})") from None
    apps = {app["name"]: app for app in state["apps"]}
    if args.action == "list":
        print(format_list(state["apps"], time.time()))
        return 0
    if args.name not in apps:
        raise SandboxError(f"no app named {args.name!r} (apps: {', '.join(apps) or 'none'})")
    app = apps[args.name]
    if args.action == "logs":
        sys.stdout.buffer.write(read_log(app["log"]))
        sys.stdout.flush()
        return 0
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        raise SandboxError("exec needs a command: rsp apps -c CONFIG exec NAME -- CMD...")
    return exec_in_app(app, cmd)


def format_list(apps: list[dict[str, Any]], now: float) -> str:
    rows = [("NAME", "NAMESPACE", "ADDRESS", "PID", "STATE", "RESTARTS", "UPTIME")]
    for app in apps:
        up = "-"
        if app["state"] in ("starting", "ready") and app["started_at"] is not None:
            up = f"{max(0.0, now - app['started_at']):.0f}s"
        rows.append((app["name"], app["netns"] or "(host)", app["address"], str(app["pid"] or "-"), app["state"],
                     str(app["restarts"]), up))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                     for row in rows)


def init_pid(launcher: int) -> int:
    """The app's PID 1 (host view): the launcher's only child."""
    try:
        with open(f"/proc/{launcher}/task/{launcher}/children") as f:
            children = f.read().split()
    except FileNotFoundError:
        children = []
    if len(children) != 1:
        raise SandboxError(f"the app's launcher (pid {launcher}) has no running PID 1 now")
    return int(children[0])


def exec_in_app(app: dict[str, Any], cmd: list[str]) -> int:
    if not app["sandboxed"]:
        raise SandboxError(f"app {app['name']} is not sandboxed: run the command directly")
    if app["pid"] is None:
        raise SandboxError(f"app {app['name']} is not running (state {app['state']})")
    from rsp.linux import pid1, syscalls

    target = init_pid(int(app["pid"]))
    fds = [(os.open(f"/proc/{target}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC), syscalls.NAMESPACE_FLAGS[kind])
           for kind in EXEC_NAMESPACES]
    for fd, flag in fds:
        syscalls.setns(fd, flag)
        os.close(fd)
    os.chdir("/")
    # Joining a PID namespace places only the caller's children in it: fork, and wait for the command.
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(cmd[0], cmd)
        except OSError as exc:
            os.write(2, f"rsp apps exec: {cmd[0]}: {exc.strerror}\n".encode())
        finally:
            os._exit(pid1.EXEC_FAILED)
    _, status = os.waitpid(pid, 0)
    return pid1.exit_code(status)
