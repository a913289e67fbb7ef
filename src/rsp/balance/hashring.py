"""Consistent hashing on a ring (Karger et al. 1997; the ketama layout used by nginx `hash ... consistent`).

Every member owns VNODES_PER_WEIGHT x weight points on a 64-bit ring; the positions are the BLAKE2b hashes of
the member's label (configured name, else address) and a number, each 64-byte digest cut into eight 64-bit
points (ketama cuts each MD5 digest into four), so they are the same in every process and across restarts
and reloads (Python's hash() is salted per process and would not be). One digest per point, as before
2026-12-07, made a ring of 1,000 backends take ~1 s to build, at start-up and at every update(); eight per
digest and a ring sorted as plain integers take ~0.1 s (bench/scale_balance.py --build). A key is
hashed the same way and served by the owner of the first point clockwise from it (at or after it, wrapping).

The ring holds only members (up, not draining); when one goes down and update() rebuilds the ring, only the
keys on its points move, to the next points clockwise, ~1/N of the keys. Members that are full or excluded at
pick time are skipped by walking on clockwise. A pick without a key (nothing to hash) falls back to smooth
weighted round robin rather than sending every key-less connection to the owner of hash(b"").
"""

from __future__ import annotations

import hashlib
import struct
from bisect import bisect_left
from collections.abc import Collection, Sequence

from rsp.balance.base import Selector, TieredBalancer, usable
from rsp.balance.roundrobin import SmoothRoundRobin
from rsp.upstream.records import BackendRecord

# ketama (libmemcached) places 160 points per server (40 MD5 digests x 4); nginx's consistent hash does the
# same per unit of weight. With that many points a member's share of the ring is within a few percent of
# its weight's share, and a rebuild costs 160 hashes per unit of weight.
VNODES_PER_WEIGHT = 160
# 8 bytes of BLAKE2b: a 64-bit ring makes collisions between points negligible for any real pool.
DIGEST_SIZE = 8
# A member's points come from 64-byte digests, eight big-endian 64-bit points each.
POINTS_PER_DIGEST = 8
_POINTS = struct.Struct(">8Q")


def ring_hash(data: bytes) -> int:
    """Stable 64-bit position of `data` on the ring."""
    return int.from_bytes(hashlib.blake2b(data, digest_size=DIGEST_SIZE).digest(), "big")


def member_points(record: BackendRecord) -> list[int]:
    label = record.spec.label.encode() + b"#"
    count = VNODES_PER_WEIGHT * record.weight
    points: list[int] = []
    for i in range(-(-count // POINTS_PER_DIGEST)):
        points.extend(_POINTS.unpack(hashlib.blake2b(label + str(i).encode(), digest_size=64).digest()))
    del points[count:]
    return points


class HashRing(Selector):
    __slots__ = ("_fallback", "_members", "_owners", "_points", "_size")

    def __init__(self, members: tuple[BackendRecord, ...], points: dict[BackendRecord, list[int]]) -> None:
        # (point, index) packed into one integer, point * n + index: sorting integers is several times faster
        # than sorting pairs, and the order is the same (points first, then the member's declaration order).
        n = len(members)
        ring = sorted([point * n + index for index, record in enumerate(members) for point in points[record]])
        self._members = members
        self._points = [packed // n for packed in ring]
        self._owners = [members[packed % n] for packed in ring]
        self._size = len(ring)
        self._fallback = SmoothRoundRobin(members)

    def choose(self, key: bytes | None, exclude: Collection[BackendRecord]) -> BackendRecord | None:
        if key is None:
            return self._fallback.choose(None, exclude)
        size = self._size
        position = bisect_left(self._points, ring_hash(key))
        owners = self._owners
        # A walk longer than a few steps per member means most members are unusable now: check once whether
        # any is usable, so an all-full tier costs O(members) and not a walk over every point.
        check_after = 2 * len(self._members)
        for step in range(size):
            if position >= size:
                position = 0
            record = owners[position]
            if usable(record, exclude):
                return record
            if step == check_after and not any(usable(r, exclude) for r in self._members):
                return None
            position += 1
        return None


class HashBalancer(TieredBalancer):
    __slots__ = ("_points",)

    def __init__(self, records: Sequence[BackendRecord]) -> None:
        self._points: dict[BackendRecord, list[int]] = {}
        super().__init__(records)

    def selector(self, members: tuple[BackendRecord, ...]) -> HashRing:
        for record in members:
            cached = self._points.get(record)
            if cached is None or len(cached) != VNODES_PER_WEIGHT * record.weight:
                self._points[record] = member_points(record)
        return HashRing(members, self._points)
