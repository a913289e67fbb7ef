from __future__ import annotations

import json
import math
import os
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from rsp.balance.hashring import VNODES_PER_WEIGHT, HashBalancer, HashRing, member_points
from rsp.upstream.records import BackendRecord

from .support import backend, key, records

KEYS = [key(i) for i in range(2000)]

pools = st.lists(
    st.tuples(st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8), st.integers(1, 3)),
    min_size=2,
    max_size=8,
    unique_by=lambda t: t[0],
).filter(lambda pool: all(name != "newcomer" for name, _ in pool))


def owners(bal: HashBalancer) -> list[str]:
    out = []
    for k in KEYS:
        rec = bal.pick(k)
        assert rec is not None
        out.append(rec.name)
    return out


def test_the_same_key_always_goes_to_the_same_backend() -> None:
    bal = HashBalancer(records(*(backend(n) for n in "abcde")))
    first = owners(bal)
    assert owners(bal) == first
    assert set(first) == set("abcde")


def test_the_mapping_is_the_same_in_another_process() -> None:
    """Python's hash() is salted per process; the ring must not depend on it."""
    code = (
        "import json, sys\n"
        "from rsp.balance.hashring import HashBalancer\n"
        "from rsp.config.model import Backend\n"
        "from rsp.upstream.records import BackendRecord\n"
        "specs = [Backend('127.0.0.1', 9000 + i) for i in range(5)]\n"
        "bal = HashBalancer([BackendRecord(s, i, 'web') for i, s in enumerate(specs)])\n"
        "print(json.dumps([bal.pick(f'k{i}'.encode()).spec.port for i in range(300)]))\n"
    )
    results = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=True, timeout=60)
        results.append(json.loads(out.stdout))
    assert results[0] == results[1]
    assert len(set(results[0])) == 5


def test_ring_arcs_follow_the_weights() -> None:
    weights = {"a": 5, "b": 3, "c": 1, "d": 1}
    recs = records(*(backend(n, weight=w) for n, w in weights.items()))
    bal = HashBalancer(recs)
    ring = bal.selector(tuple(recs))
    assert isinstance(ring, HashRing)
    # Each member's share of the 64-bit space: the arcs ending at its points.
    space = 2**64
    share: dict[str, float] = dict.fromkeys(weights, 0.0)
    points = ring._points
    for i, point in enumerate(points):
        previous = points[i - 1] if i else points[-1] - space
        share[ring._owners[i].name] += (point - previous) / space
    total = sum(weights.values())
    for name, weight in weights.items():
        expected = weight / total
        # Four standard deviations of a share held by k random points (~sqrt((1-p)/k) relative).
        bound = 4 * math.sqrt((1 - expected) / (VNODES_PER_WEIGHT * weight))
        assert abs(share[name] - expected) <= bound * expected, (name, share[name], expected)


def test_without_a_key_it_falls_back_to_round_robin() -> None:
    bal = HashBalancer(records(backend("a", weight=2), backend("b")))
    picked = []
    for _ in range(6):
        rec = bal.pick(None)
        assert rec is not None
        picked.append(rec.name)
    assert "".join(picked) == "abaaba"


@settings(max_examples=40, deadline=None)
@given(pool=pools, victim=st.integers(0, 7))
def test_removing_a_backend_moves_only_its_keys(pool: list[tuple[str, int]], victim: int) -> None:
    recs = records(*(backend(name, weight=w) for name, w in pool))
    bal = HashBalancer(recs)
    before = owners(bal)
    gone = recs[victim % len(recs)]
    gone.up = False
    bal.update()
    after = owners(bal)
    for old, new in zip(before, after, strict=True):
        if old != gone.name:
            assert new == old
        else:
            assert new != gone.name
    # And it comes back to exactly the old mapping.
    gone.up = True
    bal.update()
    assert owners(bal) == before


@settings(max_examples=40, deadline=None)
@given(pool=pools, victim=st.integers(0, 7))
def test_excluding_the_owner_walks_to_where_the_key_goes_when_it_is_down(
    pool: list[tuple[str, int]], victim: int
) -> None:
    recs = records(*(backend(name, weight=w) for name, w in pool))
    bal = HashBalancer(recs)
    skipped = recs[victim % len(recs)]
    walked = [bal.pick(k, exclude={skipped}) for k in KEYS[:500]]
    skipped.up = False
    bal.update()
    assert walked == [bal.pick(k) for k in KEYS[:500]]


@settings(max_examples=40, deadline=None)
@given(pool=pools, extra_weight=st.integers(1, 3))
def test_adding_a_backend_moves_about_one_share_of_keys_to_it(
    pool: list[tuple[str, int]], extra_weight: int
) -> None:
    specs = [backend(name, weight=w) for name, w in pool]
    before = owners(HashBalancer([BackendRecord(s, i, "web") for i, s in enumerate(specs)]))
    newcomer = backend("newcomer", weight=extra_weight)
    grown = [*specs, newcomer]
    after = owners(HashBalancer([BackendRecord(s, i, "web") for i, s in enumerate(grown)]))
    moved = [new for old, new in zip(before, after, strict=True) if old != new]
    assert set(moved) <= {"newcomer"}  # keys only move to the new backend
    # Its fair share is its weight's share: 1/(N+1) when all weights are equal. Bound: twice that.
    fair = extra_weight / (extra_weight + sum(w for _, w in pool))
    assert len(moved) / len(KEYS) < 2 * fair
    assert len(moved) > 0


def test_a_heavier_member_keeps_its_points_and_adds_new_ones() -> None:
    # A weight change moves only the keys of the points added or removed, as each point stays where it was.
    light, heavy = (records(backend("a", weight=w))[0] for w in (1, 3))
    one, three = member_points(light), member_points(heavy)
    assert len(one) == VNODES_PER_WEIGHT and len(three) == 3 * VNODES_PER_WEIGHT
    assert three[:VNODES_PER_WEIGHT] == one and len(set(three)) == len(three)
