from __future__ import annotations

from collections import Counter

from rsp.balance.roundrobin import RoundRobinBalancer, smooth_schedule, smooth_step

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


def test_schedule_matches_the_per_pick_steps() -> None:
    # The precomputed cycle is exactly what nginx's steps give from all current weights at 0.
    weights = [5, 1, 1, 3, 2]
    recs = records(*(backend(n, weight=w) for n, w in zip("abcde", weights, strict=True)))
    current = [0] * len(recs)
    expected = [smooth_step(tuple(recs), current, ()) for _ in range(2 * sum(weights))]
    bal = RoundRobinBalancer(recs)
    assert [bal.pick() for _ in range(2 * sum(weights))] == expected


def test_weights_with_a_common_divisor_give_the_reduced_cycle() -> None:
    assert smooth_schedule([10, 20, 10]) == smooth_schedule([1, 2, 1]) == [1, 0, 2, 1]


def test_a_full_member_is_skipped_and_the_others_keep_their_shares() -> None:
    a, _b, _c = recs = records(backend("a", weight=2, max_conns=1), backend("b"), backend("c", weight=2))
    bal = RoundRobinBalancer(recs)
    a.active = 1  # full: no update() is called for that
    picks = sequence(bal, 30)
    assert "a" not in picks
    assert (picks.count("b"), picks.count("c")) == (10, 20)
    a.active = 0
    assert "a" in sequence(bal, 5)


def test_a_retry_skips_the_excluded_and_leaves_the_rotation_of_new_connections() -> None:
    a, b, c = recs = records(backend("a"), backend("b"), backend("c"))
    bal = RoundRobinBalancer(recs)
    assert bal.pick(exclude={a}) is b
    assert bal.pick(exclude={a, b}) is c
    assert sequence(bal, 4) == "abca"


def test_with_a_dead_member_every_other_new_connection_tries_it_first() -> None:
    dead, _live = recs = records(backend("dead"), backend("live"))
    bal = RoundRobinBalancer(recs)
    first_tries = []
    for _ in range(6):
        rec = bal.pick()
        assert rec is not None
        first_tries.append(rec.name)
        if rec is dead:  # the connect fails: the retry excludes it
            retry = bal.pick(exclude={dead})
            assert retry is not None and retry.name == "live"
    assert first_tries == ["dead", "live"] * 3


def test_a_thousand_equal_backends_rotate_in_declaration_order() -> None:
    recs = records(*(backend(f"s{i}") for i in range(1000)))
    bal = RoundRobinBalancer(recs)
    assert [bal.pick() for _ in range(2500)] == (recs * 3)[:2500]


def test_a_cycle_too_long_to_schedule_still_gives_each_member_its_weight() -> None:
    # 300 distinct weights: a cycle of ~45,000 picks over 300 members is past SCHEDULE_BUDGET steps.
    weights = list(range(1, 301))
    assert smooth_schedule(weights) is None
    recs = records(*(backend(f"s{i}", weight=w) for i, w in enumerate(weights)))
    bal = RoundRobinBalancer(recs)
    counts = Counter(r.name for r in (bal.pick() for _ in range(sum(weights))) if r is not None)
    assert all(counts[f"s{i}"] == w for i, w in enumerate(weights))


def test_every_member_full_returns_none() -> None:
    recs = records(*(backend(f"s{i}", max_conns=1) for i in range(50)))
    bal = RoundRobinBalancer(recs)
    for r in recs:
        r.active = 1
    assert bal.pick() is None
    recs[17].active = 0
    assert bal.pick() is recs[17]
