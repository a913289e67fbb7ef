"""The runtime API's commands, as a pure function from a command line to a reply (no I/O).

Commands (one per connection, answered with one JSON document, like HAProxy's non-interactive stats socket):
  help                               the list below
  show backends [POOL]               every backend's state, counters and last check
  drain POOL BACKEND                 no new connections; live ones finish (HAProxy `set server ... state drain`)
  ready POOL BACKEND                 back into rotation after drain
  set weight POOL BACKEND N          change a backend's weight (0: no new connections)
BACKEND is a backend's name, its address (host:port) or its 1-based position in the pool.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Final

from rsp.proxy.pools import PoolRuntime
from rsp.upstream.records import BackendRecord

# A command is one short line; anything longer is a client error, not something to buffer.
MAX_COMMAND_BYTES: Final = 4096

HELP: Final = [
    "help",
    "show backends [POOL]",
    "drain POOL BACKEND",
    "ready POOL BACKEND",
    "set weight POOL BACKEND N",
]


class CommandError(Exception):
    pass


def execute(line: str, pools: Mapping[str, PoolRuntime]) -> str:
    """Run one command and return its JSON reply (errors too are JSON: {"error": ...})."""
    try:
        result = _dispatch(line.split(), pools)
    except CommandError as exc:
        return json.dumps({"error": str(exc)})
    return json.dumps(result, indent=1)


def _dispatch(words: list[str], pools: Mapping[str, PoolRuntime]) -> object:
    match words:
        case [] | ["help"]:
            return {"commands": HELP}
        case ["show", "backends"]:
            return {name: [r.snapshot() for r in pool.records] for name, pool in pools.items()}
        case ["show", "backends", pool_name]:
            pool = _pool(pools, pool_name)
            return {pool_name: [r.snapshot() for r in pool.records]}
        case ["drain" | "ready" as verb, pool_name, backend]:
            pool = _pool(pools, pool_name)
            record = _backend(pool, backend)
            pool.set_draining(record, verb == "drain")
            return {"ok": True, "backend": record.snapshot()}
        case ["set", "weight", pool_name, backend, weight]:
            pool = _pool(pools, pool_name)
            record = _backend(pool, backend)
            if not weight.isdigit() or int(weight) > 256:
                raise CommandError("weight must be an integer from 0 to 256")
            pool.set_weight(record, int(weight))
            return {"ok": True, "backend": record.snapshot()}
    raise CommandError(f"unknown command {' '.join(words)!r}; try 'help'")


def _pool(pools: Mapping[str, PoolRuntime], name: str) -> PoolRuntime:
    try:
        return pools[name]
    except KeyError:
        raise CommandError(f"no pool named {name!r} (pools: {', '.join(sorted(pools))})") from None


def _backend(pool: PoolRuntime, name: str) -> BackendRecord:
    record = pool.find(name)
    if record is None:
        raise CommandError(f"no backend {name!r} in pool {pool.name!r}")
    return record
