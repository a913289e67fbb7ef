"""RouteClient (a worker's side of the machine's route store) without sockets: questions to the master,
its answers and pushes, SNI lookups' fallback to httpsDefault. The master is the test: it records the
questions and answers them with the messages rsp.master.machine_routes sends."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from rsp.config.model import Backend, Pool, RouteStore
from rsp.proxy.pools import PoolRuntime
from rsp.routestore.cache import ROUTE_DEFAULT, ROUTE_HOST
from rsp.routestore.client import RouteClient, encode_backends

TEMPLATE = Pool("default", ())
A = (Backend("127.0.0.1", 8001),)
B = (Backend("127.0.0.1", 8002),)


class Waiter:
    def __init__(self) -> None:
        self.routed: list[tuple[PoolRuntime | None, int]] = []

    def route_to(self, pool: PoolRuntime | None, status: int) -> None:
        self.routed.append((pool, status))


@pytest.fixture
def client() -> Iterator[tuple[RouteClient, list[str]]]:
    loop = asyncio.new_event_loop()
    pools = {"default": PoolRuntime(TEMPLATE, loop.time)}
    routes = RouteClient(RouteStore(), TEMPLATE, pools, [], loop)
    asked: list[str] = []
    routes.connect(asked.append)
    try:
        yield routes, asked
    finally:
        loop.close()


def answer(host: str, backends: tuple[Backend, ...], source: str, cached: bool = True) -> dict[str, Any]:
    return {"t": "route", "host": host, "backends": encode_backends(backends), "status": 503, "cached": cached,
            "source": source}


def test_one_question_per_host_and_the_answer_routes_every_waiter(client: tuple[RouteClient, list[str]]) -> None:
    routes, asked = client
    first, second = Waiter(), Waiter()
    routes.lookup(first, "a.test")  # type: ignore[arg-type]
    routes.lookup(second, "a.test")  # type: ignore[arg-type]
    assert asked == ["a.test"]
    routes.answered(answer("a.test", A, ROUTE_HOST))
    pool = routes.host_pools["a.test"]
    assert [b.port for b in pool.spec.backends] == [8001]
    assert first.routed == second.routed == [(pool, 503)]


def test_no_backends_is_the_missing_status_and_installs_nothing(client: tuple[RouteClient, list[str]]) -> None:
    routes, _ = client
    waiter = Waiter()
    routes.lookup(waiter, "none.test")  # type: ignore[arg-type]
    routes.answered({"t": "route", "host": "none.test", "backends": [], "status": 502, "source": ""})
    assert waiter.routed == [(None, 502)] and "none.test" not in routes.host_pools


def test_a_fallback_answer_routes_once_without_becoming_the_hosts_route(
        client: tuple[RouteClient, list[str]]) -> None:
    routes, _ = client
    waiter = Waiter()
    routes.lookup(waiter, "x.test")  # type: ignore[arg-type]
    routes.answered(answer("x.test", B, ROUTE_DEFAULT, cached=False))  # Redis down: the default, this once
    [(pool, _status)] = waiter.routed
    assert pool is not None and [b.port for b in pool.spec.backends] == [8002]
    assert "x.test" not in routes.host_pools


def test_pushes_change_and_remove_a_route(client: tuple[RouteClient, list[str]]) -> None:
    routes, _ = client
    routes.changed({"t": "routed", "host": "a.test", "backends": encode_backends(A), "source": ROUTE_HOST})
    old = routes.host_pools["a.test"]
    routes.changed({"t": "routed", "host": "a.test", "backends": encode_backends(B), "source": ROUTE_HOST})
    assert routes.host_pools["a.test"] is not old
    assert [b.port for b in routes.host_pools["a.test"].spec.backends] == [8002]
    routes.changed({"t": "routed", "host": "a.test", "backends": []})
    assert "a.test" not in routes.host_pools and "a.test" not in routes.host_sources


def test_sni_lookup_takes_the_names_own_route_then_https_default_never_the_http_default(
        client: tuple[RouteClient, list[str]]) -> None:
    routes, asked = client
    got: list[PoolRuntime | None] = []
    routes.lookup_tls("b.test", got.append)
    routes.answered(answer("b.test", A, ROUTE_HOST))
    assert got == [routes.host_pools["b.test"]]
    routes.lookup_tls("b.test", got.append)  # known: no question
    assert asked == ["b.test"] and len(got) == 2
    routes.lookup_tls("other.test", got.append)
    routes.answered(answer("other.test", B, ROUTE_DEFAULT))  # the HTTP default: not for TLS
    assert asked[-1] == "httpsDefault" and len(got) == 2
    routes.answered(answer("httpsDefault", B, ROUTE_DEFAULT))  # no httpsDefault key: nothing
    assert got[-1] is None
    # httpsDefault written (the master pushes it): a name with no key of its own now goes there, from what
    # this worker knows, without asking again.
    routes.changed({"t": "routed", "host": "httpsDefault", "backends": encode_backends(A), "source": ROUTE_HOST})
    routes.lookup_tls("third.test", got.append)
    routes.answered(answer("third.test", B, ROUTE_DEFAULT))
    assert got[-1] is routes.host_pools["httpsDefault"]
    assert asked == ["b.test", "other.test", "httpsDefault", "third.test"]


def test_questions_wait_for_the_channel(client: tuple[RouteClient, list[str]]) -> None:
    routes, _ = client
    loop = routes.loop
    later = RouteClient(RouteStore(), TEMPLATE, {"default": PoolRuntime(TEMPLATE, loop.time)}, [], loop)
    later.lookup(Waiter(), "early.test")  # type: ignore[arg-type]
    asked: list[str] = []
    later.connect(asked.append)
    assert asked == ["early.test"]
