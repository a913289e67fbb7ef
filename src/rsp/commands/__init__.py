"""`rsp SUBCOMMAND ...`: each subcommand is a module here with `main(argv: list[str]) -> int`.

rsp.cli looks the first word up in SUBCOMMANDS and hands the rest of the command line to that module's
`main`, imported only then (so `rsp CONFIG.lua` never imports what `rsp cert` needs); and rsp.cli imports
what running a master needs only when it runs one (so `rsp reload` does not import the master:
tests/test_cli_imports.py). The module parses its own arguments (argparse with prog=f"rsp {name}"), raises
typed errors or returns the exit status; only rsp.cli exits the process. A config file named like a
subcommand still runs: `rsp ./cert`.
"""

from __future__ import annotations

from typing import Final

# name -> (module under rsp.commands, one line for `rsp --help`)
SUBCOMMANDS: Final[dict[str, tuple[str, str]]] = {
    "admin": ("admin", "a runtime command to a running rsp through its config's admin_socket (list below)"),
    "cert": ("cert", "check a certificate bundle, or write the chain to serve (rsp cert check|bundle)"),
    "pam": ("pam", "install or remove pam_unshare (a private PID namespace per login) in /etc/pam.d"),
    "routes": ("routes", "read and write the route table in Redis (route_store): rsp routes -c CONFIG list"),
    "apps": ("apps", "the sandboxed apps of a running rsp: rsp apps -c CONFIG list|logs NAME|exec NAME -- CMD"),
    "cache": ("cache",
              "purge or ban URLs in the response cache, or show its size (rsp cache -c CONFIG purge|ban|stats)"),
    "reload": ("reload", "reload a running rsp's config (through its admin socket), like SIGHUP to the master"),
    "worker": ("worker", "internal: a worker process, started by rsp's master (workers = N)"),
}
