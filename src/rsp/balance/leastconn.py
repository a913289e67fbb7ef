"""Least connections, weighted: the member with the fewest `active` connections per unit of weight.

Ties are broken in the order of the pool's smooth weighted round robin (rsp.balance.roundrobin's schedule): the
pick is the least loaded member that comes first in that schedule from where the last pick left it. So an
idle pool, or one whose connections are all short, is shared in proportion to the weights (5,1,1 gives
a a b a c a a, as nginx's least_conn does), and equally loaded members take turns (HAProxy's leastconn).
Retries (picks with members excluded) keep a place in the schedule of their own, so that a failing backend
does not shift the turns of new connections (as in rsp.balance.roundrobin).

Reading every member at each pick (as nginx does) costs O(members): 1,000 backends cost ~8x what 10 do per
request (bench/scale_balance.py). Instead the members are kept grouped by load: each record tells its
balancer when its `active` changes (rsp.upstream.records.LoadWatcher), the groups are keyed by the load
`active / weight` (a float: two equal fractions divide to the same float, and two different ones with
weights up to 256 stay apart), and a heap holds the loads in use. A pick reads the lowest load, then:
many members share it (an idle pool): walk the schedule from its cursor to the first of them, a few steps;
few share it: take the one whose next turn in the schedule comes first, reading only them. Only when none of
the least loaded members can be picked now (full, excluded by a retry, down without an update()) does the pick
read every member, for the least loaded one that can. A pool whose schedule is too long to build (see
roundrobin.SCHEDULE_BUDGET) reads every member at each pick.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections.abc import Collection, Sequence
from typing import Final

from rsp.balance.base import Selector, TieredBalancer, usable
from rsp.balance.roundrobin import smooth_schedule
from rsp.upstream.records import BackendRecord, LoadWatcher

# The tie-break walks the schedule when at least one member in WALK_FACTOR is among the least loaded (the
# first of them is then ~WALK_FACTOR steps away), else it reads those members (fewer than members /
# WALK_FACTOR of them).
WALK_FACTOR: Final = 16


class LeastConn(Selector):
    __slots__ = ("_at", "_cursor", "_index", "_levels", "_loads", "_members", "_positions", "_queued", "_retry_cursor",
                 "_schedule")

    def __init__(self, members: tuple[BackendRecord, ...]) -> None:
        self._members = members
        self._index = {record: i for i, record in enumerate(members)}
        schedule = smooth_schedule([r.weight for r in members])
        self._schedule: list[int] = schedule if schedule is not None else list(range(len(members)))
        self._cursor = 0  # new connections' place in the schedule
        self._retry_cursor = 0  # retries' (picks with members excluded), as in rsp.balance.roundrobin
        # Each member's places in the schedule, ascending: where its next turn is, by bisection.
        self._positions: list[list[int]] = [[] for _ in members]
        for place, i in enumerate(self._schedule):
            self._positions[i].append(place)
        self._loads: list[float] = [r.active / r.weight for r in members]
        self._at: dict[float, set[int]] = {}  # load -> the members carrying it
        self._levels: list[float] = []  # a heap of loads, some no longer carried (dropped when on top)
        self._queued: set[float] = set()  # the loads in _levels
        for i, load in enumerate(self._loads):
            self._enter(i, load)

    def _enter(self, i: int, load: float) -> None:
        group = self._at.get(load)
        if group is None:
            self._at[load] = {i}
            if load not in self._queued:
                self._queued.add(load)
                heapq.heappush(self._levels, load)
        else:
            group.add(i)

    def load_changed(self, record: BackendRecord) -> None:
        i = self._index.get(record)
        if i is None:
            return
        old = self._loads[i]
        load = record.active / record.weight
        if load == old:
            return
        group = self._at[old]
        group.discard(i)
        if not group:
            del self._at[old]
        self._loads[i] = load
        self._enter(i, load)

    def _lowest(self) -> float:
        levels = self._levels
        while levels[0] not in self._at:
            self._queued.discard(heapq.heappop(levels))
        return levels[0]

    def _next_turn(self, i: int, cursor: int) -> int:
        """How many places from `cursor` member i's next turn in the schedule is."""
        positions = self._positions[i]
        j = bisect_left(positions, cursor)
        return positions[j] - cursor if j < len(positions) else positions[0] + len(self._schedule) - cursor

    def choose(self, key: bytes | None, exclude: Collection[BackendRecord]) -> BackendRecord | None:
        members = self._members
        schedule = self._schedule
        size = len(schedule)
        retry = bool(exclude)
        cursor = self._retry_cursor if retry else self._cursor
        lowest = self._lowest()
        group = self._at[lowest]
        if len(group) * WALK_FACTOR >= len(members):
            loads = self._loads
            for _ in range(4 * WALK_FACTOR):  # ~WALK_FACTOR steps expected; past 4x, read the group
                i = schedule[cursor]
                cursor = cursor + 1 if cursor + 1 < size else 0
                if loads[i] == lowest and usable(members[i], exclude):
                    self._advance(retry, cursor)
                    return members[i]
            cursor = self._retry_cursor if retry else self._cursor
        best = -1
        best_turn = size
        for i in group:
            turn = self._next_turn(i, cursor)
            if turn < best_turn and usable(members[i], exclude):
                best, best_turn = i, turn
        if best < 0:
            best, best_turn = self._least_usable(cursor, exclude)
            if best < 0:
                return None
        self._advance(retry, (cursor + best_turn + 1) % size)
        return members[best]

    def _advance(self, retry: bool, cursor: int) -> None:
        if retry:
            self._retry_cursor = cursor
        else:
            self._cursor = cursor

    def _least_usable(self, cursor: int, exclude: Collection[BackendRecord]) -> tuple[int, int]:
        """Every member read: the least loaded one that can be picked now (first turn on ties), and its turn."""
        best = -1
        best_load = 0.0
        best_turn = 0
        for i, record in enumerate(self._members):
            if not usable(record, exclude):
                continue
            load = self._loads[i]
            if best >= 0 and load > best_load:
                continue
            turn = self._next_turn(i, cursor)
            if best < 0 or load < best_load or turn < best_turn:
                best, best_load, best_turn = i, load, turn
        return best, best_turn


class _Watcher(LoadWatcher):
    """Forwards a record's load change to the selectors of its balancer (the primaries' or the backups')."""

    __slots__ = ("balancer",)

    def __init__(self, balancer: LeastConnBalancer) -> None:
        self.balancer = balancer

    def load_changed(self, record: BackendRecord) -> None:
        for selector in self.balancer.selectors:
            selector.load_changed(record)


class LeastConnBalancer(TieredBalancer):
    __slots__ = ("selectors",)

    def __init__(self, records: Sequence[BackendRecord]) -> None:
        self.selectors: list[LeastConn] = []
        super().__init__(records)
        watcher = _Watcher(self)
        for record in self.records:
            record.load_watcher = watcher  # the newest balancer of a pool is the one that picks

    def update(self) -> None:
        self.selectors = []
        super().update()

    def selector(self, members: tuple[BackendRecord, ...]) -> LeastConn:
        built = LeastConn(members)
        self.selectors.append(built)
        return built
