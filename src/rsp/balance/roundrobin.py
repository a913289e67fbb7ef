"""Smooth weighted round robin (nginx's ngx_http_upstream_get_peer).

Each pick adds every eligible member's weight to its current weight, takes the member with the highest
current weight (the first one on ties) and subtracts the total of the eligible weights from it. Over one cycle
of sum(weights) picks each member is chosen exactly `weight` times, spread out: weights 5,1,1 give
a a b a c a a rather than a a a a a b c, so a heavy backend never receives a burst.
"""

from __future__ import annotations

from collections.abc import Collection

from rsp.balance.base import Selector, TieredBalancer, usable
from rsp.upstream.records import BackendRecord


class SmoothRoundRobin(Selector):
    """The selector over one tier; also the key-less fallback of the hash ring."""

    __slots__ = ("_current", "_members")

    def __init__(self, members: tuple[BackendRecord, ...]) -> None:
        self._members = members
        self._current = [0] * len(members)

    def choose(self, key: bytes | None, exclude: Collection[BackendRecord]) -> BackendRecord | None:
        current = self._current
        best = -1
        best_weight = 0
        total = 0
        for i, record in enumerate(self._members):
            if not usable(record, exclude):
                continue
            weight = record.weight
            value = current[i] + weight
            current[i] = value
            total += weight
            if best < 0 or value > best_weight:
                best = i
                best_weight = value
        if best < 0:
            return None
        current[best] -= total
        return self._members[best]


class RoundRobinBalancer(TieredBalancer):
    __slots__ = ()

    def selector(self, members: tuple[BackendRecord, ...]) -> SmoothRoundRobin:
        return SmoothRoundRobin(members)
