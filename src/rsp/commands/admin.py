"""`rsp admin [-c CONFIG | --socket SOCKET] COMMAND...`: one runtime command to a running rsp, through the
admin socket its config names (`admin_socket`); `rsp --admin SOCKET COMMAND...` is the same with the socket
given. `rsp admin help` (or no command) lists the commands; `rsp admin show` what can be shown."""

from __future__ import annotations

import argparse
import sys
from typing import Final

from rsp.admin.socket_server import admin_request, reply_is_error
from rsp.commands.config_arg import add_config_option, chosen_config
from rsp.config.lua_loader import load_config
from rsp.errors import ConfigError

# A reload waits for its new workers to start (the master gives them up to 30 s) before it answers.
RELOAD_TIMEOUT: Final = 60.0
COMMAND_TIMEOUT: Final = 5.0


def send(socket_path: str, words: list[str]) -> int:
    """Send `words` to the admin socket, print the reply; 0, or 1 for an error reply or no answer."""
    timeout = RELOAD_TIMEOUT if words[:1] == ["reload"] else COMMAND_TIMEOUT
    try:
        reply = admin_request(socket_path, " ".join(words) or "help", timeout=timeout)
    except OSError as exc:
        print(f"rsp: cannot reach admin socket {socket_path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(reply)
    return 1 if reply_is_error(reply) else 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="rsp admin", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_option(parser)
    parser.add_argument("--socket", metavar="SOCKET", help="the admin socket (default: the config's admin_socket)")
    parser.add_argument("words", nargs=argparse.REMAINDER, metavar="COMMAND", help="e.g. show backends")
    args = parser.parse_args(argv)
    socket_path = args.socket
    if not socket_path:
        path = chosen_config(parser, args.config)
        try:
            config = load_config(path)
        except ConfigError as exc:
            raise ConfigError(f"{exc} (give --socket SOCKET to reach the running rsp anyway)") from None
        if not config.admin_socket:
            print(f"rsp admin: {path} sets no admin_socket", file=sys.stderr)
            return 1
        socket_path = config.admin_socket
    return send(socket_path, list(args.words))
