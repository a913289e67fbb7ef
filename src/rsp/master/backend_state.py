"""The machine's backend state as a control message, and its application to a worker's pools (pure: no I/O
but the name resolution of an added backend, which `add backend` already did once in the master).

The master holds the truth for what is one per machine: the active health checks' verdicts (`up`, for pools
with checks), the operator's `drain`/`ready`/`set weight`, and backends added or removed at run time. It sends
the whole state (small: a few fields per backend) whenever any of it changes, and to every new worker; a
worker makes its pools match. Idempotent, so a lost or repeated message cannot leave a worker half-updated.

`up` of a pool without active checks is not the master's to set: passive ejection decides it in each worker
and reaches the others as `eject` messages (rsp.master.control).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rsp.config.model import Backend
from rsp.proxy.pools import PoolRuntime
from rsp.upstream.records import BackendRecord


def backend_state(record: BackendRecord) -> dict[str, Any]:
    spec = record.spec
    return {"name": record.name, "host": spec.host, "port": spec.port, "weight": record.weight,
            "max_conns": spec.max_conns, "backup": spec.backup, "up": record.up, "draining": record.draining}


def pools_state(pools: Mapping[str, PoolRuntime]) -> dict[str, list[dict[str, Any]]]:
    return {name: [backend_state(r) for r in pool.records] for name, pool in pools.items()}


def apply_pools_state(pools: Mapping[str, PoolRuntime], state: Mapping[str, Any]) -> list[str]:
    """Make `pools` match `state`; returns what changed, one phrase each (for a debug log line)."""
    changes: list[str] = []
    for pool_name, backends in state.items():
        pool = pools.get(pool_name)
        if pool is None or not isinstance(backends, list):
            continue
        wanted = {b["name"]: b for b in backends}
        for record in list(pool.records):
            if record.name not in wanted:
                pool.remove_backend(record, allow_empty=True)  # the master's state is the truth
                changes.append(f"removed {record.name}")
        have = {r.name: r for r in pool.records}
        checked = pool.spec.health.kind != "none"
        changed = False
        for item in backends:
            found = have.get(item["name"])
            if found is None:
                found = pool.add_backend(Backend(item["host"], int(item["port"]), weight=int(item["weight"]),
                                                  max_conns=int(item["max_conns"]), backup=bool(item["backup"]),
                                                  name=item["name"], key="runtime"))
                changes.append(f"added {found.name}")
            record = found
            if record.weight != item["weight"]:
                record.weight = int(item["weight"])
                changes.append(f"{record.name} weight {record.weight}")
                changed = True
            if record.draining != item["draining"]:
                record.draining = bool(item["draining"])
                changes.append(f"{record.name} {'draining' if record.draining else 'ready'}")
                changed = True
            if checked and record.up != item["up"]:
                record.up = bool(item["up"])
                changes.append(f"{record.name} {'up' if record.up else 'down'}")
                changed = True
        if changed:
            pool.balancer.update()
    return changes
