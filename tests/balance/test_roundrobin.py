from __future__ import annotations

from rsp.balance.roundrobin import RoundRobinBalancer

from .support import backend, records, sequence


def test_weights_interleave_smoothly() -> None:
    bal = RoundRobinBalancer(records(backend("a", weight=5), backend("b"), backend("c")))
    assert sequence(bal, 14) == "aabacaa" * 2


def test_equal_weights_rotate_in_declaration_order() -> None:
    bal = RoundRobinBalancer(records(backend("a"), backend("b"), backend("c")))
    assert sequence(bal, 7) == "abcabca"


def test_each_cycle_gives_exactly_weight_picks() -> None:
    bal = RoundRobinBalancer(records(backend("a", weight=4), backend("b", weight=3), backend("c", weight=2)))
    picks = sequence(bal, 9 * 5)
    for cycle in range(5):
        chunk = picks[cycle * 9 : (cycle + 1) * 9]
        assert (chunk.count("a"), chunk.count("b"), chunk.count("c")) == (4, 3, 2)
    assert "aaaa" not in picks


def test_a_member_going_down_leaves_the_others_interleaved() -> None:
    a, _b, _c = recs = records(backend("a", weight=2), backend("b"), backend("c", weight=2))
    bal = RoundRobinBalancer(recs)
    a.up = False
    bal.update()
    assert sequence(bal, 6) == "cbccbc"
