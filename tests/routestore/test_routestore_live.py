"""The route store against a real redis-server and real rsp processes on loopback (issue 14's tests)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable

import pytest

from support.h2_client import H2Client
from support.http_backends import HttpBackend
from support.http_client import get, http_config, lua
from support.redis_server import RedisServer
from support.rsp_process import RspProcess, free_port, rsp_command, run_cli

from .conftest import PROPAGATION_BOUND, body_of, routes, store_config, wait_until

Launch = Callable[..., RspProcess]


def test_routes_live_from_redis(run_rsp: Launch, redis_server: RedisServer,
                                named_backend: Callable[[str], HttpBackend]) -> None:
    a, b = named_backend("a"), named_backend("b")
    redis_server.client().sadd("hostnames:a.test:backends", f"127.0.0.1:{a.port}")
    redis_server.client().sadd("hostnames:b.test:backends", f"127.0.0.1:{b.port}")
    rsp = run_rsp(store_config(free_port(), redis_server))
    assert body_of(rsp.port, "a.test") == "a"
    assert body_of(rsp.port, "B.Test:80") == "b"  # case and port do not matter (RFC 9110 §4.2.3)
    assert body_of(rsp.port, "c.test") == "status 503"  # no route, no default: the missing status
    # A known host is a dict hit: Redis sees no command per request once it is cached.
    client = redis_server.client()
    before = int(client.info("stats")["total_commands_processed"])
    for _ in range(20):
        assert body_of(rsp.port, "a.test") == "a"
    after = int(client.info("stats")["total_commands_processed"])
    assert after - before < 10, f"{after - before} Redis commands for 20 requests to a known host"


def test_static_routes_come_first(run_rsp: Launch, redis_server: RedisServer,
                                  named_backend: Callable[[str], HttpBackend]) -> None:
    static, dynamic = named_backend("static"), named_backend("dynamic")
    redis_server.client().sadd("hostnames:s.test:backends", f"127.0.0.1:{dynamic.port}")
    settings = {"url": redis_server.url, "template": "default"}
    config = http_config(free_port(), ["127.0.0.1:1"], pools={"st": {"backends": [f"127.0.0.1:{static.port}"]}},
                         routes=[{"host": "s.test", "path": "/static", "pool": "st"}],
                         extra=f"route_store = {lua(settings)}")
    rsp = run_rsp(config)
    assert get(rsp.port, "/static/x", host="s.test").body.startswith(b"static ")
    assert get(rsp.port, "/other", host="s.test").body.startswith(b"dynamic ")


def test_two_instances_see_a_change_within_a_second(run_rsp: Launch, redis_server: RedisServer,
                                                    named_backend: Callable[[str], HttpBackend]) -> None:
    a, b = named_backend("a"), named_backend("b")
    routes(redis_server, "set", "app.test", f"127.0.0.1:{a.port}")
    # A long TTL: only the push can make the change visible within the bound.
    first = run_rsp(store_config(free_port(), redis_server, ttl=60))
    second = run_rsp(store_config(free_port(), redis_server, ttl=60))
    assert body_of(first.port, "app.test") == "a" and body_of(second.port, "app.test") == "a"
    out = routes(redis_server, "set", "app.test", f"127.0.0.1:{b.port}")
    changed = time.monotonic()
    assert "2 subscriber(s)" in out
    wait_until(first.port, "app.test", "b", PROPAGATION_BOUND)
    wait_until(second.port, "app.test", "b", PROPAGATION_BOUND - (time.monotonic() - changed))
    assert time.monotonic() - changed < PROPAGATION_BOUND


def test_workers_share_the_store(run_rsp: Launch, redis_server: RedisServer,
                                 named_backend: Callable[[str], HttpBackend]) -> None:
    """workers = 2: one store per machine (the master's: one cache, one subscription), and a change reaches
    both workers in time."""
    a, b = named_backend("a"), named_backend("b")
    routes(redis_server, "set", "app.test", f"127.0.0.1:{a.port}")
    rsp = run_rsp(store_config(free_port(), redis_server, ttl=60, workers=2))
    # New connections spread over both workers' accept loops; every one is routed.
    assert all(body_of(rsp.port, "app.test") == "a" for _ in range(10))
    out = routes(redis_server, "set", "app.test", f"127.0.0.1:{b.port}")
    changed = time.monotonic()
    assert "1 subscriber(s)" in out  # the master's, for the machine
    wait_until(rsp.port, "app.test", "b", PROPAGATION_BOUND)
    time.sleep(max(0.0, PROPAGATION_BOUND - (time.monotonic() - changed)))
    assert all(body_of(rsp.port, "app.test") == "b" for _ in range(10))


def test_a_removed_host_stops_within_a_second(run_rsp: Launch, redis_server: RedisServer,
                                              named_backend: Callable[[str], HttpBackend]) -> None:
    a = named_backend("a")
    routes(redis_server, "set", "gone.test", f"127.0.0.1:{a.port}")
    rsp = run_rsp(store_config(free_port(), redis_server, ttl=60))
    assert body_of(rsp.port, "gone.test") == "a"
    routes(redis_server, "remove", "gone.test")
    wait_until(rsp.port, "gone.test", "status 503", PROPAGATION_BOUND)


def test_the_default_route(run_rsp: Launch, redis_server: RedisServer,
                           named_backend: Callable[[str], HttpBackend]) -> None:
    a, fallback = named_backend("a"), named_backend("fallback")
    routes(redis_server, "set", "a.test", f"127.0.0.1:{a.port}")
    rsp = run_rsp(store_config(free_port(), redis_server, missing_status=502))
    assert body_of(rsp.port, "nobody.test") == "status 502"  # the configured missing status
    routes(redis_server, "default", f"127.0.0.1:{fallback.port}")
    # The "*" push refreshes the default route and the negative entry of nobody.test.
    wait_until(rsp.port, "nobody.test", "fallback", PROPAGATION_BOUND)
    assert body_of(rsp.port, "other.test") == "fallback"
    assert body_of(rsp.port, "a.test") == "a"


def test_default_off_ignores_the_default_key(run_rsp: Launch, redis_server: RedisServer,
                                             named_backend: Callable[[str], HttpBackend]) -> None:
    fallback = named_backend("fallback")
    routes(redis_server, "default", f"127.0.0.1:{fallback.port}")
    rsp = run_rsp(store_config(free_port(), redis_server, default=False))
    assert body_of(rsp.port, "nobody.test") == "status 503"


def test_redis_killed_during_traffic(run_rsp: Launch, redis_server: RedisServer,
                                     named_backend: Callable[[str], HttpBackend]) -> None:
    a, b, fallback = named_backend("a"), named_backend("b"), named_backend("fallback")
    routes(redis_server, "set", "a.test", f"127.0.0.1:{a.port}")
    routes(redis_server, "default", f"127.0.0.1:{fallback.port}")
    rsp = run_rsp(store_config(free_port(), redis_server, ttl=0.2))  # a short TTL: refreshes fail meanwhile
    assert body_of(rsp.port, "a.test") == "a"
    redis_server.kill()
    assert rsp.wait_for_stderr("unreachable", 5.0) is not None
    deadline = time.monotonic() + 1.5  # several TTLs and reconnect attempts
    served = 0
    while time.monotonic() < deadline:
        assert body_of(rsp.port, "a.test") == "a"  # the last known route, stale but kept
        served += 1
    assert served > 10
    assert body_of(rsp.port, "never-seen.test") == "fallback"  # the last known default route, without waiting
    outage_lines = [line for line in rsp.stderr_lines if "unreachable" in line]
    assert len(outage_lines) == 1, outage_lines  # logged once per outage, not per retry or per request
    redis_server.start()  # the same port, empty (no persistence)
    redis_server.client().sadd("hostnames:a.test:backends", f"127.0.0.1:{b.port}")
    assert rsp.wait_for_stderr("is back after", 10.0) is not None
    wait_until(rsp.port, "a.test", "b", 5.0)  # the reconnect refreshed every cached route
    assert rsp.alive


def test_bad_data_is_logged_and_skipped(run_rsp: Launch, redis_server: RedisServer,
                                        named_backend: Callable[[str], HttpBackend]) -> None:
    a, fallback = named_backend("a"), named_backend("fallback")
    client = redis_server.client()
    client.sadd("hostnames:mixed.test:backends", "garbage", "10.0.0.1:99999", f"127.0.0.1:{a.port}")
    client.set("hostnames:wrongtype.test:backends", "127.0.0.1:80")  # a string, not a set
    client.sadd("hostnames:onlyjunk.test:backends", "not an address", "::::")
    client.sadd("hostnames:httpDefault:backends", f"127.0.0.1:{fallback.port}")
    rsp = run_rsp(store_config(free_port(), redis_server))
    assert body_of(rsp.port, "mixed.test") == "a"  # the good member is used
    assert body_of(rsp.port, "wrongtype.test") == "fallback"  # unusable key: as if absent
    assert body_of(rsp.port, "onlyjunk.test") == "fallback"
    assert rsp.wait_for_stderr(r"bad data.*mixed\.test.*garbage", 5.0) is not None
    assert rsp.wait_for_stderr(r"bad data.*wrongtype\.test.*WRONGTYPE", 5.0) is not None
    for _ in range(5):  # asked again: the log stays quiet (rate-limited), rsp keeps answering
        assert body_of(rsp.port, "wrongtype.test") == "fallback"
    assert sum("wrongtype.test" in line for line in rsp.stderr_lines) == 1
    assert rsp.alive


def test_show_backends_lists_dynamic_pools(run_rsp: Launch, redis_server: RedisServer, tmp_path: object,
                                           named_backend: Callable[[str], HttpBackend]) -> None:
    a = named_backend("a")
    routes(redis_server, "set", "a.test", f"127.0.0.1:{a.port}")
    sock = f"/tmp/rsp-routestore-{free_port()}.sock"
    config = store_config(free_port(), redis_server) + f'admin_socket = "{sock}"\n'
    rsp = run_rsp(config)
    assert body_of(rsp.port, "a.test") == "a"
    result = run_cli("--admin", sock, "show", "backends")
    assert result.returncode == 0, result.stderr
    assert f"redis:127.0.0.1:{a.port}" in result.stdout


def test_cli(redis_server: RedisServer, tmp_path: object) -> None:
    assert "a.test 10.0.0.1:80 10.0.0.2:80" in routes(redis_server, "set", "A.test", "10.0.0.1:80", "10.0.0.2:80")
    routes(redis_server, "add", "a.test", "[::1]:8080")
    assert routes(redis_server, "show", "a.test").strip() == "a.test 10.0.0.1:80 10.0.0.2:80 [::1]:8080"
    routes(redis_server, "remove", "a.test", "10.0.0.2:80")
    routes(redis_server, "set", "b.test", "10.0.0.3:80")
    assert routes(redis_server, "list").splitlines() == ["a.test 10.0.0.1:80 [::1]:8080", "b.test 10.0.0.3:80"]
    routes(redis_server, "remove", "b.test")
    assert "no route" in routes(redis_server, "show", "b.test")
    routes(redis_server, "default", "10.0.0.9:80")
    assert routes(redis_server, "default").strip() == "httpDefault 10.0.0.9:80"
    assert redis_server.client().smembers("hostnames:httpDefault:backends") == {"10.0.0.9:80"}
    bad = run_cli("routes", "--redis", redis_server.url, "set", "c.test", "nonsense")
    assert bad.returncode == 1 and "not a backend" in bad.stderr
    down = run_cli("routes", "--redis", f"redis://127.0.0.1:{free_port()}/0", "list")
    assert down.returncode == 1 and "ConnectionError" in down.stderr


def test_cli_reads_the_config(redis_server: RedisServer, tmp_path: pytest.TempPathFactory) -> None:
    path = f"{tmp_path}/rsp.lua"
    with open(path, "w") as fh:
        fh.write(store_config(free_port(), redis_server, prefix="apps:", channel="mine"))
    result = run_cli("routes", "--config", path, "set", "x.test", "10.0.0.1:80")
    assert result.returncode == 0, result.stderr
    assert "invalidation published on mine" in result.stdout
    assert redis_server.client().smembers("apps:x.test:backends") == {"10.0.0.1:80"}


def backend_states(sock: str, pool: str) -> dict[str, str]:
    result = run_cli("--admin", sock, "show", "backends")
    assert result.returncode == 0, result.stderr
    reply = json.loads(result.stdout)
    return {b["address"]: f"{b['state']}/{b['last_check']}" for b in reply.get(pool, [])}


@pytest.mark.parametrize("kind", ["active", "passive"])
def test_template_health_checks_apply_to_redis_backends(run_rsp: Launch, redis_server: RedisServer, kind: str,
                                                        named_backend: Callable[[str], HttpBackend]) -> None:
    live, dead = named_backend("live"), free_port()  # nothing listens on `dead`
    routes(redis_server, "set", "h.test", f"127.0.0.1:{live.port}", f"127.0.0.1:{dead}")
    if kind == "active":
        template = {"backends": ["127.0.0.1:1"], "passive_failures": 0,
                    "health": {"kind": "tcp", "interval": 0.2, "timeout": 0.2, "rise": 1, "fall": 1}}
    else:
        template = {"backends": ["127.0.0.1:1"], "passive_failures": 1, "passive_cooldown": 60}
    sock = f"/tmp/rsp-routestore-{free_port()}.sock"
    settings = {"url": redis_server.url, "template": "tmpl"}
    config = http_config(free_port(), ["127.0.0.1:1"], pools={"tmpl": template},
                         # One process: the dynamic pools are read through the admin socket (module docstring).
                         extra=f"workers = 1\nroute_store = {lua(settings)}\nadmin_socket = \"{sock}\"\n")
    rsp = run_rsp(config)
    assert body_of(rsp.port, "h.test") == "live"
    pool = "redis:" + ",".join(sorted(f"127.0.0.1:{p}" for p in (live.port, dead)))
    deadline = time.monotonic() + 5.0
    while True:
        for _ in range(3):  # traffic: retries take the request to the live backend (and passive ejection hears)
            assert body_of(rsp.port, "h.test") == "live"
        states = backend_states(sock, pool)
        if states.get(f"127.0.0.1:{dead}", "").startswith("down"):
            break
        assert time.monotonic() < deadline, states
        time.sleep(0.1)
    assert states[f"127.0.0.1:{live.port}"].startswith("up")
    if kind == "active":
        assert states[f"127.0.0.1:{dead}"] != "down/"  # the checker's verdict, with its last result


def test_a_body_sent_while_the_route_is_looked_up_reaches_the_backend(
        run_rsp: Launch, redis_server: RedisServer, named_backend: Callable[[str], HttpBackend]) -> None:
    a = named_backend("a")
    routes(redis_server, "set", "post.test", f"127.0.0.1:{a.port}")
    rsp = run_rsp(store_config(free_port(), redis_server))
    body = b"x" * 100_000  # arrives while the first request for the host waits for its lookup
    response = get(rsp.port, "/upload", host="post.test", method="POST", body=body)
    assert response.status == 200 and response.body.startswith(b"a POST /upload ")
    assert b"body=100000" in response.body


def test_cli_takes_dash_c_and_the_default_config(redis_server: RedisServer, tmp_path: pytest.TempPathFactory) -> None:
    """`rsp routes -c CONFIG` as every command names its config; with no -c nor --redis, $RSP_CONFIG's
    route_store is used."""
    path = f"{tmp_path}/rsp.lua"
    with open(path, "w") as fh:
        fh.write(store_config(free_port(), redis_server, prefix="apps:", channel="mine"))
    result = run_cli("routes", "-c", path, "set", "y.test", "10.0.0.2:80")
    assert result.returncode == 0, result.stderr
    env = {**os.environ, "RSP_CONFIG": path}
    listed = subprocess.run(rsp_command("routes", "show", "y.test"), capture_output=True, text=True, timeout=30,
                            env=env, check=False)
    assert listed.returncode == 0, listed.stderr
    assert "10.0.0.2:80" in listed.stdout


def test_http2_streams_are_routed_by_the_store(run_rsp: Launch, redis_server: RedisServer,
                                               named_backend: Callable[[str], HttpBackend]) -> None:
    """An HTTP/2 stream on a listener without filters is routed as an HTTP/1 request is (no filter run):
    a host the store knows goes to its backends after one lookup (the stream waits for it), one it does not
    gets the missing status, through the stream."""
    a = named_backend("a")
    redis_server.client().sadd("hostnames:a.test:backends", f"127.0.0.1:{a.port}")
    config = store_config(free_port(), redis_server).replace('mode = "http",',
                                                             'mode = "http", http2 = "prior-knowledge",')
    rsp = run_rsp(config)
    for _ in range(2):  # the first waits for the lookup, the second is a dict hit
        with H2Client(rsp.port, authority="a.test") as client:
            (response,) = client.exchange([("GET", "/x", [], b"")])
        assert response.status == 200 and response.body.startswith(b"a GET /x "), response
    with H2Client(rsp.port, authority="c.test") as client:
        (missing,) = client.exchange([("GET", "/x", [], b"")])
    assert missing.status == 503, missing
