from __future__ import annotations

import pytest

from rsp.balance.first import FirstBalancer
from rsp.balance.hashring import HashBalancer
from rsp.balance.leastconn import LeastConnBalancer
from rsp.balance.random_two import RandomTwoBalancer
from rsp.balance.registry import make_balancer
from rsp.balance.roundrobin import RoundRobinBalancer
from rsp.errors import ConfigError

from .support import backend, records


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("roundrobin", RoundRobinBalancer),
        ("leastconn", LeastConnBalancer),
        ("random", RandomTwoBalancer),
        ("first", FirstBalancer),
        ("hash", HashBalancer),
    ],
)
def test_names_map_to_their_algorithm(name: str, cls: type) -> None:
    recs = records(backend("a"))
    bal = make_balancer(name, recs)
    assert isinstance(bal, cls)
    assert bal.pick(b"k") is recs[0]


def test_an_unknown_name_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown balance algorithm 'fastest'") as info:
        make_balancer("fastest", records(backend("a")))
    assert info.value.key == "algorithm"
