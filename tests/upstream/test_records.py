from __future__ import annotations

from rsp.config.model import Backend, Pool
from rsp.upstream.records import BackendRecord, records_for


def test_a_new_record_is_up_and_idle() -> None:
    rec = BackendRecord(Backend("127.0.0.1", 9001, name="app1"), 0, "web")
    assert rec.up and not rec.draining
    assert (rec.active, rec.total, rec.failures, rec.last_check) == (0, 0, 0, "")
    assert rec.available()
    assert rec.status == "up"


def test_availability_follows_state_and_max_conns() -> None:
    rec = BackendRecord(Backend("127.0.0.1", 9001, max_conns=2), 0, "web")
    rec.active = 1
    assert rec.available()
    rec.active = 2
    assert not rec.available()
    rec.active = 0
    rec.draining = True
    assert not rec.available()
    assert rec.status == "drain"
    rec.draining = False
    rec.up = False
    assert not rec.available()
    assert rec.status == "down"
    rec.draining = True
    assert rec.status == "drain"  # the operator's drain is shown over the operational state


def test_no_max_conns_means_no_limit() -> None:
    rec = BackendRecord(Backend("127.0.0.1", 9001), 0, "web")
    rec.active = 1_000_000
    assert rec.available()


def test_snapshot_for_the_runtime_api() -> None:
    rec = BackendRecord(Backend("::1", 9002, weight=3, backup=True, name="app2"), 1, "web")
    rec.active, rec.total, rec.failures, rec.last_check = 2, 10, 1, "status 500"
    assert rec.snapshot() == {
        "name": "app2",
        "address": "[::1]:9002",
        "state": "up",
        "active": 2,
        "total": 10,
        "failures": 1,
        "last_check": "status 500",
        "weight": 3,
        "backup": True,
    }


def test_unnamed_backends_are_named_after_pool_and_position() -> None:
    pool = Pool("web", (Backend("127.0.0.1", 9001, name="app1"), Backend("127.0.0.1", 9002)))
    recs = records_for(pool)
    assert [r.name for r in recs] == ["app1", "web/2"]
    assert [r.index for r in recs] == [0, 1]
    assert all(r.pool == "web" for r in recs)


def test_records_use_slots() -> None:
    rec = BackendRecord(Backend("127.0.0.1", 9001), 0, "web")
    assert not hasattr(rec, "__dict__")
