"""Hosts in the route store, 1,000 / 10,000 / 100,000: CPU per request, and the CPU the hosts cost at rest.

    .venv/bin/python bench/scale_routestore.py                       # every size, rsp and HAProxy
    .venv/bin/python bench/scale_routestore.py --sizes 1000 --duration 3

One redis-server (no persistence) holds N hosts `h<i>.bench`, each a set naming the benchmark's nginx; rsp
routes them through its route store (`route_store`, default ttl and negative_ttl, `workers = 1`); HAProxy
gets the same N hosts in a `map` (its usual form for many hosts: it has no route store). wrk requests every
host in turn (bench/run_routestore.py's script), -c20, after a warm-up that has asked for every host once.
Two figures per size:

- CPU µs per request: utime+stime of the proxy's process tree per request over the run (rsp: master and
  worker, the store's TTL refreshes included; the master's share beside it), and redis-server's CPU per
  request;
- at rest: CPU ms per second of the proxy's tree and of redis-server with N hosts cached and no traffic
  (`--rest` seconds): the sweeps and refreshes that grow with the number of hosts, whatever the traffic.

Only 127.0.0.1 is used; every process started here (redis-server, nginx, the proxies, wrk) is stopped by pid.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))

import configs
import lib
import procstat
import run_routestore

ROOT = Path(__file__).resolve().parent.parent
SIZES = (1000, 10_000, 100_000)
CONNS = 20
WARMUP_LIMIT = 180.0  # seconds of warm-up at most (100,000 first lookups go through Redis)
WARMUP_CHUNK = 5  # seconds per warm-up wrk run; runs repeat until every host was asked once


def rsp_config(tmp: Path, port: int, redis_url: str) -> Path:
    conf = tmp / f"rsp-{port}.lua"
    conf.write_text(f"""\
listen = {{ {{ address = "{lib.LOOPBACK}", port = {port}, mode = "http", pool = "unrouted" }} }}
pools = {{ unrouted = {{ backends = {{ "{lib.LOOPBACK}:1" }} }} }}
route_store = {{ url = "{redis_url}", template = "unrouted" }}
http = {{ access_log = "off" }}
workers = 1
""")
    return conf


def haproxy_config(tmp: Path, port: int, backend: int, hosts: int) -> list[str]:
    argv = configs.haproxy(shutil.which("haproxy") or "haproxy", tmp, f"haproxy-{port}", port, [backend], "http")
    cfg = Path(argv[-1])
    hosts_map = tmp / f"hosts-{hosts}.map"
    hosts_map.write_text("".join(f"h{i}.bench be\n" for i in range(hosts)))
    cfg.write_text(cfg.read_text().replace(
        "    default_backend be\n",
        f"    use_backend %[req.hdr(host),lower,map({hosts_map},nowhere)]\n    default_backend be\n"))
    return argv


def fill(client: redis.Redis, hosts: int, backend: int) -> None:
    client.flushdb()
    pipe = client.pipeline(transaction=False)
    for i in range(hosts):
        pipe.sadd(f"{run_routestore.PREFIX}h{i}.bench:backends", f"{lib.LOOPBACK}:{backend}")
        if i % 10_000 == 9_999:
            pipe.execute()
    pipe.execute()


def tree_seconds(pid: int) -> float:
    return procstat.tree_seconds([pid])[pid]


def own_seconds(pid: int) -> float:
    """CPU seconds of `pid` alone (rsp's master: the store and its refreshes; HAProxy: all of it)."""
    with open(f"/proc/{pid}/stat") as f:
        return procstat.parse_stat(f.read()).ticks / procstat.CLK_TCK


def warm_up(wrk: str, script: Path, port: int, hosts: int, passes: int) -> None:
    """wrk over every host `passes` times (the first asks the store for each; a host whose first request timed
    out is asked again in the next pass), within WARMUP_LIMIT. Each wrk run starts from the host where the
    previous one stopped (the script's argument): run from the first host each time, the runs asked the cached
    hosts again and again and, at 100,000 hosts, never reached the last ~40,000, whose first lookups the
    measured run then paid (docs/performance.md, issue 23)."""
    asked = 0
    deadline = time.monotonic() + WARMUP_LIMIT
    while asked < passes * hosts and time.monotonic() < deadline:
        argv = [*lib.wrk_argv(wrk, script, f"http://{lib.LOOPBACK}:{port}/", CONNS, WARMUP_CHUNK), str(asked % hosts)]
        out = lib.run_client(argv, WARMUP_CHUNK + 60)
        asked += lib.parse_wrk(out).requests
    if asked < passes * hosts:
        print(f"  warm-up: only {asked} of {passes} x {hosts} requests in {WARMUP_LIMIT:.0f} s", file=sys.stderr)


def measure(wrk: str, script: Path, port: int, pid: int, redis_pid: int, duration: int,
            rest: int) -> tuple[float, float, float, float, float]:
    """(proxy µs/request, redis µs/request, proxy ms/s at rest, redis ms/s at rest, the master's share of the
    proxy's CPU during the run)."""
    p0, r0, m0 = tree_seconds(pid), tree_seconds(redis_pid), own_seconds(pid)
    result = lib.parse_wrk(lib.run_client(lib.wrk_argv(wrk, script, f"http://{lib.LOOPBACK}:{port}/", CONNS,
                                                       duration), duration + 60))
    p1, r1, m1 = tree_seconds(pid), tree_seconds(redis_pid), own_seconds(pid)
    if result.errors:
        print(f"  {result.errors} errors in {result.requests} requests", file=sys.stderr)
    n = max(result.requests, 1)
    time.sleep(rest)
    p2, r2 = tree_seconds(pid), tree_seconds(redis_pid)
    return ((p1 - p0) / n * 1e6, (r1 - r0) / n * 1e6, (p2 - p1) / rest * 1e3, (r2 - r1) / rest * 1e3,
            (m1 - m0) / (p1 - p0) if p1 > p0 else 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    ap.add_argument("--targets", default="rsp,haproxy")
    ap.add_argument("--duration", type=int, default=5, help="seconds of the measured wrk run")
    ap.add_argument("--rest", type=int, default=5, help="seconds at rest measured after it")
    ap.add_argument("--warm-passes", type=int, default=1, help="warm-up passes over every host")
    opts = ap.parse_args()
    sizes = [int(s) for s in opts.sizes.split(",")]
    targets = opts.targets.split(",")
    wrk = shutil.which("wrk") or "wrk"
    rows: list[tuple[int, str, tuple[float, float, float, float, float]]] = []
    with tempfile.TemporaryDirectory(prefix="rsp-scale-routestore-") as d:
        tmp = Path(d)
        servers = lib.Servers(tmp)
        try:
            backend, redis_port, port = lib.free_ports(3)
            redis_proc = servers.start("redis", [shutil.which("redis-server") or "redis-server", "--port",
                                                 str(redis_port), "--bind", lib.LOOPBACK, "--save", "",
                                                 "--appendonly", "no", "--dir", str(tmp)], redis_port)
            docroot = configs.write_docroot(tmp)
            servers.start("backend", configs.nginx_backend(shutil.which("nginx") or "nginx", tmp, "backend", backend,
                                                           docroot), backend)
            client = redis.Redis(host=lib.LOOPBACK, port=redis_port)
            for size in sizes:
                fill(client, size, backend)
                script = run_routestore.wrk_script(tmp, size)
                for target in targets:
                    if target == "rsp":
                        argv = [sys.executable, "-m", "rsp",
                                str(rsp_config(tmp, port, f"redis://{lib.LOOPBACK}:{redis_port}/0"))]
                    else:
                        argv = haproxy_config(tmp, port, backend, size)
                    proxy = servers.start(f"{target}-{size}", argv, port, cwd=ROOT)
                    try:
                        warm_up(wrk, script, port, size, opts.warm_passes)
                        figures = measure(wrk, script, port, proxy.pid, redis_proc.pid, opts.duration, opts.rest)
                    finally:
                        lib.stop_process(proxy.proc)
                        servers.started.remove(proxy)
                    rows.append((size, target, figures))
                    print(f"  {size} {target}: {figures[0]:.1f} us/req (redis {figures[1]:.1f}, master "
                          f"{figures[4]:.0%}), at rest {figures[2]:.0f} ms/s (redis {figures[3]:.0f})",
                          file=sys.stderr, flush=True)
            client.close()
        finally:
            servers.stop_all()
    print(f"\nhosts in the route store: wrk -c{CONNS} over every host, {opts.duration} s; at rest {opts.rest} s; "
          "rsp workers = 1, HAProxy nbthread 1 with a map\n")
    print("| hosts | target | CPU µs/request | x smallest | master's share | redis µs/request | at rest, ms/s | "
          "redis at rest, ms/s |")
    print("|--:|---|--:|--:|--:|--:|--:|--:|")
    for size, target, (us, redis_us, rest_ms, redis_rest, master) in rows:
        smallest = next(r[2][0] for r in rows if r[1] == target)
        share = f"{master:.0%}" if target == "rsp" else "—"
        print(f"| {size} | {target} | {us:.1f} | {us / smallest:.2f}x | {share} | {redis_us:.1f} | {rest_ms:.0f} | "
              f"{redis_rest:.0f} |")


if __name__ == "__main__":
    main()
