"""Command line: `rsp [-c] CONFIG.lua`, `rsp --check|-t [-c] CONFIG.lua`, `rsp --version`, `rsp SUBCOMMAND ...`.

The only module that exits the process: library code raises `RspError` subclasses, mapped here to
one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rsp import __version__
from rsp.commands import SUBCOMMANDS
from rsp.commands.config_arg import CONFIG_ENV, add_config_option, chosen_config
from rsp.errors import ConfigError, RspError, StartupError

if TYPE_CHECKING:
    import asyncio

    from rsp.config.model import Config

# A subcommand (`rsp reload`, `rsp admin`, the workers' `rsp worker`) imports only its own module: what running
# a master needs (the master, the preflight checks, the Lua runtime's description, ...) is imported in the
# functions below, once `main` knows it runs one. `rsp reload` with the master's modules cost ~0.2 s of CPU
# more before each reload could even be asked for (docs/performance.md, issue 23).

DESCRIPTION = """\
rsp: a reverse proxy and load balancer that never loses a byte, configured in Lua.

Every command names its config the same way: -c CONFIG (or --config), default $RSP_CONFIG, else
/etc/rsp/rsp.lua; rsp, rsp --check and rsp reload take it as a plain argument too.

Examples:
  rsp examples/quickstart.lua          run with a config (Ctrl-C or SIGTERM stops gracefully); = rsp -c FILE
  rsp --check examples/quickstart.lua  validate a config, resolve its backends and try its binds, then exit
                                       0 (ok) or 1 (error, naming file:line and key), like nginx -t (-t)
  rsp reload -c /etc/rsp/rsp.lua       reload the running rsp of that config, with the verdict
  rsp admin -c /etc/rsp/rsp.lua show backends
                                       a runtime command through the config's admin_socket (or
                                       rsp --admin SOCKET COMMAND...)

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


def admin_commands_help() -> str:
    """The runtime API's commands (rsp.master.machine_admin.MACHINE_HELP: with workers; `show workers` and
    `reload` need a master)."""
    from rsp.master.machine_admin import MACHINE_HELP

    lines = [f"  {command}" for command in MACHINE_HELP]
    return "\nRuntime commands (rsp admin [-c CONFIG] COMMAND, or rsp --admin SOCKET COMMAND):\n" + \
        "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    from rsp.lua.compile import runtime_description
    from rsp.native import build_description

    parser = argparse.ArgumentParser(
        prog="rsp", description=DESCRIPTION + subcommands_help() + admin_commands_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config_file", nargs="?", metavar="CONFIG", help="the Lua config file (= -c CONFIG)")
    add_config_option(parser)
    parser.add_argument("-t", "--check", action="store_true",
                        help="validate the config, resolve its hosts, try its binds and exit (0 ok, 1 error)")
    version = f"rsp {__version__} ({build_description()}; Lua handlers: {runtime_description()})"
    parser.add_argument("-V", "--version", action="version", version=version)
    parser.add_argument("--admin", metavar="SOCKET",
                        help="send a runtime command to a running rsp, e.g. rsp --admin /run/rsp.sock show backends")
    parser.add_argument("command", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def log_loop_exception(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
    """Errors the loop catches (a callback that raised) go to our log, with its timestamp format."""
    from rsp.logs import get_logger

    exc = context.get("exception")
    get_logger().error("event loop: %s", context.get("message", "error"),
                       exc_info=exc if isinstance(exc, BaseException) else None)


def run(config: Config) -> None:
    import asyncio
    import gc

    from rsp.admin.socket_server import remove_stale_socket
    from rsp.logs import setup_logging
    from rsp.master.master import Master
    from rsp.native import build_description
    from rsp.pidfile import remove_pid_file, running_master, write_pid_file
    from rsp.preflight import admin_socket_error
    from rsp.proctitle import master_title, set_title
    from rsp.sd_notify import notify
    from rsp.transport.event_loop import LOOP_RSP, loop_from_environment

    set_title(master_title(os.path.abspath(config.path)))
    logger = setup_logging(config.log_level, config.process.error_log)
    loop, choice = loop_from_environment()
    if choice.reason:
        logger.warning("%s", choice.reason)
    asyncio.set_event_loop(loop)
    loop.set_exception_handler(log_loop_exception)
    pid_file = config.process.pid_file
    if config.admin_socket:  # before anything starts: a live rsp's socket is never taken
        try:
            remove_stale_socket(config.admin_socket)
        except StartupError as exc:
            raise admin_socket_error(config, exc) from None
    try:
        # One model for any number of workers (docs/architecture.md, "Where state lives"): the master owns what
        # is one per machine, and serves through its workers, even when there is one.
        server = Master(config, loop)
        if pid_file:  # before the Started lines: whoever sees them finds the pid file (removed if start fails)
            if (other := running_master(pid_file)) is not None:
                raise StartupError(f"pid_file {pid_file}: rsp is already running as pid {other}")
            write_pid_file(pid_file)
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
        if pid_file:
            remove_pid_file(pid_file)
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
    from rsp.commands.admin import send as send_admin
    from rsp.config.lua_loader import load_config
    from rsp.preflight import check_startable, located

    parser = build_parser()
    args = parser.parse_args(words)
    if args.admin:
        return send_admin(args.admin, ([args.config_file] if args.config_file else []) + list(args.command))
    if args.command:
        print(f"rsp: error: unexpected arguments: {' '.join(args.command)} (try: rsp --help)", file=sys.stderr)
        return 1
    path = chosen_config(parser, args.config, args.config_file)
    if not (args.config or args.config_file) and not os.path.exists(path):
        parser.print_usage(sys.stderr)
        print(f"rsp: error: no config given and {path} does not exist (rsp CONFIG.lua, -c CONFIG or "
              f"{CONFIG_ENV}=CONFIG; try: rsp --help)", file=sys.stderr)
        return 1
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(f"rsp: {exc}", file=sys.stderr)
        return 1
    if args.check:
        try:
            notes = check_startable(config)
        except ConfigError as exc:
            print(f"rsp: {exc}", file=sys.stderr)
            return 1
        for note in notes:
            print(f"rsp: {note}", file=sys.stderr)
        print(f"configuration file {path} test is successful")
        return 0
    try:
        run(config)
    except StartupError as exc:  # one caused by a config entry is located like a config error
        print(f"rsp: {located(config, exc.key, str(exc)) if exc.key else exc}", file=sys.stderr)
        return 1
    except RspError as exc:
        print(f"rsp: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
