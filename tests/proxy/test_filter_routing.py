"""Where an exchange with filters goes (rsp.proxy.filter_routing, called by rsp.proxy.filter_run): the route
store's table after rewrite, and the pool or peer a balancer filter chose, each tried on the fake session.
Rerouting by a rewrite, a pool then a peer across retries, a pool that does not exist and a host the route
store must look up are in test_phases.py."""

from __future__ import annotations

import dataclasses

from rsp.config.model import Backend
from rsp.pipeline.phases import ExchangeView, Filter, Verdict
from rsp.proxy.pools import PoolRuntime
from support.fake_session import protocol_of
from support.phase_filters import GET_X, OK_5, Make


class Sees(Filter):
    """Records the pool the run goes to as the access and balancer filters see it; sets `peer` if given."""

    def __init__(self, peer: tuple[str, int] | None = None) -> None:
        self.peer = peer
        self.pools: list[tuple[str, str]] = []

    def access(self, exchange: ExchangeView) -> Verdict:
        self.pools.append(("access", exchange.pool))
        return None

    def balancer(self, exchange: ExchangeView) -> Verdict:
        self.pools.append(("balancer", exchange.pool))
        if self.peer is not None:
            exchange.peer = self.peer
        return None


def test_a_host_in_the_route_stores_table_goes_to_its_pool_without_a_lookup(make_session: Make) -> None:
    sees = Sees()
    s = make_session(filters=[sees])
    # A route store's pool is none of the listener's (rsp.routestore): found by the exchange, not by name.
    spec = dataclasses.replace(s.pools["default"].spec, name="example@store", backends=(Backend("127.0.0.1", 9401),))
    stored = PoolRuntime(spec, s.clock)
    s.proxy.backends_changed(stored.records[0], added=True)  # its idle pool, as the route client gives it
    asked: list[str] = []
    s.proxy.host_pools = {"example": stored}
    s.proxy.host_lookup = lambda exchange, host: asked.append(host)
    client = s.client()
    client.send(GET_X)
    assert asked == []
    assert sees.pools == [("access", "example@store"), ("balancer", "example@store")]
    assert s.connector.pending()[0].record is stored.records[0]
    backend = s.accept()
    assert backend.take().startswith(b"GET /x HTTP/1.1\r\n")
    backend.send(OK_5)
    assert client.take().endswith(b"hello")


def test_a_peer_that_is_not_an_ip_address_is_answered_500_and_nothing_connects(make_session: Make) -> None:
    s = make_session(filters=[Sees(peer=("backend.example", 80))])
    client = s.client()
    client.send(GET_X)
    assert client.take().startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert s.connector.attempts == []


def test_a_peer_at_a_pool_backends_address_is_that_backend(make_session: Make) -> None:
    s = make_session(backends=2, filters=[Sees(peer=("127.0.0.1", 9102))])
    client = s.client()
    client.send(GET_X)
    [attempt] = s.connector.pending()
    assert attempt.record is s.records[1]  # the pool's own record (its counters, health), no pool of its own
    assert protocol_of(client).exchange is not None
    assert protocol_of(client).exchange.pool is s.pools["default"]
