"""The runtime API in master mode: the admin socket answers for the whole machine.

`drain`, `ready`, `set weight`, `add backend` and `remove backend` act on the master's pools (the same pure
commands as one process: rsp.admin.commands) and the resulting state goes to every worker. `show backends`
adds up the workers' counters (each worker counts its own connections). `show workers` and `reload` are
the master's own.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import TYPE_CHECKING, Any, Final

from rsp.admin.commands import HELP, MAX_COMMAND_BYTES, SHOWABLE, execute, show_choices
from rsp.admin.socket_server import AdminSocket, remove_stale_socket
from rsp.logs import get_logger

if TYPE_CHECKING:
    from rsp.master.master import Master

MACHINE_HELP: Final = [*HELP, "show workers", "reload"]
MACHINE_SHOWABLE: Final = (*SHOWABLE, "workers")
# Commands that change backend state: after them the master sends the new state to every worker.
MUTATING: Final = frozenset({"drain", "ready", "set", "add", "remove"})
# A reload waits for its new workers (rsp.master.master.WORKER_READY_TIMEOUT) before it answers.
READ_TIMEOUT: Final = 10.0
COUNTERS: Final = ("active", "total", "failures")


async def answer(line: str, master: Master) -> str:
    words = line.split()
    match words:
        case [] | ["help"]:
            return json.dumps({"commands": MACHINE_HELP}, indent=1)
        case ["show"] | ["show", _, *_] if words[1:2] not in (["workers"], ["backends"]):
            return show_choices(line, MACHINE_SHOWABLE)
        case ["show", "workers"]:
            return json.dumps({"workers": master.workers_info(), "reloads": master.reloads,
                               "worker_restarts": master.worker_restarts, "last_reload": master.last_reload,
                               "master_pid": os.getpid()}, indent=1)
        case ["reload"]:
            return json.dumps(await master.reload(), indent=1)
        case ["show", "backends", *rest] if len(rest) <= 1:
            reply = execute(line, master.pools)
            document = json.loads(reply)
            if "error" in document:
                return reply
            return json.dumps(add_worker_counters(document, await master.gather_snapshots()), indent=1)
    reply = execute(line, master.pools)
    document = json.loads(reply)
    if words and words[0] in MUTATING and "error" not in document:
        # The reply's backend shows the workers' counters, as `show backends` does (the master's own copy
        # of a record counts nothing): gathered before the change reaches the workers (a removed backend's
        # totals are still there).
        pool_name = words[1] if words[0] in ("drain", "ready") else words[2]
        for key in ("backend", "removed"):
            if key in document:
                add_worker_counters({pool_name: [document[key]]}, await master.gather_snapshots())
                reply = json.dumps(document, indent=1)
        if words[0] in ("add", "remove"):
            master.start_checker(master.pools[pool_name])
        master.broadcast_state()
    return reply


def add_worker_counters(document: dict[str, list[dict[str, Any]]],
                        snapshots: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The master's view of each backend (state, weight, last check) with the connection counters summed over
    the workers. A pool without active checks is down where a worker ejected it passively: shown down if
    any worker has it down."""
    for pool_name, backends in document.items():
        for backend in backends:
            for counter in COUNTERS:
                backend[counter] = 0
            for snapshot in snapshots:
                for theirs in snapshot.get("backends", {}).get(pool_name, []):
                    if theirs.get("name") == backend["name"]:
                        for counter in COUNTERS:
                            backend[counter] += int(theirs.get(counter, 0))
                        if theirs.get("state") == "down" and backend["state"] == "up":
                            backend["state"] = "down"
            backend["workers"] = len(snapshots)
    return document


async def start_machine_admin(path: str, master: Master) -> AdminSocket:
    remove_stale_socket(path)  # refuses when a live rsp answers on it

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            raw = await asyncio.wait_for(reader.readline(), READ_TIMEOUT)
            if not raw:  # a liveness probe (rsp.admin.socket_server.remove_stale_socket): connected, said nothing
                return
            line = raw[:MAX_COMMAND_BYTES].decode("utf-8", "replace").strip()
            get_logger().info("admin command: %s", line)
            writer.write((await answer(line, master)).encode() + b"\n")
            await writer.drain()
        except (TimeoutError, OSError, ValueError):  # ValueError: a line over the limit
            pass
        finally:
            writer.close()

    server = await asyncio.start_unix_server(client, path, limit=MAX_COMMAND_BYTES * 2)
    os.chmod(path, 0o600)  # the runtime API can drain backends and reload: owner only
    return AdminSocket(server, path)
