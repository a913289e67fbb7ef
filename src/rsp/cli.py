"""Command line: `rsp CONFIG.lua`, `rsp --check CONFIG.lua`, `rsp --version`, `rsp SUBCOMMAND ...`.

The only module that exits the process: library code raises `RspError` subclasses, mapped here to
one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import sys
from collections.abc import Sequence

from rsp import __version__
from rsp.admin.socket_server import admin_request, reply_is_error
from rsp.commands import SUBCOMMANDS
from rsp.config.lua_loader import load_config
from rsp.config.model import Config
from rsp.errors import ConfigError, RspError
from rsp.logs import get_logger, setup_logging
from rsp.master.master import Master
from rsp.native import build_description
from rsp.preflight import check_startable
from rsp.sd_notify import notify
from rsp.transport.event_loop import LOOP_RSP, loop_from_environment

ADMIN_RELOAD_TIMEOUT = 60.0

DESCRIPTION = """\
rsp: a reverse proxy and load balancer that never loses a byte, configured in Lua.

Examples:
  rsp examples/quickstart.lua          run with a config (Ctrl-C or SIGTERM stops gracefully)
  rsp --check examples/quickstart.lua  validate a config, resolve its backends and try its binds, then exit
                                       0 (ok) or 1 (error, naming file:line and key), like nginx -t

Smallest config (the original rsp form):
  listenPort = 8000
  backendAddress = "127.0.0.1"
  backendPort = 9000

See README.md and docs/config.md for listeners, pools, load balancing and timeouts.
"""


def subcommands_help() -> str:
    if not SUBCOMMANDS:
        return ""
    lines = [f"  rsp {name:<10} {summary}" for name, (_, summary) in sorted(SUBCOMMANDS.items())]
    return "\nSubcommands (rsp SUBCOMMAND --help for each):\n" + "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rsp", description=DESCRIPTION + subcommands_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config", nargs="?", help="path to the Lua config file")
    parser.add_argument("-c", "--check", action="store_true",
                        help="validate the config, resolve its hosts, try its binds and exit (0 ok, 1 error)")
    parser.add_argument("-V", "--version", action="version", version=f"rsp {__version__} ({build_description()})")
    parser.add_argument("--admin", metavar="SOCKET",
                        help="send a runtime command to a running rsp, e.g. rsp --admin /run/rsp.sock show backends")
    parser.add_argument("command", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def log_loop_exception(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
    """Errors the loop catches (a callback that raised) go to our log, with its timestamp format."""
    exc = context.get("exception")
    get_logger().error("event loop: %s", context.get("message", "error"),
                       exc_info=exc if isinstance(exc, BaseException) else None)


def run(config: Config) -> None:
    logger = setup_logging(config.log_level, config.process.error_log)
    loop, choice = loop_from_environment()
    if choice.reason:
        logger.warning("%s", choice.reason)
    asyncio.set_event_loop(loop)
    loop.set_exception_handler(log_loop_exception)
    try:
        # One model for any number of workers (docs/architecture.md, "Where state lives"): the master owns what
        # is one per machine, and serves through its workers, even when there is one.
        server = Master(config, loop)
        loop.run_until_complete(server.start())
        notify("READY=1")
        # Everything allocated so far lives as long as the process: keep it out of the GC's scans.
        gc.collect()
        gc.freeze()
        logger.info("rsp %s (%s) running with %s (config %s)%s", __version__, build_description(),
                    "rsp's epoll loop" if choice.kind == LOOP_RSP else type(loop).__module__, config.path,
                    f" as the master of {config.process.workers} worker(s)")
        loop.run_until_complete(server.wait_stopped())
    finally:
        loop.close()


def run_subcommand(name: str, argv: list[str]) -> int:
    module = importlib.import_module(f"rsp.commands.{SUBCOMMANDS[name][0]}")
    try:
        status: int = module.main(argv)
    except RspError as exc:
        print(f"rsp {name}: {exc}", file=sys.stderr)
        return 1
    return status


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if words and words[0] in SUBCOMMANDS:
        return run_subcommand(words[0], words[1:])
    args = build_parser().parse_args(words)
    if args.admin:
        words = ([args.config] if args.config else []) + list(args.command)
        try:
            # A reload waits for its new workers to start: give it the time `rsp reload` gives it.
            reply = admin_request(args.admin, " ".join(words) or "help",
                                  timeout=ADMIN_RELOAD_TIMEOUT if words[:1] == ["reload"] else 5.0)
        except OSError as exc:
            print(f"rsp: cannot reach admin socket {args.admin}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        print(reply)
        return 1 if reply_is_error(reply) else 0
    if args.command:
        print(f"rsp: error: unexpected arguments: {' '.join(args.command)} (try: rsp --help)", file=sys.stderr)
        return 1
    if not args.config:
        build_parser().print_usage(sys.stderr)
        print("rsp: error: a config file is required (try: rsp --help)", file=sys.stderr)
        return 1
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"Error parsing config file: {exc}", file=sys.stderr)
        return 1
    if args.check:
        try:
            check_startable(config)
        except ConfigError as exc:
            print(f"rsp: check failed: {exc}", file=sys.stderr)
            return 1
        print(f"configuration file {args.config} test is successful")
        return 0
    try:
        run(config)
    except RspError as exc:
        print(f"rsp: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
