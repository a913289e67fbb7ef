"""What grows per request with the hosts in the route store, by counts rather than wall clock (issue 23).

    .venv/bin/python bench/routestore_scale_counts.py [--sizes 1000,100000] [--duration 5] [--warm-passes 3]

The setting of bench/scale_routestore.py (one redis-server with N hosts `h<i>.bench`, one nginx, rsp with
`workers = 1`, wrk -c20 over every host in turn after warm-up passes), and per size, for the master and the
worker apart, over one wrk run and then the same time at rest (no traffic):

- CPU µs per request (utime + stime from /proc/PID/stat), and at rest in ms per second;
- minor page faults and context switches (voluntary + involuntary, /proc/PID/status) per request;
- Redis's SMEMBERS calls per second during the run and at rest (INFO commandstats): the master asks Redis for
  a worker's lookup (a host the worker does not know) and for each TTL refresh (at most
  rsp.routestore.store.MAX_REFRESHES_PER_SECOND), so calls above the resting rate are lookups the traffic
  caused;
- the worker's and the master's resident memory (VmRSS).

The machine is shared: CPU figures move with the load; the counts (faults, switches, Redis calls) do not.
Only 127.0.0.1 is used; every process started here is stopped by pid.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))

import configs
import lib
import procstat
import run_routestore
import scale_routestore


@dataclass(frozen=True)
class Counts:
    cpu: float  # seconds
    minflt: int
    switches: int
    rss_kb: int


def counts(pid: int) -> Counts:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / procstat.CLK_TCK  # utime, stime (fields 14, 15 of stat)
    minflt = int(fields[7])  # field 10
    status = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            status[key] = value.strip()
    switches = int(status["voluntary_ctxt_switches"]) + int(status["nonvoluntary_ctxt_switches"])
    return Counts(cpu, minflt, switches, int(status["VmRSS"].split()[0]))


def smembers_calls(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return int(stats.get("cmdstat_smembers", {}).get("calls", 0))


def worker_pid(master: int) -> int:
    procs = procstat._read_all()
    children = [pid for pid in procstat.tree_pids(master, procs) if pid != master]
    if len(children) != 1:
        raise lib.BenchError(f"expected one worker under {master}, found {children}")
    return children[0]


def window(pids: dict[str, int], client: redis.Redis, seconds: float,
           run: object = None) -> tuple[dict[str, tuple[Counts, Counts]], int, float]:
    """Counts of each process before and after `run()` (or a sleep of `seconds`), the SMEMBERS calls, the time."""
    before = {name: counts(pid) for name, pid in pids.items()}
    calls0, t0 = smembers_calls(client), time.monotonic()
    if callable(run):
        run()
    else:
        time.sleep(seconds)
    calls1, t1 = smembers_calls(client), time.monotonic()
    after = {name: counts(pid) for name, pid in pids.items()}
    return {name: (before[name], after[name]) for name in pids}, calls1 - calls0, t1 - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,100000")
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--warm-passes", type=int, default=3)
    ap.add_argument("--perf", metavar="DIR", help="also sample the master and the worker during the run with "
                    "`perf record -e cpu-clock` into DIR/<size>-<process>.data (read with perf report)")
    opts = ap.parse_args()
    sizes = [int(s) for s in opts.sizes.split(",")]
    wrk = lib.ensure_tools(["wrk"])["wrk"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="rsp-routestore-counts-") as d:
        tmp = Path(d)
        servers = lib.Servers(tmp)
        try:
            backend, redis_port, port = lib.free_ports(3)
            servers.start("redis", [shutil.which("redis-server") or "redis-server", "--port", str(redis_port),
                                    "--bind", lib.LOOPBACK, "--save", "", "--appendonly", "no", "--dir", str(tmp)],
                          redis_port)
            docroot = configs.write_docroot(tmp)
            servers.start("backend", configs.nginx_backend(shutil.which("nginx") or "nginx", tmp, "backend", backend,
                                                           docroot), backend)
            client = redis.Redis(host=lib.LOOPBACK, port=redis_port)
            for size in sizes:
                scale_routestore.fill(client, size, backend)
                script = run_routestore.wrk_script(tmp, size)
                argv = [sys.executable, "-m", "rsp",
                        str(scale_routestore.rsp_config(tmp, port, f"redis://{lib.LOOPBACK}:{redis_port}/0"))]
                proxy = servers.start(f"rsp-{size}", argv, port, cwd=scale_routestore.ROOT)
                try:
                    scale_routestore.warm_up(wrk, script, port, size, opts.warm_passes)
                    pids = {"master": proxy.pid, "worker": worker_pid(proxy.pid)}
                    result: list[lib.LoadResult] = []

                    def load(script: Path = script, result: list[lib.LoadResult] = result) -> None:
                        result.append(lib.parse_wrk(lib.run_client(lib.wrk_argv(
                            wrk, script, f"http://{lib.LOOPBACK}:{port}/", scale_routestore.CONNS, opts.duration),
                            opts.duration + 60)))

                    recorders = [] if not opts.perf else [subprocess.Popen(
                        ["perf", "record", "-q", "-e", "cpu-clock", "-F", "499", "-p", str(pid), "-o",
                         str(Path(opts.perf) / f"{size}-{name}.data")], stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL) for name, pid in pids.items()]
                    try:
                        busy, busy_calls, busy_s = window(pids, client, 0, load)
                    finally:
                        for recorder in recorders:
                            recorder.send_signal(signal.SIGINT)
                            recorder.wait(timeout=30)
                    rest, rest_calls, rest_s = window(pids, client, opts.duration)
                    rows.append((size, result[0].requests, busy, busy_calls, busy_s, rest, rest_calls, rest_s))
                    print(f"  {size}: {result[0].requests} requests", file=sys.stderr, flush=True)
                finally:
                    lib.stop_process(proxy.proc)
                    servers.started.remove(proxy)
            client.close()
        finally:
            servers.stop_all()
    print(f"\nroute store, counts per request: wrk -c{scale_routestore.CONNS} over every host, {opts.duration} s, "
          f"{opts.warm_passes} warm-up passes, workers = 1\n")
    print("| hosts | process | CPU µs/req | at rest ms/s | minor faults/req | switches/req | switches/s at rest | "
          "RSS MB | SMEMBERS/s busy | SMEMBERS/s at rest |")
    print("|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    for size, requests, busy, busy_calls, busy_s, rest, rest_calls, rest_s in rows:
        n = max(requests, 1)
        for name in ("master", "worker"):
            b0, b1 = busy[name]
            r0, r1 = rest[name]
            print(f"| {size} | {name} | {(b1.cpu - b0.cpu) / n * 1e6:.1f} | {(r1.cpu - r0.cpu) / rest_s * 1e3:.0f} | "
                  f"{(b1.minflt - b0.minflt) / n:.3f} | {(b1.switches - b0.switches) / n:.3f} | "
                  f"{(r1.switches - r0.switches) / rest_s:.0f} | {b1.rss_kb / 1024:.0f} | "
                  f"{busy_calls / busy_s:.0f} | {rest_calls / rest_s:.0f} |")


if __name__ == "__main__":
    main()
