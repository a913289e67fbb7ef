"""Power of two random choices (Mitzenmacher 2001; HAProxy `balance random(2)`, nginx `random two`).

Draw two members at random, each with probability proportional to its weight, and take the one with fewer
active connections per unit of weight (the first drawn on ties). With idle backends this is plain weighted
random; under load it avoids the most loaded backend without any shared state between workers.

If neither draw is eligible (full or excluded) the pick falls back to a scan for the least loaded eligible
member, so a pick only returns None when no member is eligible.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Collection, Sequence
from itertools import accumulate

from rsp.balance.base import Selector, TieredBalancer, usable
from rsp.upstream.records import BackendRecord


def _lighter(a: BackendRecord, b: BackendRecord) -> BackendRecord:
    """b if it carries strictly fewer active connections per unit of weight than a, else a."""
    return b if b.active * a.weight < a.active * b.weight else a


class PowerOfTwo(Selector):
    __slots__ = ("_cumulative", "_last", "_members", "_rng", "_total")

    def __init__(self, members: tuple[BackendRecord, ...], rng: random.Random) -> None:
        self._members = members
        self._rng = rng
        # Weights are read once here; a weight change goes through update(), which rebuilds this.
        self._cumulative = list(accumulate(r.weight for r in members))
        self._total = self._cumulative[-1]
        self._last = len(members) - 1

    def _draw(self) -> BackendRecord:
        index = bisect_right(self._cumulative, self._rng.random() * self._total)
        return self._members[index if index <= self._last else self._last]

    def choose(self, key: bytes | None, exclude: Collection[BackendRecord]) -> BackendRecord | None:
        a = self._draw()
        b = self._draw()
        a_ok = usable(a, exclude)
        b_ok = usable(b, exclude)
        if a_ok and b_ok:
            return _lighter(a, b)
        if a_ok:
            return a
        if b_ok:
            return b
        best: BackendRecord | None = None
        for record in self._members:
            if usable(record, exclude):
                best = record if best is None else _lighter(best, record)
        return best


class RandomTwoBalancer(TieredBalancer):
    __slots__ = ("_rng",)

    def __init__(self, records: Sequence[BackendRecord], rng: random.Random | None = None) -> None:
        # Not for cryptography: the draw only spreads load. Tests inject a seeded Random.
        self._rng = rng if rng is not None else random.Random()
        super().__init__(records)

    def selector(self, members: tuple[BackendRecord, ...]) -> PowerOfTwo:
        return PowerOfTwo(members, self._rng)
