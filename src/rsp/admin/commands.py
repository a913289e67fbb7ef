"""The runtime API's commands, as a pure function from a command line to a reply (no I/O).

Commands (one per connection, answered with one JSON document, like HAProxy's non-interactive stats socket):
  help                               the list below
  show                               what can be shown (in one process: backends)
  show backends [POOL]               every backend's state, counters and last check
  drain POOL BACKEND                 no new connections; live ones finish (HAProxy `set server ... state drain`)
  ready POOL BACKEND                 back into rotation after drain
  set weight POOL BACKEND N          change a backend's weight (0: no new connections)
  add backend POOL HOST:PORT [W]     a new backend (IP literal or a name resolved now), weight W (default 1)
  remove backend POOL BACKEND        out of the pool for good; its live connections finish
BACKEND is a backend's name, its address (host:port) or its 1-based position in the pool.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Final

from rsp.config.model import Backend
from rsp.errors import StartupError
from rsp.proxy.pools import PoolRuntime
from rsp.upstream.records import BackendRecord

HELP: Final = [
    "help",
    "show",
    "show backends [POOL]",
    "drain POOL BACKEND",
    "ready POOL BACKEND",
    "set weight POOL BACKEND N",
    "add backend POOL HOST:PORT [WEIGHT]",
    "remove backend POOL BACKEND",
]
# What `show` can show in one process (the master adds `workers`); `show` alone lists it.
SHOWABLE: Final = ("backends [POOL]",)
# HAProxy's and rsp's config limit for a weight.
MAX_WEIGHT: Final = 256


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
        case ["show"] | ["show", _, *_] if words[1:2] != ["backends"]:
            return _show_choices(words, SHOWABLE)
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
            pool.set_weight(record, _weight(weight))
            return {"ok": True, "backend": record.snapshot()}
        case ["add", "backend", pool_name, address, *rest] if len(rest) <= 1:
            pool = _pool(pools, pool_name)
            added = new_backend(pool, address, _weight(rest[0]) if rest else 1)
            try:
                record = pool.add_backend(added)
            except StartupError as exc:
                raise CommandError(str(exc)) from None
            return {"ok": True, "backend": record.snapshot()}
        case ["remove", "backend", pool_name, backend]:
            pool = _pool(pools, pool_name)
            record = _backend(pool, backend)
            try:
                pool.remove_backend(record)
            except ValueError as exc:
                raise CommandError(str(exc)) from None
            return {"ok": True, "removed": record.snapshot()}
    raise CommandError(f"unknown command {' '.join(words)!r}; try 'help'")


def _show_choices(words: list[str], showable: tuple[str, ...]) -> object:
    """`show` alone: what can be shown; `show NONSENSE`: the same, as an error."""
    if len(words) == 1:
        return {"show": list(showable)}
    raise CommandError(f"cannot show {' '.join(words[1:])!r}; show {' | '.join(showable)}")


def show_choices(line: str, showable: tuple[str, ...]) -> str:
    """`execute`'s JSON for a `show` the master answers itself (rsp.master.machine_admin)."""
    try:
        return json.dumps(_show_choices(line.split(), showable), indent=1)
    except CommandError as exc:
        return json.dumps({"error": str(exc)})


def new_backend(pool: PoolRuntime, address: str, weight: int) -> Backend:
    """The Backend an `add backend` creates. It always gets an explicit name (`pool/N`, N never reused) so
    that every worker process names it alike whatever it added or removed before."""
    host, sep, port = address.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise CommandError(f"backend address must be HOST:PORT (IPv6 in brackets), got {address!r}")
    name = f"{pool.name}/{len(pool.addresses) + 1}"
    if pool.find(name) is not None or any(r.spec.address == address for r in pool.records):
        raise CommandError(f"pool {pool.name!r} already has a backend {address!r}")
    return Backend(host, int(port), weight=weight, name=name, key="runtime")


def _weight(text: str) -> int:
    if not text.isdigit() or int(text) > MAX_WEIGHT:
        raise CommandError(f"weight must be an integer from 0 to {MAX_WEIGHT}")
    return int(text)


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
