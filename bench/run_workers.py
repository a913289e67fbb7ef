"""rsp with workers = 2 against HAProxy nbthread 2, reloads under load, and the master's idle CPU.

    .venv/bin/python bench/run_workers.py [--duration S] [--reloads N] [--idle S]

1. Throughput and CPU per request, HTTP small responses (keep-alive, wrk -c 50) through rsp `workers = 2`
   and HAProxy `nbthread 2`, same nginx backend. On a 2-core machine the load generator and the backend
   share the cores, so the figure that compares is CPU per request (the server's whole process tree, from
   /proc), not requests per second.
2. Errors seen by wrk during N reloads (`rsp reload` through the admin socket) under load, and requests served.
3. The master's CPU seconds over S seconds of idleness (no busy loop: expect ~0).

Everything started here is stopped in `finally` (process groups, by pid).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import configs
import procstat
from lib import (
    LOOPBACK,
    WRK_SCRIPT,
    BenchError,
    Servers,
    ensure_tools,
    free_ports,
    parse_wrk,
    run_client,
    stop_process,
    wrk_argv,
)

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
CONNS = 50
RELOAD_PAUSE = 0.5  # seconds between two reloads: the new workers start, the old ones finish


def haproxy_threads(haproxy_bin: str, tmp: Path, port: int, backend: int, threads: int) -> list[str]:
    argv = configs.haproxy(haproxy_bin, tmp, "haproxy", port, [backend], "http")
    conf = Path(argv[-1])
    conf.write_text(conf.read_text().replace("nbthread 1", f"nbthread {threads}"))
    return argv


def rsp_workers(tmp: Path, port: int, backend: int, workers: int, admin: Path) -> Path:
    conf = configs.rsp_config(tmp, f"rsp-{workers}", port, [backend], "http")
    conf.write_text(conf.read_text().replace("workers = 1\n", "") + f'workers = {workers}\nadmin_socket = "{admin}"\n')
    return conf


def process_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        return procstat.parse_stat(fh.read()).total / procstat.CLK_TCK


def measure(wrk: str, script: Path, port: int, root: int, duration: int) -> tuple[float, float, int]:
    """(requests/s, CPU microseconds per request of the tree under `root`, errors)."""
    url = f"http://{LOOPBACK}:{port}{configs.SMALL_PATH}"
    run_client(wrk_argv(wrk, script, url, CONNS, 1), 30)  # warm-up
    before = procstat.snapshot([root])
    result = parse_wrk(run_client(wrk_argv(wrk, script, url, CONNS, duration), duration + 60))
    after = procstat.snapshot([root])
    cpu = after.trees[root] - before.trees[root]
    return result.rps, cpu / max(1, result.requests) * 1e6, result.errors


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=int, default=10, help="seconds per throughput run (default 10)")
    p.add_argument("--reps", type=int, default=2, help="interleaved throughput rounds (default 2)")
    p.add_argument("--reloads", type=int, default=20)
    p.add_argument("--idle", type=int, default=60, help="seconds of idleness for the master's CPU (default 60)")
    args = p.parse_args(argv)
    tools = ensure_tools(["nginx", "haproxy", "wrk"])
    with tempfile.TemporaryDirectory(prefix="rsp-bench-workers-") as tmpdir:
        tmp = Path(tmpdir)
        script = tmp / "report.lua"
        script.write_text(WRK_SCRIPT)
        servers = Servers(tmp)
        try:
            backend_port, rsp_port, haproxy_port, single_port = free_ports(4)
            docroot = configs.write_docroot(tmp)
            servers.start("backend", configs.nginx_backend(tools["nginx"], tmp, "backend", backend_port, docroot),
                          backend_port)
            admin = tmp / "admin.sock"
            conf = rsp_workers(tmp, rsp_port, backend_port, 2, admin)
            rsp = servers.start("rsp", [str(VENV_PYTHON), "-m", "rsp", str(conf)], rsp_port)
            time.sleep(1.0)
            hap = servers.start("haproxy", haproxy_threads(tools["haproxy"], tmp, haproxy_port, backend_port, 2),
                                haproxy_port)
            single_conf = rsp_workers(tmp, single_port, backend_port, 1, tmp / "admin-single.sock")
            single = servers.start("rsp-single", [str(VENV_PYTHON), "-m", "rsp", str(single_conf)], single_port)
            print(f"1. HTTP small, keep-alive, wrk -c {CONNS}, {args.duration} s each, {args.reps} interleaved rounds")
            targets = (("rsp workers=2", rsp_port, rsp.pid), ("haproxy nbthread 2", haproxy_port, hap.pid),
                       ("rsp workers=1", single_port, single.pid))
            figures: dict[str, list[tuple[float, float, int]]] = {name: [] for name, _, _ in targets}
            for _ in range(args.reps):
                for name, port, pid in targets:
                    figures[name].append(measure(tools["wrk"], script, port, pid, args.duration))
            best = {}
            for name, runs in figures.items():
                rps = max(r[0] for r in runs)
                best[name] = min(r[1] for r in runs)
                errors = sum(r[2] for r in runs)
                print(f"   {name:<20} {rps:>9.0f} req/s  {best[name]:>6.1f} us CPU/request (best of {len(runs)})"
                      f"  errors {errors}")
            print(f"   CPU per request, rsp workers=2 / haproxy nbthread 2: "
                  f"{best['rsp workers=2'] / best['haproxy nbthread 2']:.2f}x; "
                  f"rsp workers=2 / rsp workers=1: {best['rsp workers=2'] / best['rsp workers=1']:.2f}x")
            servers.started.remove(single)
            stop_process(single.proc)

            print(f"2. {args.reloads} reloads under load (wrk -c {CONNS})")
            duration = int(args.reloads * (RELOAD_PAUSE + 1.5)) + 5
            url = f"http://{LOOPBACK}:{rsp_port}{configs.SMALL_PATH}"
            out: dict[str, str] = {}
            load = threading.Thread(target=lambda: out.setdefault("wrk", run_client(
                wrk_argv(tools["wrk"], script, url, CONNS, duration), duration + 60)))
            load.start()
            time.sleep(1.0)
            refused = 0
            for _ in range(args.reloads):
                done = subprocess.run([str(VENV_PYTHON), "-m", "rsp", "reload", "--admin", str(admin)],
                                      capture_output=True, text=True, timeout=120, check=False)
                if done.returncode != 0:
                    refused += 1
                    print(f"   reload failed: {done.stderr.strip()}", file=sys.stderr)
                time.sleep(RELOAD_PAUSE)
            load.join(duration + 90)
            result = parse_wrk(out["wrk"])
            print(f"   {result.requests} requests in {result.seconds:.1f} s, errors seen by wrk: {result.errors}"
                  f" (connect/read/write/status/timeout), reloads refused: {refused}")

            print(f"3. master CPU over {args.idle} s idle")
            time.sleep(2.0)
            before = process_seconds(rsp.pid)
            time.sleep(args.idle)
            spent = process_seconds(rsp.pid) - before
            workers = json.loads(subprocess.run([str(VENV_PYTHON), "-m", "rsp", "--admin", str(admin),
                                                 "show", "workers"], capture_output=True, text=True,
                                                timeout=30, check=False).stdout)
            print(f"   master pid {rsp.pid}: {spent:.2f} CPU s in {args.idle} s "
                  f"({spent / args.idle * 100:.2f}% of a core); workers now: "
                  f"{[w['name'] for w in workers['workers']]}, reloads {workers['reloads']}")
        except BenchError as exc:
            print(f"bench: {exc}", file=sys.stderr)
            return 1
        finally:
            servers.stop_all()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
