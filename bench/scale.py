"""How the cost per request grows with the size of the work: rsp and HAProxy side by side.

    .venv/bin/python bench/scale.py --quick        # sizes 1/10/100 (connections 10/100/1000), 3 s runs, 1 repetition
    .venv/bin/python bench/scale.py                # adds routes 1000, 8 s runs, 3 repetitions (median)
    .venv/bin/python bench/scale.py --dims routes --targets rsp
    .venv/bin/python bench/scale.py --startup      # rsp's start-up with 1,000 backends and 1,000 routes

Each dimension grows tenfold while everything else stays as in `bench/run_tcp.py --scenario http`
(HTTP mode, the 97-byte /small from nginx, `workers = 1` against `nbthread 1`: the comparison is per core):

  conns     wrk -t1 -cN keep-alive, N = 10, 100, 1000, one backend;
  conns2    the same with N = 100, 1000, 10000 and `workers = 2` against `nbthread 2` (file limits raised);
  backends  one pool of N backends (one nginx listening on N ports), roundrobin, wrk -c50;
  routes    N host routes (rsp `routes = { {host = "hI.example", pool = ...}, ... }`, tried in order;
            HAProxy a `map` of hosts, its usual form for many hosts), every request to the LAST host (the
            worst case of a list tried in order), wrk -c50.

The figure is CPU per request: utime+stime of the proxy's process tree from /proc, before and after each
run (docs/performance.md, "Method"), so it depends on the machine's other load; the ratio "x smallest" of a
target to its own smallest size is what the issue's target (within 1.2x) is about. Sizes and targets are
interleaved within each repetition. Only 127.0.0.1 is used; every process is stopped by pid.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import configs
import lib
import procstat

ROOT = Path(__file__).resolve().parent.parent
SIZES = {"conns": (10, 100, 1000), "conns2": (100, 1000, 10_000), "backends": (1, 10, 100),
         "routes": (1, 10, 100, 1000)}
QUICK_SIZES = {"conns": (10, 100, 1000), "conns2": (100, 1000, 10_000), "backends": (1, 10, 100),
               "routes": (1, 10, 100)}
# conns2: the issue's keep-alive connections with `workers = 2` against `nbthread 2`.
WORKERS = {"conns2": 2}
# Descriptors for 10,000 clients: wrk's, the proxy's (clients + backend connections) and nginx's. Raised
# for this process and so for everything it starts (the soft limit up to the hard one; as root, both).
NOFILE = 65_536
NGINX_CONNECTIONS = 30_000
DEFAULT_CONNS = 50
WARMUP_SECONDS = 1
SERVING_SECONDS = 60.0  # from start until the first request is answered
HOST_SUFFIX = ".example"


def host(i: int) -> str:
    return f"h{i}{HOST_SUFFIX}"


def start_backends(tmp: Path, servers: lib.Servers, count: int) -> tuple[Path, list[int], int]:
    """wrk's report script, and one nginx answering on `count` ports: (the script, the backend ports, a free port
    for the proxy). Shared by this bench and scale_balance.py."""
    script = tmp / "report.lua"
    script.write_text(lib.WRK_SCRIPT)
    docroot = configs.write_docroot(tmp)
    ports = lib.free_ports(count + 1)
    backend_ports, port = ports[:-1], ports[-1]
    servers.start("backend", nginx_multi_port(tmp, backend_ports, docroot), backend_ports[0])
    return script, backend_ports, port


def nginx_multi_port(tmp: Path, ports: list[int], docroot: Path) -> list[str]:
    """The benchmark's nginx backend, listening on every port of `ports` (one process for 100 backends)."""
    argv = configs.nginx_backend(shutil.which("nginx") or "nginx", tmp, "backend", ports[0], docroot)
    conf = Path(argv[-1])
    first = f"listen {lib.LOOPBACK}:{ports[0]} backlog=4096;"
    listens = "\n        ".join(f"listen {lib.LOOPBACK}:{p} backlog=4096;" for p in ports)
    text = conf.read_text().replace(first, listens)
    text = text.replace("worker_connections 4096;", f"worker_connections {NGINX_CONNECTIONS};")
    conf.write_text(f"worker_rlimit_nofile {NOFILE};\n" + text)
    return argv


def raise_file_limit() -> int:
    """RLIMIT_NOFILE raised towards NOFILE (inherited by the proxies, wrk and nginx); the soft limit reached."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, max(hard, NOFILE)))  # as root
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(NOFILE, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


RSP_HTTP_EXTRA = ""  # --rsp-http: more keys of rsp's http table, e.g. "pool_max_idle = 2000"


def rsp_argv(tmp: Path, port: int, backends: list[int], routes: int, algorithm: str = "roundrobin",
             workers: int = 1) -> list[str]:
    addrs = ", ".join(f'"{lib.LOOPBACK}:{p}"' for p in backends)
    # hash: on the source address (HAProxy `balance source` + `hash-type consistent` beside it)
    pool_keys = f'algorithm = "{algorithm}"' + (', hash_key = "source"' if algorithm == "hash" else "")
    text = (f'listen = {{ {{ address = "{lib.LOOPBACK}", port = {port}, mode = "http" }} }}\n'
            f'pools = {{ default = {{ {pool_keys}, backends = {{ {addrs} }} }} }}\n'
            f'http = {{ access_log = "off"{", " + RSP_HTTP_EXTRA if RSP_HTTP_EXTRA else ""} }}\nworkers = {workers}\n')
    if routes:
        rules = ",\n  ".join(f'{{ host = "{host(i)}", pool = "default" }}' for i in range(1, routes + 1))
        text += f"routes = {{\n  {rules}\n}}\n"
    conf = tmp / f"rsp-{port}.lua"
    conf.write_text(text)
    return [sys.executable, "-m", "rsp", str(conf)]


# rsp's algorithm -> HAProxy's `balance` line(s) for the same choice.
HAPROXY_BALANCE = {"roundrobin": "roundrobin", "leastconn": "leastconn", "random": "random(2)", "first": "first",
                   "hash": "source\n    hash-type consistent"}


def haproxy_argv(tmp: Path, port: int, backends: list[int], routes: int, algorithm: str = "roundrobin",
                 workers: int = 1) -> list[str]:
    argv = configs.haproxy(shutil.which("haproxy") or "haproxy", tmp, f"haproxy-{port}", port, backends, "http",
                           HAPROXY_BALANCE[algorithm])
    if workers != 1:
        cfg = Path(argv[-1])
        cfg.write_text(cfg.read_text().replace("nbthread 1", f"nbthread {workers}"))
    if routes:
        cfg = Path(argv[-1])
        hosts = tmp / f"hosts-{port}.map"
        hosts.write_text("".join(f"{host(i)} be\n" for i in range(1, routes + 1)))
        cfg.write_text(cfg.read_text().replace(
            "    default_backend be\n",
            f"    use_backend %[req.hdr(host),lower,map({hosts},be)]\n    default_backend be\n"))
    return argv


def user_system_seconds(root: int) -> tuple[float, float]:
    """User and system CPU seconds of `root`'s process tree (reaped children included), from /proc."""
    user = system = 0
    for pid in procstat.tree_pids(root, procstat._read_all()):
        try:
            with open(f"/proc/{pid}/stat") as f:
                text = f.read()
        except OSError:
            continue  # exited since the listing
        fields = text[text.rindex(")") + 2 :].split()
        utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
        user += utime + cutime
        system += stime + cstime
    return user / procstat.CLK_TCK, system / procstat.CLK_TCK


STARTERS: dict[str, Callable[..., list[str]]] = {"rsp": rsp_argv, "haproxy": haproxy_argv}


def serving(url: str, host_header: str) -> None:
    """Wait until `url` answers 200: the port accepts before the worker has built its pools (a hash ring of
    1,000 backends took seconds), and a run must measure requests, not the start."""
    deadline = time.monotonic() + SERVING_SECONDS
    while True:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers={"Host": host_header}),
                                        timeout=SERVING_SECONDS) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise lib.BenchError(f"{url} did not answer 200 within {SERVING_SECONDS:.0f} s")
        time.sleep(0.05)


def cpu_per_request(servers: lib.Servers, name: str, argv: list[str], port: int, conns: int, duration: int,
                    script: Path, host_header: str) -> tuple[float, float]:
    """Start the proxy, warm it up, run wrk once, stop it; returns µs of CPU per request and the kernel's
    share of it (system time: loopback TCP, epoll)."""
    proxy = servers.start(name, argv, port, cwd=ROOT)
    try:
        url = f"http://{lib.LOOPBACK}:{port}{configs.SMALL_PATH}"
        serving(url, host_header)
        wrk = shutil.which("wrk") or "wrk"
        base = lib.wrk_argv(wrk, script, url, conns, WARMUP_SECONDS)
        head = ["-H", f"Host: {host_header}"]
        lib.run_client([*base[:-1], *head, base[-1]], timeout=WARMUP_SECONDS + 60)
        user0, system0 = user_system_seconds(proxy.pid)
        run = lib.wrk_argv(wrk, script, url, conns, duration)
        result = lib.parse_wrk(lib.run_client([*run[:-1], *head, run[-1]], timeout=duration + 60))
        user1, system1 = user_system_seconds(proxy.pid)
    finally:
        lib.stop_process(proxy.proc)
        servers.started.remove(proxy)
    if result.errors or not result.requests:
        print(f"  {name}: {result.errors} errors in {result.requests} requests", file=sys.stderr)
    cpu = (user1 - user0) + (system1 - system0)
    return cpu / max(result.requests, 1) * 1e6, (system1 - system0) / cpu if cpu else 0.0


def startup_times(tmp: Path) -> None:
    """Seconds from starting rsp until its port accepts, and of `rsp --check`, with 1 or 1,000 backends and
    0 or 1,000 routes (the backends' ports need not be open: nothing connects to them before a request)."""
    print("| backends | routes | accepting after | rsp --check |")
    print("|--:|--:|--:|--:|")
    for n_backends, routes in ((1, 0), (1000, 0), (1, 1000), (1000, 1000)):
        port, first = lib.free_ports(2)
        argv = rsp_argv(tmp, port, list(range(first, first + n_backends)), routes)
        servers = lib.Servers(tmp)
        started = time.monotonic()
        try:
            servers.start("rsp", argv, port, cwd=ROOT)
            ready = time.monotonic() - started
        finally:
            servers.stop_all()
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "rsp", "--check", argv[-1]], capture_output=True, cwd=ROOT,
                       timeout=lib.READY_TIMEOUT, check=False)
        check = time.monotonic() - started
        print(f"| {n_backends} | {routes} | {ready:.2f} s | {check:.2f} s |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller sizes, 3 s runs, one repetition")
    ap.add_argument("--dims", default="conns,backends,routes")
    ap.add_argument("--targets", default="rsp,haproxy")
    ap.add_argument("--duration", type=int, default=0, help="seconds per run (default 8, quick 3)")
    ap.add_argument("--reps", type=int, default=0, help="repetitions, median reported (default 3, quick 1)")
    ap.add_argument("--rsp-http", default="", help='more keys of rsp\'s http table, e.g. "pool_max_idle = 2000"')
    ap.add_argument("--startup", action="store_true", help="only rsp's start-up time with 1,000 backends/routes")
    opts = ap.parse_args()
    if opts.startup:
        with tempfile.TemporaryDirectory(prefix="rsp-scale-") as d:
            startup_times(Path(d))
        return
    global RSP_HTTP_EXTRA
    RSP_HTTP_EXTRA = opts.rsp_http
    print(f"file limit: {raise_file_limit()}", file=sys.stderr)
    duration = opts.duration or (3 if opts.quick else 8)
    reps = opts.reps or (1 if opts.quick else 3)
    sizes = QUICK_SIZES if opts.quick else SIZES
    targets = opts.targets.split(",")
    rows: list[str] = []
    started = time.monotonic()
    busy_before = procstat.machine_busy_seconds()
    with tempfile.TemporaryDirectory(prefix="rsp-scale-") as d:
        tmp = Path(d)
        servers = lib.Servers(tmp)
        try:
            script, backend_ports, port = start_backends(tmp, servers, max(SIZES["backends"]))
            for dim in opts.dims.split(","):
                figures: dict[tuple[str, int], list[float]] = {}
                kernel: dict[tuple[str, int], list[float]] = {}
                for _ in range(reps):
                    for size in sizes[dim]:
                        for target in targets:
                            n_backends = size if dim == "backends" else 1
                            routes = size if dim == "routes" else 0
                            conns = size if dim.startswith("conns") else DEFAULT_CONNS
                            argv = STARTERS[target](tmp, port, backend_ports[:n_backends], routes,
                                                    workers=WORKERS.get(dim, 1))
                            us, system = cpu_per_request(servers, target, argv, port, conns, duration, script,
                                                         host(routes) if routes else "bench")
                            figures.setdefault((target, size), []).append(us)
                            kernel.setdefault((target, size), []).append(system)
                            print(f"  {dim}={size} {target}: {us:.1f} us/req, {system:.0%} system",
                                  file=sys.stderr)
                for target in targets:
                    smallest = statistics.median(figures[(target, sizes[dim][0])])
                    for size in sizes[dim]:
                        us = statistics.median(figures[(target, size)])
                        system = statistics.median(kernel[(target, size)])
                        rows.append(f"| {dim} | {size} | {target} | {us:.1f} | {us / smallest:.2f}x | {system:.0%} |")
        finally:
            servers.stop_all()
    elapsed = time.monotonic() - started
    other = (procstat.machine_busy_seconds() - busy_before) / elapsed
    print(f"\nscale: {duration} s runs, {reps} repetition(s), median; machine busy {other:.2f} cores on average "
          "(this run's own processes included)\n")
    print("| dimension | size | target | CPU µs/request | x smallest | system share |")
    print("|---|--:|---|--:|--:|--:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
