"""Backends in one pool, 10 / 100 / 1,000, for every balancing algorithm: the cost per pick and per request.

    .venv/bin/python bench/scale_balance.py --micro                 # rsp's pick alone, in this process
    .venv/bin/python bench/scale_balance.py --build                 # building a balancer (start-up, update())
    .venv/bin/python bench/scale_balance.py --algorithms leastconn  # end to end, rsp and HAProxy side by side
    .venv/bin/python bench/scale_balance.py --duration 3 --reps 1   # every algorithm end to end

--micro: `pick()` followed by the exchange's `active += 1` / `-= 1`, PICKS times, best of REPEATS, in this
process (compiled when the worktree's modules are built: bench/README.md), so the figure is the balancer's own
cost per request; a flat algorithm costs the same at 1,000 backends as at 10.
End to end: bench/scale.py's method (wrk -c50 keep-alive, the 97-byte /small from one nginx listening on every
backend's port, CPU µs of the proxy's process tree per request from /proc, `workers = 1` against `nbthread 1`),
each algorithm against HAProxy's same `balance` (scale.HAPROXY_BALANCE; hash: on the source address, HAProxy
`balance source` with `hash-type consistent`). Only 127.0.0.1 is used; every process is stopped by pid.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import lib
import scale

ALGORITHMS = ("roundrobin", "leastconn", "random", "first", "hash")
SIZES = (10, 100, 1000)
PICKS = 2_000  # picks per timing in --micro
REPEATS = 5  # --micro takes the best of this many timings (the least disturbed by the machine's other load)
CONNS = 50


def pick_cost_ns(algorithm: str, size: int) -> float:
    """Nanoseconds per pick + release of `algorithm` over `size` equal backends (best of REPEATS)."""
    from rsp.balance.registry import make_balancer
    from rsp.config.model import Backend
    from rsp.upstream.records import BackendRecord

    records = [BackendRecord(Backend(host=lib.LOOPBACK, port=10000 + i), i, "bench") for i in range(size)]
    balancer = make_balancer(algorithm, records)
    keys = [f"10.0.{i // 256}.{i % 256}".encode() for i in range(256)]
    best = float("inf")
    for _ in range(REPEATS):
        started = time.perf_counter()
        for i in range(PICKS):
            record = balancer.pick(keys[i & 255])
            assert record is not None
            record.active += 1
            record.active -= 1
        best = min(best, time.perf_counter() - started)
    return best / PICKS * 1e9


def build_ms(algorithm: str, size: int) -> float:
    """Milliseconds to build `algorithm`'s balancer over `size` equal backends and update() it once (what a
    worker pays at start-up and at each health change), best of REPEATS."""
    from rsp.balance.registry import make_balancer
    from rsp.config.model import Backend
    from rsp.upstream.records import BackendRecord

    best = float("inf")
    for _ in range(REPEATS):
        records = [BackendRecord(Backend(host=lib.LOOPBACK, port=10000 + i), i, "bench") for i in range(size)]
        started = time.perf_counter()
        make_balancer(algorithm, records).update()
        best = min(best, time.perf_counter() - started)
    return best * 1e3


def build_times(algorithms: list[str]) -> None:
    import rsp.native

    print(f"balancer build + one update(), best of {REPEATS}; rsp build: {rsp.native.build_description()}\n")
    print("| algorithm | " + " | ".join(f"{n} backends" for n in SIZES) + " |")
    print("|---|" + "--:|" * len(SIZES))
    for algorithm in algorithms:
        print(f"| {algorithm} | " + " | ".join(f"{build_ms(algorithm, n):,.1f} ms" for n in SIZES) + " |",
              flush=True)


def micro(algorithms: list[str]) -> None:
    import rsp.native

    print(f"balancer pick + release, {PICKS} picks, best of {REPEATS}; rsp build: {rsp.native.build_description()}\n")
    print("| algorithm | " + " | ".join(f"{n} backends" for n in SIZES) + " | largest / smallest |")
    print("|---|" + "--:|" * (len(SIZES) + 1))
    for algorithm in algorithms:
        costs = [pick_cost_ns(algorithm, n) for n in SIZES]
        cells = " | ".join(f"{c:,.0f} ns" for c in costs)
        print(f"| {algorithm} | {cells} | {costs[-1] / costs[0]:.2f}x |", flush=True)


def end_to_end(algorithms: list[str], targets: list[str], duration: int, reps: int) -> None:
    rows: list[str] = []
    with tempfile.TemporaryDirectory(prefix="rsp-scale-balance-") as d:
        tmp = Path(d)
        servers = lib.Servers(tmp)
        try:
            script, backend_ports, port = scale.start_backends(tmp, servers, max(SIZES))
            for algorithm in algorithms:
                figures: dict[tuple[str, int], list[float]] = {}
                for _ in range(reps):
                    for size in SIZES:
                        for target in targets:  # interleaved: a noisy moment hurts both alike
                            argv = scale.STARTERS[target](tmp, port, backend_ports[:size], 0, algorithm)
                            us, _system = scale.cpu_per_request(servers, target, argv, port, CONNS, duration,
                                                                script, "bench")
                            figures.setdefault((target, size), []).append(us)
                            print(f"  {algorithm} {size} {target}: {us:.1f} us/req", file=sys.stderr, flush=True)
                for size in SIZES:
                    cells = []
                    for target in targets:
                        us = statistics.median(figures[(target, size)])
                        smallest = statistics.median(figures[(target, SIZES[0])])
                        cells.append(f"{us:.1f} ({us / smallest:.2f}x)")
                    rows.append(f"| {algorithm} | {size} | " + " | ".join(cells) + " |")
        finally:
            servers.stop_all()
    print(f"\nbackends in one pool: wrk -c{CONNS}, {duration} s runs, {reps} repetition(s), median; "
          "CPU µs per request (x the 10-backend figure)\n")
    print("| algorithm | backends | " + " | ".join(targets) + " |")
    print("|---|--:|" + "--:|" * len(targets))
    print("\n".join(rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--micro", action="store_true", help="rsp's pick alone, in this process")
    ap.add_argument("--build", action="store_true", help="rsp's balancer build + update() time, in this process")
    ap.add_argument("--algorithms", default=",".join(ALGORITHMS))
    ap.add_argument("--targets", default="rsp,haproxy")
    ap.add_argument("--duration", type=int, default=3, help="seconds per wrk run")
    ap.add_argument("--reps", type=int, default=1, help="repetitions, median reported")
    opts = ap.parse_args()
    algorithms = opts.algorithms.split(",")
    if opts.build:
        build_times(algorithms)
    elif opts.micro:
        micro(algorithms)
    else:
        end_to_end(algorithms, opts.targets.split(","), opts.duration, opts.reps)


if __name__ == "__main__":
    main()
