"""`add backend` and `remove backend` of the runtime API (the pure command interpreter, one process)."""

from __future__ import annotations

import json
import time

from rsp.admin.commands import execute
from rsp.config.model import Backend, Pool
from rsp.proxy.pools import PoolRuntime
from rsp.upstream.records import BackendRecord


def pools() -> dict[str, PoolRuntime]:
    spec = Pool("web", (Backend("127.0.0.1", 9001), Backend("127.0.0.1", 9002)))
    return {"web": PoolRuntime(spec, time.monotonic)}


def run(line: str, p: dict[str, PoolRuntime]) -> dict[str, object]:
    result: dict[str, object] = json.loads(execute(line, p))
    return result


def test_add_then_pick_then_remove() -> None:
    p = pools()
    changes: list[tuple[str, bool]] = []

    def changed(record: BackendRecord, added: bool) -> None:
        changes.append((record.name, added))

    p["web"].on_backends_changed = changed
    reply = run("add backend web 127.0.0.1:9003 4", p)
    assert reply["ok"] and reply["backend"] == {**reply["backend"], "name": "web/3", "weight": 4}  # type: ignore[dict-item]
    picks = {p["web"].pick(None, ()).name for _ in range(30)}  # type: ignore[union-attr]
    assert picks == {"web/1", "web/2", "web/3"}
    assert run("remove backend web web/1", p)["ok"]
    assert {p["web"].pick(None, ()).name for _ in range(30)} == {"web/2", "web/3"}  # type: ignore[union-attr]
    # Indices are never reused: the next one is web/4 although web/1 is gone.
    assert run("add backend web [::1]:9004", p)["backend"]["name"] == "web/4"  # type: ignore[index]
    assert changes == [("web/3", True), ("web/1", False), ("web/4", True)]


def test_errors() -> None:
    p = pools()
    assert "error" in run("add backend web nonsense", p)
    assert "error" in run("add backend web 127.0.0.1:0", p)
    assert "error" in run("add backend web 127.0.0.1:9001", p)  # already there
    assert "error" in run("add backend web 127.0.0.1:9009 999", p)  # weight above 256
    assert "error" in run("add backend nopool 127.0.0.1:9009", p)
    assert "error" in run("remove backend web web/9", p)
    assert run("remove backend web web/1", p)["ok"]
    assert "error" in run("remove backend web web/2", p)  # a pool keeps at least one backend
