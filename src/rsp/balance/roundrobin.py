"""Smooth weighted round robin (nginx's ngx_http_upstream_get_peer), played from a precomputed schedule.

Each step adds every member's weight to its current weight, takes the member with the highest current weight
(the first one on ties) and subtracts the total of the weights from it. Over one cycle of sum(weights) steps
each member is chosen exactly `weight` times, spread out: weights 5,1,1 give a a b a c a a rather than
a a a a a b c, so a heavy backend never receives a burst.

nginx runs those steps at every pick, which reads every member: O(members) per request, 1,000 backends cost
~50x what 10 do (bench/scale_balance.py --micro). The steps depend only on the weights, which are fixed until
the next update(), so the selector runs one cycle once, when it is built, and a pick reads the next entry of
that schedule: O(1). A member that cannot be picked now (full at max_conns, down without an update()) is
skipped and the pick takes the next entry, so the members that can be picked keep their shares of the cycle
among themselves (HAProxy's roundrobin skips an unusable server the same way; nginx would instead leave the
skipped member's current weight where it was). Retries (picks with members excluded) follow a
rotation of their own through the same schedule: new connections keep theirs, so with a dead backend among
two only every other new connection tries it first, as with nginx's steps (a retry's step there moves credit
only among the members it may pick).

The schedule is built in O(cycle x members) steps, so it is kept within SCHEDULE_BUDGET steps: weights are
divided by their greatest common divisor first (equal weights give a cycle of one pick per member, built in
O(members) without running the steps), and a pool whose cycle is still too long is balanced by running the
steps at each pick, as before (e.g. 1,000 backends of distinct weights up to 256).
"""

from __future__ import annotations

from collections.abc import Collection
from functools import reduce
from math import gcd
from typing import Final

from rsp.balance.base import Selector, TieredBalancer, usable
from rsp.upstream.records import BackendRecord

# Steps (schedule entries x members) spent building one schedule at most: ~10 ms compiled, paid at start-up
# and at each update() of the pool (a health change), not per request.
SCHEDULE_BUDGET: Final = 1 << 20


def smooth_schedule(weights: list[int]) -> list[int] | None:
    """One cycle of smooth weighted round robin over members of `weights` (each > 0) from all current
    weights at 0, as member indexes; None when building it would take more than SCHEDULE_BUDGET steps."""
    divisor = reduce(gcd, weights)
    reduced = [w // divisor for w in weights]
    total = sum(reduced)
    if total == len(reduced):  # equal weights: the steps visit the members in declaration order
        return list(range(total))
    if total * len(reduced) > SCHEDULE_BUDGET:
        return None
    current = [0] * len(reduced)
    schedule: list[int] = []
    for _ in range(total):
        best = 0
        for i, weight in enumerate(reduced):
            value = current[i] + weight
            current[i] = value
            if value > current[best]:
                best = i
        current[best] -= total
        schedule.append(best)
    return schedule


def smooth_step(members: tuple[BackendRecord, ...], current: list[int],
                exclude: Collection[BackendRecord]) -> BackendRecord | None:
    """One of nginx's steps over the usable members (`current` holds their current weights): the per-pick
    path of a pool whose schedule would be too long to build."""
    best = -1
    best_weight = 0
    total = 0
    for i, record in enumerate(members):
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
    return members[best]


class SmoothRoundRobin(Selector):
    """The selector over one tier; also the key-less fallback of the hash ring."""

    __slots__ = ("_current", "_cursor", "_members", "_retry_cursor", "_schedule")

    def __init__(self, members: tuple[BackendRecord, ...]) -> None:
        self._members = members
        schedule = smooth_schedule([r.weight for r in members])
        self._schedule: list[int] = schedule if schedule is not None else []
        self._cursor = 0  # where the next new connection's pick starts
        self._retry_cursor = 0  # where the next retry's pick starts (a pick with members excluded)
        self._current = [0] * len(members)  # the per-pick steps' state, when there is no schedule

    def choose(self, key: bytes | None, exclude: Collection[BackendRecord]) -> BackendRecord | None:
        schedule = self._schedule
        if not schedule:
            return smooth_step(self._members, self._current, exclude)
        members = self._members
        size = len(schedule)
        retry = bool(exclude)
        cursor = self._retry_cursor if retry else self._cursor
        # Past this many skipped entries most members are unusable now: check once whether any is usable, so
        # an all-full tier costs O(members) and not a walk over the whole cycle.
        check_after = 2 * len(members)
        for step in range(size):
            record = members[schedule[cursor]]
            cursor += 1
            if cursor == size:
                cursor = 0
            if usable(record, exclude):
                if retry:
                    self._retry_cursor = cursor
                else:
                    self._cursor = cursor
                return record
            if step == check_after and not any(usable(r, exclude) for r in members):
                break
        return None


class RoundRobinBalancer(TieredBalancer):
    __slots__ = ()

    def selector(self, members: tuple[BackendRecord, ...]) -> SmoothRoundRobin:
        return SmoothRoundRobin(members)
