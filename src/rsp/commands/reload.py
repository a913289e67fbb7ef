"""`rsp reload [--admin SOCK | CONFIG]`: ask a running rsp to reload its config and wait for the verdict.

The master validates the file again (as `rsp --check` does, except the listeners it already holds); a bad
file is refused with its error (exit 1) and the running config keeps serving. Given a CONFIG, the admin
socket named in it is used. Equivalent to `kill -HUP MASTER_PID`, but with the answer.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Final

from rsp.admin.socket_server import admin_request, reply_is_error
from rsp.config.lua_loader import load_config
from rsp.errors import ConfigError

# A reload waits for its new workers to start (the master gives them up to 30 s) before it answers.
RELOAD_TIMEOUT: Final = 60.0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="rsp reload", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admin", metavar="SOCKET", help="the running rsp's admin socket")
    parser.add_argument("config", nargs="?", help="the config whose admin_socket to use")
    args = parser.parse_args(argv)
    socket_path = args.admin
    if not socket_path:
        if not args.config:
            parser.error("give --admin SOCKET or the CONFIG file (its admin_socket is used)")
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            # The admin socket is named in the file that does not load: the master is not asked, and keeps
            # the config it runs (it would refuse this one with the same error).
            print(f"rsp reload: {exc} (nothing reloaded: the running config stays)", file=sys.stderr)
            return 1
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
    return 0
