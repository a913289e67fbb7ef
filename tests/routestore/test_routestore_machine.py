"""The route store is one per machine (docs/routestore.md): the master's cache answers every worker, its
Redis-supplied pools are checked once and listed by `show backends`, with one worker or many."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from support.http_backends import HttpBackend
from support.http_client import http_config, lua
from support.redis_server import RedisServer
from support.rsp_process import RspProcess, free_port, run_cli

from .conftest import PROPAGATION_BOUND, body_of, routes, store_config, wait_until

Launch = Callable[..., RspProcess]
WORKERS = pytest.mark.parametrize("workers", [1, 2])
HOSTS = 4
ASKS = 12  # new connections per host: with two workers, both take some (they share one accept queue)


@WORKERS
def test_hosts_the_machine_served_are_served_by_every_worker_with_redis_down(
        run_rsp: Launch, redis_server: RedisServer, named_backend: Callable[[str], HttpBackend], workers: int) -> None:
    backends = [named_backend(f"b{i}") for i in range(HOSTS)]
    for i, backend in enumerate(backends):
        routes(redis_server, "set", f"h{i}.test", f"127.0.0.1:{backend.port}")
    rsp = run_rsp(store_config(free_port(), redis_server, workers=workers))
    for i in range(HOSTS):  # each host asked once: one worker learns it from Redis
        assert body_of(rsp.port, f"h{i}.test") == f"b{i}"
    redis_server.kill()
    assert rsp.wait_for_stderr("unreachable", 5.0) is not None
    for i in range(HOSTS):
        answers = [body_of(rsp.port, f"h{i}.test") for _ in range(ASKS)]
        assert answers == [f"b{i}"] * ASKS


@WORKERS
def test_redis_pools_are_listed_and_checked_once_per_machine(run_rsp: Launch, redis_server: RedisServer,
                                                            named_backend: Callable[[str], HttpBackend],
                                                            tmp_path: object, workers: int) -> None:
    live, dead = named_backend("live"), free_port()
    routes(redis_server, "set", "h.test", f"127.0.0.1:{live.port}", f"127.0.0.1:{dead}")
    template = {"backends": ["127.0.0.1:1"], "passive_failures": 0,
                "health": {"kind": "tcp", "interval": 0.2, "timeout": 0.2, "rise": 1, "fall": 1}}
    sock = f"/tmp/rsp-routestore-{free_port()}.sock"
    settings = {"url": redis_server.url, "template": "tmpl"}
    rsp = run_rsp(http_config(free_port(), ["127.0.0.1:1"], pools={"tmpl": template},
                              extra=f"workers = {workers}\nroute_store = {lua(settings)}\nadmin_socket = \"{sock}\"\n"))
    assert body_of(rsp.port, "h.test") == "live"
    pool = "redis:" + ",".join(sorted(f"127.0.0.1:{p}" for p in (live.port, dead)))
    deadline = time.monotonic() + 10.0
    while True:
        result = run_cli("--admin", sock, "show", "backends", pool)
        assert result.returncode == 0, result.stdout + result.stderr
        states = {b["address"]: b for b in json.loads(result.stdout)[pool]}
        if states[f"127.0.0.1:{dead}"]["state"] == "down":
            break
        assert time.monotonic() < deadline, states
        time.sleep(0.1)
    assert states[f"127.0.0.1:{dead}"]["last_check"] not in ("", "ok")  # the master's checker's verdict
    assert states[f"127.0.0.1:{live.port}"]["state"] == "up"
    # Once per machine: one line per transition, whatever the number of workers.
    downs = [line for line in rsp.stderr_lines if f"127.0.0.1:{dead}" in line and "is DOWN" in line]
    assert len(downs) == 1, downs
    for _ in range(2 * workers):  # every worker knows the verdict: no request reaches the dead backend
        assert body_of(rsp.port, "h.test") == "live"


@WORKERS
def test_a_route_written_by_another_tool_is_live_within_a_second(run_rsp: Launch, redis_server: RedisServer,
                                                                 named_backend: Callable[[str], HttpBackend],
                                                                 workers: int) -> None:
    """A control panel writes the set itself (no publish): with keyspace notifications on in Redis (the
    operator's opt-in), the host is refreshed at once instead of after the TTL (60 s here)."""
    a, b = named_backend("a"), named_backend("b")
    client = redis_server.client()
    client.config_set("notify-keyspace-events", "Kgs")  # set commands, and DEL
    client.sadd("hostnames:panel.test:backends", f"127.0.0.1:{a.port}")
    rsp = run_rsp(store_config(free_port(), redis_server, ttl=60, workers=workers))
    assert body_of(rsp.port, "panel.test") == "a"
    with client.pipeline(transaction=True) as pipe:  # what the panel does: replace the set, publish nothing
        pipe.delete("hostnames:panel.test:backends")
        pipe.sadd("hostnames:panel.test:backends", f"127.0.0.1:{b.port}")
        pipe.execute()
    wait_until(rsp.port, "panel.test", "b", PROPAGATION_BOUND)
    client.sadd("hostnames:new.test:backends", f"127.0.0.1:{a.port}")
    assert body_of(rsp.port, "new.test") == "a"  # a host asked for the first time is looked up anyway
    client.delete("hostnames:new.test:backends")
    wait_until(rsp.port, "new.test", "status 503", PROPAGATION_BOUND)


@WORKERS
def test_a_config_with_only_a_route_store_needs_no_placeholder_backend(
        run_rsp: Launch, redis_server: RedisServer, named_backend: Callable[[str], HttpBackend], workers: int) -> None:
    a = named_backend("a")
    routes(redis_server, "set", "only.test", f"127.0.0.1:{a.port}")
    port = free_port()
    rsp = run_rsp(f'listen = {{ {{ address = "127.0.0.1", port = {port}, mode = "http" }} }}\n'
                  f'http = {{ access_log = "off" }}\nworkers = {workers}\n'
                  f"route_store = {lua({'url': redis_server.url})}\n")  # no backends, no pools: the defaults
    assert body_of(rsp.port, "only.test") == "a"
    assert body_of(rsp.port, "nowhere.test") == "status 503"


def test_the_template_pool_may_leave_out_backends(run_rsp: Launch, redis_server: RedisServer,
                                                  named_backend: Callable[[str], HttpBackend]) -> None:
    a = named_backend("a")
    routes(redis_server, "set", "tmpl.test", f"127.0.0.1:{a.port}")
    pools = {"apps": {"algorithm": "leastconn", "retries": 0}}  # settings only: the backends are Redis's
    rsp = run_rsp(http_config(free_port(), [], pools=pools, pool="apps",
                              extra=f"workers = 1\nroute_store = {lua({'url': redis_server.url, 'template': 'apps'})}"))
    assert body_of(rsp.port, "tmpl.test") == "a"


@WORKERS
def test_a_reload_keeps_the_routes_the_machine_knows_with_redis_down(
        run_rsp: Launch, redis_server: RedisServer, named_backend: Callable[[str], HttpBackend], workers: int) -> None:
    a = named_backend("a")
    routes(redis_server, "set", "kept.test", f"127.0.0.1:{a.port}")
    sock = f"/tmp/rsp-routestore-{free_port()}.sock"
    rsp = run_rsp(store_config(free_port(), redis_server, workers=workers) + f'admin_socket = "{sock}"\n')
    assert body_of(rsp.port, "kept.test") == "a"
    redis_server.kill()
    assert rsp.wait_for_stderr("unreachable", 5.0) is not None
    result = run_cli("reload", "--admin", sock)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [body_of(rsp.port, "kept.test") for _ in range(2 * workers)] == ["a"] * (2 * workers)
