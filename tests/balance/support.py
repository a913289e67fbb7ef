"""Helpers shared by the balancer tests: build records, simulate connections."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Collection, Sequence

from rsp.balance.base import Balancer
from rsp.balance.random_two import RandomTwoBalancer
from rsp.balance.registry import make_balancer
from rsp.config.model import Backend
from rsp.upstream.records import BackendRecord

SEED = 20240611


def backend(name: str, weight: int = 1, max_conns: int = 0, backup: bool = False) -> Backend:
    port = 9000 + sum(name.encode()) % 1000
    return Backend(host="127.0.0.1", port=port, weight=weight, max_conns=max_conns, backup=backup, name=name)


def records(*specs: Backend) -> list[BackendRecord]:
    return [BackendRecord(spec, i, "web") for i, spec in enumerate(specs)]


def balancer(algorithm: str, recs: Sequence[BackendRecord]) -> Balancer:
    """The registry's balancer, with a seeded Random for "random" so runs are reproducible."""
    if algorithm == "random":
        return RandomTwoBalancer(recs, rng=random.Random(SEED))
    return make_balancer(algorithm, recs)


def key(i: int) -> bytes:
    return f"client-{i}".encode()


def pick_released(
    bal: Balancer, n: int, exclude: Collection[BackendRecord] = ()
) -> Counter[str]:
    """n connections, each closed right after it is opened (active stays 0); varied hash keys."""
    counts: Counter[str] = Counter()
    for i in range(n):
        rec = bal.pick(key(i), exclude)
        assert rec is not None
        rec.active += 1
        rec.total += 1
        counts[rec.name] += 1
        rec.active -= 1
    return counts


def sequence(bal: Balancer, n: int) -> str:
    """Names of n picks (single-letter names), connections released at once."""
    out = []
    for _ in range(n):
        rec = bal.pick()
        assert rec is not None
        out.append(rec.name)
    return "".join(out)
