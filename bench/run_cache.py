"""The response cache against nginx proxy_cache, HAProxy's cache and Varnish, on one nginx backend.

    python bench/run_cache.py [--duration S] [--conns N]      # run from the repository root, ~2 min

Each proxy runs on one core's worth of processes (rsp workers = 1, nginx one worker, HAProxy nbthread 1,
Varnish with its default thread pools: it is the one that cannot be held to one thread, and its figure is
its whole process tree's CPU). The backend serves /1k and /100k with `Cache-Control: max-age=3600` and an
ETag. For every proxy and object: one warming request, then `wrk -t1 -cN` for S seconds of hits; the figure
that compares is **hits per CPU second** of the proxy's process tree (from /proc; the load generator and
the backend share the machine), with requests per second and p50 latency beside it.

The miss cost: rsp with the cache and without it, every request a different target (`?v=N`), so with the
cache each one is a miss that is stored; the figure is rsp's CPU per request, cache / no cache.

Varnish (Debian's `varnish`) is skipped with a note when varnishd is not installed. Everything started here
is stopped in `finally` (process groups, by pid).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import urllib.request
from pathlib import Path

import configs
import procstat
from lib import (
    LOOPBACK,
    WRK_SCRIPT,
    WRK_VARIED_SCRIPT,
    Servers,
    ensure_tools,
    free_ports,
    parse_wrk,
    run_client,
    wrk_argv,
)

OBJECTS = {"/1k": 1024, "/100k": 100 * 1024}
CACHE_SIZE_MB = 256


def backend_conf(nginx: str, tmp: Path, port: int) -> list[str]:
    root = tmp / "www"
    root.mkdir()
    for path, size in OBJECTS.items():
        (root / path.lstrip("/")).write_bytes(b"c" * size)
    for p in (tmp, root, *root.iterdir()):
        p.chmod(0o755 if p.is_dir() else 0o644)
    argv = configs.nginx_backend(nginx, tmp, "backend", port, root)
    conf = Path(argv[-1])
    text = conf.read_text().replace(
        "location / { return 404; }",
        'location / { add_header Cache-Control "max-age=3600"; }')
    conf.write_text(text)
    return argv


def nginx_cache_conf(nginx: str, tmp: Path, port: int, backend: int) -> list[str]:
    argv = configs.nginx_proxy(nginx, tmp, "nginx-cache", port, [backend], "roundrobin")
    conf = Path(argv[-1])
    text = conf.read_text()
    text = text.replace("    upstream be {", f"    proxy_cache_path {tmp}/nginx-cache levels=1:2 keys_zone=c:16m "
                        f"max_size={CACHE_SIZE_MB}m;\n    upstream be {{")
    text = text.replace("            proxy_pass http://be;",
                        "            proxy_pass http://be;\n            proxy_cache c;")
    conf.write_text(text)
    return argv


def haproxy_cache_conf(haproxy: str, tmp: Path, port: int, backend: int) -> list[str]:
    argv = configs.haproxy(haproxy, tmp, "haproxy-cache", port, [backend], "http")
    conf = Path(argv[-1])
    text = conf.read_text().replace("backend be\n", "backend be\n    http-request cache-use c\n"
                                    "    http-response cache-store c\n")
    text += f"cache c\n    total-max-size {CACHE_SIZE_MB}\n    max-object-size 200000\n    max-age 3600\n"
    conf.write_text(text)
    return argv


def rsp_conf(tmp: Path, port: int, backend: int, cache: bool) -> list[str]:
    name = "rsp-cache" if cache else "rsp"
    conf = configs.rsp_config(tmp, name, port, [backend], "http")
    text = conf.read_text()
    if cache:
        text = text.replace('mode = "http" }', 'mode = "http", cache = "c" }')
        text += f'caches = {{ c = {{ size = "{CACHE_SIZE_MB}m", path = "{tmp}/rsp-cache.lmdb" }} }}\n'
    conf.write_text(text)
    return [sys.executable, "-m", "rsp", str(conf)]


def varnish_argv(varnishd: str, tmp: Path, port: int, backend: int) -> list[str]:
    # -F foreground, -j none: no privilege separation (the harness's own user), -n its own work dir.
    return [varnishd, "-F", "-j", "none", "-n", str(tmp / "varnish"), "-a", f"{LOOPBACK}:{port}",
            "-b", f"{LOOPBACK}:{backend}", "-s", f"malloc,{CACHE_SIZE_MB}m"]


def measure(wrk: str, script: Path, pid: int, port: int, path: str, conns: int,
            duration: int) -> tuple[float, float, float, int]:
    """(requests per CPU second of the proxy, requests per second, p50 ms, errors)."""
    url = f"http://{LOOPBACK}:{port}{path}"
    urllib.request.urlopen(url, timeout=10).read()  # warm: the one miss
    before = procstat.tree_seconds([pid])[pid]
    result = parse_wrk(run_client(wrk_argv(wrk, script, url, conns, duration), duration + 60))
    cpu = procstat.tree_seconds([pid])[pid] - before
    return (result.requests / cpu if cpu else 0.0, result.rps, result.p50_ms, result.errors)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--conns", type=int, default=10)
    parser.add_argument("--reps", type=int, default=1, help="interleaved runs; medians are reported")
    args = parser.parse_args()
    tools = ensure_tools(["nginx", "haproxy", "wrk"])
    varnishd = shutil.which("varnishd") or shutil.which("varnishd", path="/usr/sbin")
    with tempfile.TemporaryDirectory(prefix="rsp-bench-cache-") as tmpdir:
        tmp = Path(tmpdir)
        script = tmp / "report.lua"
        script.write_text(WRK_SCRIPT)
        varied = tmp / "varied.lua"
        varied.write_text(WRK_VARIED_SCRIPT)
        servers = Servers(tmp)
        ports = free_ports(7)
        try:
            servers.start("backend", backend_conf(tools["nginx"], tmp, ports[0]), ports[0])
            proxies = [
                ("rsp cache", servers.start("rsp-cache", rsp_conf(tmp, ports[1], ports[0], True), ports[1])),
                ("nginx proxy_cache", servers.start(
                    "nginx-cache", nginx_cache_conf(tools["nginx"], tmp, ports[2], ports[0]), ports[2])),
                ("haproxy cache", servers.start(
                    "haproxy-cache", haproxy_cache_conf(tools["haproxy"], tmp, ports[3], ports[0]), ports[3])),
            ]
            if varnishd:
                proxies.append(("varnish", servers.start(
                    "varnish", varnish_argv(varnishd, tmp, ports[4], ports[0]), ports[4])))
            plain = servers.start("rsp", rsp_conf(tmp, ports[5], ports[0], False), ports[5])
            # Interleaved: each rep runs every proxy and object before the next rep, so a noisy moment of the
            # machine hurts all alike; the table gives each figure's median and every run.
            figures: dict[tuple[str, str], list[float]] = {}
            latency: dict[tuple[str, str], list[float]] = {}
            misses: dict[str, list[float]] = {}
            miss_targets = (("rsp without cache", plain), ("rsp cache (miss + store)", proxies[0][1]))
            for _ in range(args.reps):
                for name, server in proxies:
                    for path in OBJECTS:
                        per_cpu, _rps, p50, errors = measure(tools["wrk"], script, server.pid, server.port,
                                                             path, args.conns, args.duration)
                        if errors:
                            raise SystemExit(f"bench: {name} {path}: {errors} errors")
                        figures.setdefault((name, path), []).append(per_cpu)
                        latency.setdefault((name, path), []).append(p50)
                for name, server in miss_targets:
                    per_cpu, _rps, _p50, errors = measure(tools["wrk"], varied, server.pid, server.port, "/1k",
                                                          args.conns, args.duration)
                    if errors:
                        raise SystemExit(f"bench: {name} misses: {errors} errors")
                    misses.setdefault(name, []).append(1e6 / per_cpu if per_cpu else 0.0)
            print(f"hits, wrk -t1 -c{args.conns} -d{args.duration}s, keep-alive, {args.reps} interleaved runs\n")
            print("| proxy | object | hits per CPU second (median) | all runs | p50 ms (median) |")
            print("|---|---|--:|---|--:|")
            for (name, path), values in figures.items():
                runs = ", ".join(f"{v:,.0f}" for v in values)
                print(f"| {name} | {path} | {statistics.median(values):,.0f} | {runs} | "
                      f"{statistics.median(latency[(name, path)]):.2f} |")
            if varnishd:
                for path in OBJECTS:
                    ours, theirs = figures[("rsp cache", path)], figures[("varnish", path)]
                    per_run = ", ".join(f"{a / b:.2f}" for a, b in zip(ours, theirs, strict=True))
                    print(f"\nrsp / varnish hits per CPU second, {path}: "
                          f"{statistics.median(ours) / statistics.median(theirs):.2f}x (median / median; "
                          f"per run {per_run}; target 0.8x)")
            else:
                print("\nvarnish: not installed (apt-get install varnish)")
            print("\nmisses (every request a new target, stored by the cache), /1k\n")
            for name, values in misses.items():
                print(f"- {name}: {statistics.median(values):.0f} us of CPU per request (median; runs "
                      f"{', '.join(f'{v:.0f}' for v in values)})")
            stored, plain_cost = misses["rsp cache (miss + store)"], misses["rsp without cache"]
            ratio = statistics.median(stored) / statistics.median(plain_cost)
            print(f"- a miss costs {ratio:.2f}x a request without the cache (target 1.10x)")
        finally:
            servers.stop_all()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
