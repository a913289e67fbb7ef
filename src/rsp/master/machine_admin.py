"""The runtime API: the admin socket answers for the whole machine (with one worker or many).

`drain`, `ready`, `set weight`, `add backend` and `remove backend` act on the master's pools (the same pure
commands as one process: rsp.admin.commands) and the resulting state goes to every worker. `show backends`
adds up the workers' counters (each worker counts its own connections). `show workers` and `reload` are
the master's own; `cache ...` (purge, ban, stats) acts on the machine's cache stores (rsp.master.machine_cache).
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any, Final

from rsp.admin.commands import HELP, SHOWABLE, execute, show_choices
from rsp.admin.socket_server import AdminSocket, start_admin_socket
from rsp.master.machine_cache import CACHE_HELP, answer_cache

if TYPE_CHECKING:
    from rsp.master.master import Master

MACHINE_HELP: Final = [*HELP, "show workers", "reload", *CACHE_HELP]
MACHINE_SHOWABLE: Final = (*SHOWABLE, "workers")
# Commands that change backend state: after them the master sends the new state to every worker.
MUTATING: Final = frozenset({"drain", "ready", "set", "add", "remove"})
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
        case ["cache", *_]:
            return await answer_cache(line, master)
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
    async def reply(line: str) -> str:
        return await answer(line, master)

    return await start_admin_socket(path, reply)
