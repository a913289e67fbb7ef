"""The response cache against nginx proxy_cache, HAProxy's cache and Varnish, on one nginx backend.

    python bench/run_cache.py [--duration S] [--conns N]      # run from the repository root, ~2 min

Each proxy runs on one core's worth of processes (rsp workers = 1, nginx one worker, HAProxy nbthread 1,
Varnish with its default thread pools: it is the one that cannot be held to one thread, and its figure is
its whole process tree's CPU). The backend serves /1k and /100k with `Cache-Control: max-age=3600` and an
ETag. For every proxy and object: one warming request, then `wrk -t1 -cN` for S seconds of hits; the figure
that compares is **hits per CPU second** of the proxy's process tree (from /proc; the load generator and
the backend share the machine), with requests per second and p50 latency beside it.

The miss cost, for every proxy alike: each one with its cache and the same proxy without it (rsp without
`cache`, nginx without `proxy_cache`, HAProxy without its cache filters, Varnish passing every request), every
request a different target (`?v=N`), so with the cache each one is a miss that is stored; the figure is the
proxy's CPU per request, cache / no cache. The issue's target (1.10x) is rsp's; the others' ratios say what a
stored miss costs in a cache written in C.

Varnish (Debian's `varnish`) is skipped with a note when varnishd is not installed. Everything started here
is stopped in `finally` (process groups, by pid).
"""

from __future__ import annotations

import argparse
import os
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


def nginx_cache_conf(nginx: str, tmp: Path, port: int, backend: int, store: Path) -> list[str]:
    """nginx with proxy_cache in `store` (a directory in /dev/shm, like rsp's default store: every cache's
    objects in memory), written there directly (use_temp_path=off: no second directory to rename from)."""
    argv = configs.nginx_proxy(nginx, tmp, "nginx-cache", port, [backend], "roundrobin")
    conf = Path(argv[-1])
    text = conf.read_text()
    text = text.replace("    upstream be {", f"    proxy_cache_path {store} levels=1:2 keys_zone=c:16m "
                        f"max_size={CACHE_SIZE_MB}m use_temp_path=off;\n    upstream be {{")
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
        # The default store (memory-backed, in /dev/shm), as Varnish keeps its objects in malloc.
        text += f'caches = {{ c = {{ size = "{CACHE_SIZE_MB}m" }} }}\n'
    conf.write_text(text)
    return [sys.executable, "-m", "rsp", str(conf)]


def varnish_argv(varnishd: str, tmp: Path, port: int, backend: int, passing: bool = False) -> list[str]:
    """Varnish with its default VCL on `-b`, or (`passing`) a VCL whose vcl_recv passes every request: Varnish
    without its cache, the same process and fetch path."""
    name = "varnish-pass" if passing else "varnish"
    # -F foreground, -j none: no privilege separation (the harness's own user), -n its own work dir.
    argv = [varnishd, "-F", "-j", "none", "-n", str(tmp / name), "-a", f"{LOOPBACK}:{port}",
            "-s", f"malloc,{CACHE_SIZE_MB}m"]
    if not passing:
        return [*argv, "-b", f"{LOOPBACK}:{backend}"]
    vcl = tmp / f"{name}.vcl"
    vcl.write_text(f'vcl 4.1;\nbackend default {{ .host = "{LOOPBACK}"; .port = "{backend}"; }}\n'
                   "sub vcl_recv { return (pass); }\n")
    return [*argv, "-f", str(vcl)]


def measure(wrk: str, script: Path, pid: int, port: int, path: str, conns: int,
            duration: int) -> tuple[float, float, float, int]:
    """(requests per CPU second of the proxy, requests per second, p50 ms, errors)."""
    url = f"http://{LOOPBACK}:{port}{path}"
    urllib.request.urlopen(url, timeout=10).read()  # warm: the one miss
    before = procstat.tree_seconds([pid])[pid]
    result = parse_wrk(run_client(wrk_argv(wrk, script, url, conns, duration), duration + 60))
    cpu = procstat.tree_seconds([pid])[pid] - before
    return (result.requests / cpu if cpu else 0.0, result.rps, result.p50_ms, result.errors)


def memory_dir() -> str | None:
    """/dev/shm when there is one to write (tmpfs), else the default temporary directory."""
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def miss_table(misses: dict[tuple[str, bool], list[float]], names: list[str]) -> list[str]:
    """The miss table's lines: per proxy, CPU per request without and with its cache (medians, every run),
    and the ratio of the medians."""
    lines = ["| proxy | without its cache, us (runs) | stored miss, us (runs) | miss / without (median) |",
             "|---|--:|--:|--:|"]
    for name in names:
        plain, stored = misses[(name, False)], misses[(name, True)]
        ratio = statistics.median(stored) / statistics.median(plain)
        lines.append(f"| {name} | {statistics.median(plain):.1f} ({', '.join(f'{v:.1f}' for v in plain)}) | "
                     f"{statistics.median(stored):.1f} ({', '.join(f'{v:.1f}' for v in stored)}) | "
                     f"{ratio:.2f}x |")
    return lines


def print_misses(misses: dict[tuple[str, bool], list[float]], names: list[str]) -> None:
    print("\nmisses (every request a new target, stored by the cache), /1k, CPU per request of the proxy\n")
    for line in miss_table(misses, names):
        print(line)
    ours = statistics.median(misses[("rsp cache", True)]) / statistics.median(misses[("rsp cache", False)])
    print(f"\n- rsp: a miss costs {ours:.2f}x a request without the cache (target 1.10x)")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--conns", type=int, default=10)
    parser.add_argument("--reps", type=int, default=1, help="interleaved runs; medians are reported")
    args = parser.parse_args()
    tools = ensure_tools(["nginx", "haproxy", "wrk"])
    varnishd = shutil.which("varnishd") or shutil.which("varnishd", path="/usr/sbin")
    with (tempfile.TemporaryDirectory(prefix="rsp-bench-cache-") as tmpdir,
          tempfile.TemporaryDirectory(prefix="rsp-bench-nginx-cache-", dir=memory_dir()) as nginx_store):
        tmp = Path(tmpdir)
        # nginx makes its cache directory itself, owned by its worker's user: inside a directory it may enter.
        Path(nginx_store).chmod(0o755)
        script = tmp / "report.lua"
        script.write_text(WRK_SCRIPT)
        varied = tmp / "varied.lua"
        varied.write_text(WRK_VARIED_SCRIPT)
        servers = Servers(tmp)
        ports = free_ports(9)
        try:
            servers.start("backend", backend_conf(tools["nginx"], tmp, ports[0]), ports[0])
            proxies = [
                ("rsp cache", servers.start("rsp-cache", rsp_conf(tmp, ports[1], ports[0], True), ports[1])),
                ("nginx proxy_cache", servers.start(
                    "nginx-cache", nginx_cache_conf(tools["nginx"], tmp, ports[2], ports[0],
                                                   Path(nginx_store) / "objects"),
                    ports[2])),
                ("haproxy cache", servers.start(
                    "haproxy-cache", haproxy_cache_conf(tools["haproxy"], tmp, ports[3], ports[0]), ports[3])),
            ]
            if varnishd:
                proxies.append(("varnish", servers.start(
                    "varnish", varnish_argv(varnishd, tmp, ports[4], ports[0]), ports[4])))
            plain = servers.start("rsp", rsp_conf(tmp, ports[5], ports[0], False), ports[5])
            # Each cache beside the same proxy without it, for the miss cost (see the docstring).
            uncached = {
                "rsp cache": plain,
                "nginx proxy_cache": servers.start("nginx", configs.nginx_proxy(
                    tools["nginx"], tmp, "nginx", ports[6], [ports[0]], "roundrobin"), ports[6]),
                "haproxy cache": servers.start("haproxy", configs.haproxy(
                    tools["haproxy"], tmp, "haproxy", ports[7], [ports[0]], "http"), ports[7]),
            }
            if varnishd:
                uncached["varnish"] = servers.start(
                    "varnish-pass", varnish_argv(varnishd, tmp, ports[8], ports[0], passing=True), ports[8])
            # Interleaved: each rep runs every proxy and object before the next rep, so a noisy moment of the
            # machine hurts all alike; the table gives each figure's median and every run.
            figures: dict[tuple[str, str], list[float]] = {}
            latency: dict[tuple[str, str], list[float]] = {}
            misses: dict[tuple[str, bool], list[float]] = {}  # (proxy, cached) -> us of CPU per request
            for _ in range(args.reps):
                for name, server in proxies:
                    for path in OBJECTS:
                        per_cpu, _rps, p50, errors = measure(tools["wrk"], script, server.pid, server.port,
                                                             path, args.conns, args.duration)
                        if errors:
                            raise SystemExit(f"bench: {name} {path}: {errors} errors")
                        figures.setdefault((name, path), []).append(per_cpu)
                        latency.setdefault((name, path), []).append(p50)
                for name, server in proxies:
                    for cached, target in ((False, uncached[name]), (True, server)):
                        per_cpu, _rps, _p50, errors = measure(tools["wrk"], varied, target.pid, target.port,
                                                              "/1k", args.conns, args.duration)
                        if errors:
                            raise SystemExit(f"bench: {name} misses (cached={cached}): {errors} errors")
                        misses.setdefault((name, cached), []).append(1e6 / per_cpu if per_cpu else 0.0)
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
            print_misses(misses, [name for name, _ in proxies])
        finally:
            servers.stop_all()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
