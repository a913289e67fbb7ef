from __future__ import annotations

import random
from collections.abc import Collection
from fractions import Fraction

from rsp.balance.leastconn import LeastConnBalancer
from rsp.balance.roundrobin import smooth_schedule
from rsp.upstream.records import BackendRecord

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


def reference_pick(recs: list[BackendRecord], schedule: list[int], cursor: int,
                   exclude: Collection[BackendRecord]) -> tuple[BackendRecord | None, int]:
    """The rule read off every member: the least `active / weight` among the usable, ties to the member whose
    next turn in the smooth round robin schedule comes first from `cursor`; returns it and the next cursor."""
    best: tuple[Fraction, int, int] | None = None
    for i, rec in enumerate(recs):
        if not rec.available() or rec in exclude:
            continue
        turn = min((place - cursor) % len(schedule) for place, m in enumerate(schedule) if m == i)
        candidate = (Fraction(rec.active, rec.weight), turn, i)
        if best is None or candidate[:2] < best[:2]:
            best = candidate
    if best is None:
        return None, cursor
    return recs[best[2]], (cursor + best[1] + 1) % len(schedule)


def test_picks_follow_the_rule_under_random_load_exclusions_and_limits() -> None:
    rng = random.Random(23)
    weights = [rng.choice((1, 1, 2, 3, 5)) for _ in range(40)]
    recs = records(*(backend(f"s{i}", weight=w, max_conns=rng.choice((0, 0, 4))) for i, w in enumerate(weights)))
    bal = LeastConnBalancer(recs)
    schedule = smooth_schedule(weights)
    assert schedule is not None
    cursors = [0, 0]  # new connections', retries'
    for step in range(3000):
        if rng.random() < 0.4:  # a connection closes somewhere, the balancer is not called
            busy = [r for r in recs if r.active]
            if busy:
                rng.choice(busy).active -= 1
        exclude = set(rng.sample(recs, 3)) if step % 7 == 0 else set()
        which = 1 if exclude else 0
        expected, cursors[which] = reference_pick(recs, schedule, cursors[which], exclude)
        got = bal.pick(exclude=exclude)
        assert got is expected, step
        if got is not None:
            got.active += 1


def test_a_thousand_idle_backends_take_turns_and_held_connections_stay_even() -> None:
    recs = records(*(backend(f"s{i}") for i in range(1000)))
    bal = LeastConnBalancer(recs)
    assert [bal.pick() for _ in range(1500)] == (recs * 2)[:1500]  # released at once: idle, in turn
    for _ in range(2500):
        rec = bal.pick()
        assert rec is not None
        rec.active += 1
    assert {r.active for r in recs} == {2, 3}


def test_with_a_dead_member_every_other_new_connection_tries_it_first() -> None:
    dead, live = recs = records(backend("dead"), backend("live"))
    bal = LeastConnBalancer(recs)
    first_tries = []
    for _ in range(6):
        rec = bal.pick()
        assert rec is not None
        first_tries.append(rec.name)
        if rec is dead:  # the connect fails at once (active back to 0): the retry excludes it
            assert bal.pick(exclude={dead}) is live
    assert first_tries == ["dead", "live"] * 3


def test_the_newest_balancer_of_the_records_is_told_of_their_load() -> None:
    a, b = recs = records(backend("a"), backend("b"))
    LeastConnBalancer(recs)
    newest = LeastConnBalancer(recs)  # a pool rebuilds its balancer when a backend is added or removed
    a.active = 5
    assert [newest.pick() for _ in range(3)] == [b, b, b]
