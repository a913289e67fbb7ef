"""Least connections, weighted: the member with the fewest `active` connections per unit of weight.

Comparison is by cross-multiplication (a.active * b.weight < b.active * a.weight), exact and float-free, as
in nginx's ngx_http_upstream_get_least_conn_peer. Ties are broken by smooth weighted round robin among the
tied members (nginx does exactly this; HAProxy round-robins within servers of equal load). So an idle pool, or
one whose connections are all short, is shared in proportion to the weights instead of piling on one member.
"""

from __future__ import annotations

from collections.abc import Collection

from rsp.balance.base import Selector, TieredBalancer, usable
from rsp.upstream.records import BackendRecord


class LeastConn(Selector):
    __slots__ = ("_current", "_members")

    def __init__(self, members: tuple[BackendRecord, ...]) -> None:
        self._members = members
        self._current = [0] * len(members)

    def choose(self, key: bytes | None, exclude: Collection[BackendRecord]) -> BackendRecord | None:
        members = self._members
        eligible = [i for i, record in enumerate(members) if usable(record, exclude)]
        if not eligible:
            return None
        # Pass 1: the least loaded eligible member, and whether others share its load.
        best = members[eligible[0]]
        tied = False
        for i in eligible:
            record = members[i]
            lhs = record.active * best.weight
            rhs = best.active * record.weight
            if lhs < rhs:
                best = record
                tied = False
            elif lhs == rhs and record is not best:
                tied = True
        if not tied:
            return best
        # Pass 2: smooth weighted round robin among the members as loaded as `best`.
        active, weight = best.active, best.weight
        current = self._current
        chosen = -1
        chosen_value = 0
        total = 0
        for i in eligible:
            record = members[i]
            if record.active * weight != active * record.weight:
                continue
            value = current[i] + record.weight
            current[i] = value
            total += record.weight
            if chosen < 0 or value > chosen_value:
                chosen = i
                chosen_value = value
        current[chosen] -= total
        return members[chosen]


class LeastConnBalancer(TieredBalancer):
    __slots__ = ()

    def selector(self, members: tuple[BackendRecord, ...]) -> LeastConn:
        return LeastConn(members)
