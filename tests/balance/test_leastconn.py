from __future__ import annotations

from rsp.balance.leastconn import LeastConnBalancer

from .support import backend, records, sequence


def test_prefers_the_idle_backend() -> None:
    a, b, c = recs = records(backend("a"), backend("b"), backend("c"))
    a.active, b.active = 2, 1
    bal = LeastConnBalancer(recs)
    assert bal.pick() is c
    c.active = 3
    assert bal.pick() is b


def test_load_is_measured_per_unit_of_weight() -> None:
    a, b = recs = records(backend("a", weight=3), backend("b"))
    a.active, b.active = 2, 1  # 2/3 < 1/1
    assert LeastConnBalancer(recs).pick() is a


def test_held_connections_fill_backends_evenly() -> None:
    recs = records(backend("a"), backend("b"), backend("c"))
    bal = LeastConnBalancer(recs)
    for _ in range(30):
        rec = bal.pick()
        assert rec is not None
        rec.active += 1
        assert max(r.active for r in recs) - min(r.active for r in recs) <= 1
    assert [r.active for r in recs] == [10, 10, 10]


def test_ties_are_broken_round_robin() -> None:
    bal = LeastConnBalancer(records(backend("a"), backend("b"), backend("c")))
    assert sequence(bal, 6) == "abcabc"


def test_ties_are_broken_by_weight() -> None:
    bal = LeastConnBalancer(records(backend("a", weight=5), backend("b"), backend("c")))
    assert sequence(bal, 7) == "aabacaa"


def test_only_the_least_loaded_share_the_tie() -> None:
    _a, b, _c = recs = records(backend("a"), backend("b"), backend("c"))
    b.active = 1
    bal = LeastConnBalancer(recs)
    assert sequence(bal, 4) == "acac"
