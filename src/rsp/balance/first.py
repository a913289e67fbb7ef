"""HAProxy's `balance first`: the first eligible member in declaration order.

A member takes connections until it reaches its max_conns, then the next one does; this packs load on as few
backends as possible so spare ones can be powered down. Weights do not apply (as in HAProxy). Without a
max_conns the first up member takes everything.
"""

from __future__ import annotations

from collections.abc import Collection

from rsp.balance.base import Selector, TieredBalancer, usable
from rsp.upstream.records import BackendRecord


class First(Selector):
    __slots__ = ("_members",)

    def __init__(self, members: tuple[BackendRecord, ...]) -> None:
        self._members = members

    def choose(self, key: bytes | None, exclude: Collection[BackendRecord]) -> BackendRecord | None:
        for record in self._members:
            if usable(record, exclude):
                return record
        return None


class FirstBalancer(TieredBalancer):
    __slots__ = ()

    def selector(self, members: tuple[BackendRecord, ...]) -> First:
        return First(members)
