"""The route store's benchmark: CPU per request routed through Redis (warm local cache) against the same
hosts as static routes, and the time a route change takes to reach two rsp nodes.

    .venv/bin/python bench/run_routestore.py [--hosts 1000] [--duration 5] [--reps 2] [--changes 10]

Targets (one nginx backend pair on loopback, wrk spreading requests over every host, -c 20):
- `static`: `routes` with one rule per host (HOSTS rules; rsp tries rules in order, so this is a linear scan);
- `redis`: the same hosts as Redis sets, no static rule: each request is a dict hit in the store's cache;
- `plain`: no routing at all, one pool (the floor: what routing itself costs).
Targets: redis/static CPU per request within 1.10x; route change propagation to two nodes under 1 s.
Everything started here (redis-server, nginx, rsp, wrk) is stopped in `finally`.
"""

from __future__ import annotations

import argparse
import http.client
import shutil
import sys
import tempfile
import time
from pathlib import Path

import redis

import configs
import procstat
from lib import LOOPBACK, BenchError, Servers, ensure_tools, free_ports, parse_wrk, run_client, wrk_argv

BENCH_DIR = Path(__file__).resolve().parent
VENV_PYTHON = BENCH_DIR.parent / ".venv" / "bin" / "python"
CONNS = 20
WARMUP_SECONDS = 2  # one wrk run over every host before measuring: fills the store's cache
POLL = 0.002  # propagation: how often each node is asked while waiting for the change
PROPAGATION_LIMIT = 5.0  # give up on one change after this long (reported as a failure)
CHANNEL = "rsp:routes"
PREFIX = "hostnames:"

def wrk_script(tmp: Path, count: int) -> Path:
    from lib import WRK_SCRIPT

    body = (
        "local hosts = {}\n"
        f"for i = 0, {count} - 1 do hosts[#hosts + 1] = \"h\" .. i .. \".bench\" end\n"
        "local n = 0\n"
        # wrk's arguments after the URL: the host to start from (every wrk run would start from the first)
        "init = function(args) n = tonumber(args[1] or \"0\") or 0 end\n"
        "request = function()\n"
        "  n = n + 1\n"
        f"  return wrk.format(nil, \"{configs.SMALL_PATH}\", {{ Host = hosts[n % #hosts + 1] }})\n"
        "end\n"
    )
    path = tmp / "hosts.lua"
    path.write_text(WRK_SCRIPT + body)
    return path


def host_backend(i: int, backends: list[int]) -> int:
    return backends[i % len(backends)]


def rsp_configs(tmp: Path, ports: dict[str, int], backends: list[int], hosts: int, redis_url: str) -> dict[str, Path]:
    pools = ", ".join(f'b{p} = {{ backends = {{ "{LOOPBACK}:{p}" }} }}' for p in backends)
    common = 'http = { access_log = "off" }\n'
    out = {}
    rules = ",\n".join(f'  {{ host = "h{i}.bench", pool = "b{host_backend(i, backends)}" }}' for i in range(hosts))
    listen = 'listen = {{ {{ address = "{addr}", port = {port}, mode = "http", pool = "{pool}" }} }}\n'
    for name, port in ports.items():
        if name == "static":
            text = (listen.format(addr=LOOPBACK, port=port, pool="unrouted") + common
                    + f'pools = {{ unrouted = {{ backends = {{ "{LOOPBACK}:1" }} }}, {pools} }}\n'
                    + f"routes = {{\n{rules}\n}}\n")
        elif name == "plain":
            every = ", ".join(f'"{LOOPBACK}:{p}"' for p in backends)
            text = (listen.format(addr=LOOPBACK, port=port, pool="all") + common
                    + f"pools = {{ all = {{ backends = {{ {every} }} }} }}\n")
        else:  # redis and redis2 (the second node of the propagation test)
            text = (listen.format(addr=LOOPBACK, port=port, pool="unrouted") + common
                    + f'pools = {{ unrouted = {{ backends = {{ "{LOOPBACK}:1" }} }} }}\n'
                    + f'route_store = {{ url = "{redis_url}", template = "unrouted", ttl = 5 }}\n')
        path = tmp / f"{name}.lua"
        path.write_text(text)
        out[name] = path
    return out


def status_of(port: int, host: str) -> int:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
    try:
        conn.request("GET", configs.SMALL_PATH, headers={"Host": host})
        response = conn.getresponse()
        response.read()
        return response.status
    except OSError:
        return 0
    finally:
        conn.close()


def propagation(client: redis.Redis, nodes: list[int], changes: int, live: int) -> list[float]:
    """Seconds from each write (+ publish) until every node answers by the new route: the host alternates
    between a live backend (200) and a dead one (502)."""
    key = f"{PREFIX}prop.bench:backends"
    times = []
    for n in range(changes):
        target, wanted = (f"{LOOPBACK}:{live}", 200) if n % 2 == 0 else (f"{LOOPBACK}:1", 502)
        pipe = client.pipeline(transaction=True)
        pipe.delete(key)
        pipe.sadd(key, target)
        pipe.execute()
        start = time.monotonic()
        client.publish(CHANNEL, "prop.bench")
        pending = set(nodes)
        while pending:
            pending = {port for port in pending if status_of(port, "prop.bench") != wanted}
            elapsed = time.monotonic() - start
            if elapsed > PROPAGATION_LIMIT:
                raise BenchError(f"change {n} not seen by nodes {sorted(pending)} after {elapsed:.1f} s")
            if pending:
                time.sleep(POLL)
        times.append(time.monotonic() - start)
        time.sleep(0.1)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--changes", type=int, default=10)
    args = parser.parse_args(argv)
    tools = ensure_tools(["nginx", "wrk"])
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        raise BenchError("redis-server is missing: run scripts/bootstrap")
    tmp = Path(tempfile.mkdtemp(prefix="rsp-bench-routestore-"))
    servers = Servers(tmp)
    try:
        b1, b2, redis_port, p_static, p_redis, p_redis2, p_plain = free_ports(7)
        backends = [b1, b2]
        servers.start("redis", [redis_server, "--port", str(redis_port), "--bind", LOOPBACK, "--save", "",
                                "--appendonly", "no", "--dir", str(tmp)], redis_port)
        docroot = configs.write_docroot(tmp)
        for i, port in enumerate(backends):
            servers.start(f"nginx{i}", configs.nginx_backend(tools["nginx"], tmp, f"nginx{i}", port, docroot), port)
        client = redis.Redis(host=LOOPBACK, port=redis_port, decode_responses=True)
        pipe = client.pipeline(transaction=False)
        for i in range(args.hosts):
            pipe.sadd(f"{PREFIX}h{i}.bench:backends", f"{LOOPBACK}:{host_backend(i, backends)}")
        pipe.execute()
        ports = {"static": p_static, "redis": p_redis, "plain": p_plain, "redis2": p_redis2}
        paths = rsp_configs(tmp, ports, backends, args.hosts, f"redis://{LOOPBACK}:{redis_port}/0")
        rsp = {name: servers.start(f"rsp-{name}", [str(VENV_PYTHON), "-m", "rsp", str(path)], ports[name])
               for name, path in paths.items()}
        script = wrk_script(tmp, args.hosts)
        targets = ["static", "redis", "plain"]
        for name in targets:  # warm-up: every host routed once (the store's cache is then warm)
            run_client(wrk_argv(tools["wrk"], script, f"http://{LOOPBACK}:{ports[name]}/", CONNS,
                                WARMUP_SECONDS), WARMUP_SECONDS + 60)
        cpu: dict[str, list[float]] = {name: [] for name in targets}
        rps: dict[str, list[float]] = {name: [] for name in targets}
        for _ in range(args.reps):
            for name in targets:  # interleaved: a noisy moment hurts every target alike
                before = procstat.tree_seconds([rsp[name].pid])[rsp[name].pid]
                out = run_client(wrk_argv(tools["wrk"], script, f"http://{LOOPBACK}:{ports[name]}/", CONNS,
                                          args.duration), args.duration + 60)
                after = procstat.tree_seconds([rsp[name].pid])[rsp[name].pid]
                result = parse_wrk(out)
                if result.errors:
                    raise BenchError(f"{name}: {result.errors} errors (non-2xx or socket) in {result.requests}")
                cpu[name].append((after - before) / result.requests * 1e6)
                rps[name].append(result.rps)
        print(f"# route store benchmark: {args.hosts} hosts, wrk -c{CONNS} -d{args.duration}s x {args.reps}")
        print("| target | CPU us/request (best) | all runs | req/s (best) |")
        print("|---|---|---|---|")
        for name in targets:
            print(f"| {name} | {min(cpu[name]):.1f} | {', '.join(f'{v:.1f}' for v in cpu[name])} | "
                  f"{max(rps[name]):.0f} |")
        ratio_static = min(cpu["redis"]) / min(cpu["static"])
        ratio_plain = min(cpu["redis"]) / min(cpu["plain"])
        print(f"\nredis / static routes: {ratio_static:.2f}x (target within 1.10x)")
        print(f"redis / no routing:    {ratio_plain:.2f}x")
        times = propagation(client, [ports["redis"], ports["redis2"]], args.changes, b1)
        times.sort()
        median = times[len(times) // 2] * 1e3
        print(f"\nroute change propagation to 2 nodes ({len(times)} changes): median {median:.1f} ms,"
              f" max {times[-1] * 1e3:.1f} ms (target < 1000 ms; includes the client's poll of {POLL * 1e3:.0f} ms)")
        client.close()
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    finally:
        servers.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
