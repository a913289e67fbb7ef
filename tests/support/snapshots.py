"""Snapshot dicts in rsp.metrics.snapshot's shape, built by hand for the pure metrics tests."""

from __future__ import annotations

from typing import Any


def codes(**values: int) -> dict[str, int]:
    out = {"1xx": 0, "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0, "other": 0}
    out.update({k.replace("c", "", 1): v for k, v in values.items()})
    return out


def backend(name: str, state: str = "up", *, ok: int = 0, fail: int = 0, active: int = 0, idle: int = 0,
            last: str = "", last_time: float | None = None, weight: int = 1, counts: list[int] | None = None,
            seconds: float = 0.0) -> dict[str, Any]:
    counts = counts or [0, 0, 0]
    return {"name": name, "address": f"127.0.0.1:{len(name)}", "state": state, "weight": weight, "backup": False,
            "active": active, "idle": idle, "connections": ok + fail, "responses": codes(c2xx=ok, c5xx=fail),
            "bytes_sent": 10 * (ok + fail), "bytes_received": 100 * (ok + fail), "connect_failures": fail,
            "ejections": 0, "checks_ok": ok, "checks_fail": fail, "last_check": last, "last_check_time": last_time,
            "health_check": "tcp",
            "response_time": {"bounds": [0.1, 1.0], "counts": counts, "sum": seconds, "count": sum(counts)}}


def snap(pid: int, backends: list[dict[str, Any]], accepted: int = 0, retries: int = 0) -> dict[str, Any]:
    return {"pid": pid, "time": 1000.0 + pid,
            "listeners": [{"name": "127.0.0.1:80", "mode": "http", "pool": "web", "accepted": accepted,
                           "active": 1, "idle": 2, "bytes_received": accepted * 7, "bytes_sent": accepted * 9,
                           "responses": codes(c2xx=accepted)}],
            "pools": [{"name": "web", "algorithm": "roundrobin", "retries": retries, "unserved": codes(c5xx=retries),
                       "backends": backends}]}
