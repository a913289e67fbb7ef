"""`rsp reload [-c CONFIG | CONFIG | --admin SOCK]`: ask a running rsp to reload its config and wait for the verdict.

The master validates the file again (as `rsp --check` does, except the listeners it already holds); a bad
file is refused with its error (exit 1) and the running config keeps serving. Given a CONFIG, the admin
socket named in it is used; when that file does not load, the running rsp of CONFIG (found by its process
title) is asked through the socket it listens on, so that it refuses and logs the refusal as for any other
trigger. Equivalent to `kill -HUP MASTER_PID`, but with the answer; what the reload keeps as it was (a changed
admin_socket, error_log, pid_file or apps; a stats address that cannot be bound) is named in the reply
(`not_applied`) and on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Final

from rsp.admin.socket_server import admin_request, reply_is_error
from rsp.commands.config_arg import add_config_option, chosen_config
from rsp.config.lua_loader import load_config
from rsp.errors import ConfigError
from rsp.running import running_instance, unix_listening_paths

# A reload waits for its new workers to start (the master gives them up to 30 s) before it answers.
RELOAD_TIMEOUT: Final = 60.0


def running_admin_socket(config_path: str) -> str | None:
    """The admin socket of the rsp that runs `config_path` (found by its process title), if any."""
    pid = running_instance(config_path)
    if pid is None:
        return None
    paths = unix_listening_paths(pid)
    return paths[0] if paths else None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="rsp reload", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_option(parser)
    parser.add_argument("--admin", metavar="SOCKET", help="the running rsp's admin socket (default: the config's)")
    parser.add_argument("config_file", nargs="?", metavar="CONFIG", help="= -c CONFIG")
    args = parser.parse_args(argv)
    socket_path = args.admin
    if not socket_path:
        args.config = chosen_config(parser, args.config, args.config_file)
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            # The admin socket is named in the file that does not load: ask the running rsp of this config
            # through the socket it listens on, so that it refuses (and logs the refusal) as for any trigger.
            running = running_admin_socket(args.config)
            if running is None:
                print(f"rsp reload: {exc} (nothing reloaded: the running config stays)", file=sys.stderr)
                return 1
            socket_path = running
        else:
            if not config.admin_socket:
                print(f"rsp reload: {args.config} sets no admin_socket; send SIGHUP to the master instead",
                      file=sys.stderr)
                return 1
            socket_path = config.admin_socket
    try:
        reply = admin_request(socket_path, "reload", timeout=RELOAD_TIMEOUT)
    except OSError as exc:
        print(f"rsp reload: cannot reach admin socket {socket_path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    if reply_is_error(reply):
        try:
            message = json.loads(reply).get("error", reply)
        except ValueError:
            message = reply
        print(f"rsp reload: {message}", file=sys.stderr)
        return 1
    print(reply.strip())
    try:
        kept = json.loads(reply).get("not_applied", [])
    except (ValueError, AttributeError):
        kept = []
    for note in kept:
        print(f"rsp reload: not applied: {note}", file=sys.stderr)
    return 0
