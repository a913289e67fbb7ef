from __future__ import annotations

import random
from collections import Counter

from rsp.balance.random_two import RandomTwoBalancer

from .support import backend, records


def names(bal: RandomTwoBalancer, n: int) -> list[str]:
    out = []
    for _ in range(n):
        rec = bal.pick()
        assert rec is not None
        out.append(rec.name)
    return out


def test_an_injected_random_makes_picks_reproducible() -> None:
    recs = records(backend("a"), backend("b", weight=2), backend("c"))
    first = names(RandomTwoBalancer(recs, rng=random.Random(7)), 50)
    again = names(RandomTwoBalancer(recs, rng=random.Random(7)), 50)
    assert first == again
    assert len(set(first)) == 3


def test_the_busy_backend_is_avoided_unless_drawn_twice() -> None:
    a, _b = recs = records(backend("a"), backend("b"))
    a.active = 100
    counts = Counter(names(RandomTwoBalancer(recs, rng=random.Random(3)), 4000))
    # a wins only when both draws are a: probability 1/4.
    assert 800 <= counts["a"] <= 1200, counts


def test_a_full_draw_falls_back_to_an_eligible_backend() -> None:
    a, b, _c = recs = records(backend("a", max_conns=1), backend("b", max_conns=1), backend("c", weight=1))
    a.active = b.active = 1
    bal = RandomTwoBalancer(recs, rng=random.Random(5))
    assert set(names(bal, 200)) == {"c"}
