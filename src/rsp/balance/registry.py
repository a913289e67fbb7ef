"""Algorithm name (the config's `algorithm`, rsp.config.model.ALGORITHMS) -> balancer class."""

from __future__ import annotations

from collections.abc import Sequence

from rsp.balance.base import TieredBalancer
from rsp.balance.first import FirstBalancer
from rsp.balance.hashring import HashBalancer
from rsp.balance.leastconn import LeastConnBalancer
from rsp.balance.random_two import RandomTwoBalancer
from rsp.balance.roundrobin import RoundRobinBalancer
from rsp.errors import ConfigError
from rsp.upstream.records import BackendRecord

ALGORITHMS: dict[str, type[TieredBalancer]] = {
    "roundrobin": RoundRobinBalancer,
    "leastconn": LeastConnBalancer,
    "random": RandomTwoBalancer,
    "first": FirstBalancer,
    "hash": HashBalancer,
}


def make_balancer(name: str, records: Sequence[BackendRecord]) -> TieredBalancer:
    try:
        cls = ALGORITHMS[name]
    except KeyError:
        known = ", ".join(sorted(ALGORITHMS))
        raise ConfigError(f"unknown balance algorithm {name!r} (known: {known})", key="algorithm") from None
    return cls(records)
