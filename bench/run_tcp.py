"""Benchmark rsp against HAProxy (and nginx, and direct-to-backend) on loopback; print ratios.

    .venv/bin/python bench/run_tcp.py [--quick] [--reps N] [--duration S] [--scenario tcp|http|lb]

The figure that matters on a 2-core box is the proxy's CPU time per request (or per MiB), not raw req/s:
wrk plus the backend saturate one core at about the rate the proxy saturates the other (docs/performance.md, "Method").
Everything started here is stopped in `finally`, also on Ctrl-C or SIGTERM. See bench/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

import configs
import procstat
import report
import scenarios
from lib import (
    CLIENT_SLACK,
    LOOPBACK,
    WRK_SCRIPT,
    WRK_VARIED_SCRIPT,
    BenchError,
    Server,
    Servers,
    ab_argv,
    ensure_tools,
    free_ports,
    parse_ab,
    parse_wrk,
    run_client,
    wrk_argv,
)

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
DEFAULT_RSP_CMD = "{python} -m rsp {config}"

# Full and --quick defaults. Full: ~10 s runs x 3 repetitions, as in the measurements of docs/performance.md;
# quick: enough to see that everything works and get rough ratios in about a minute per target.
FULL = {"duration": 10, "reps": 3, "ab_requests": 100_000}
QUICK = {"duration": 3, "reps": 2, "ab_requests": 20_000}
WARMUP_SECONDS = 1  # one short wrk run per target before measuring: first-connection and import costs
PAUSE_BETWEEN_RUNS = 0.3  # let closing connections settle so one run's teardown is not billed to the next
# ab's slowest plausible rate (new connections/s) on a loaded box, to bound its run time.
AB_MIN_RATE = 500
OTHERS_SHOWN = 5  # busiest foreign processes named in the notes
OTHERS_MIN_SECONDS = 0.5  # below this a foreign process did not disturb the figures


@dataclasses.dataclass
class Target:
    name: str
    port: int
    server: Server | None  # None: direct to the backend

    @property
    def pid(self) -> int | None:
        return self.server.pid if self.server else None


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", choices=sorted(scenarios.SCENARIOS), default="tcp")
    p.add_argument("--quick", action="store_true", help="short runs: 3 s, 2 repetitions, ab -n 20000")
    p.add_argument("--reps", type=int, help="repetitions per test and target (default 3, quick 2)")
    p.add_argument("--duration", type=int, help="seconds per wrk run (default 10, quick 3)")
    p.add_argument("--ab-requests", type=int, help="ab -n (default 100000, quick 20000)")
    p.add_argument("--tests", default="small,varied,1m,ab,latency",
                   help="comma list of: small,varied,1m,ab,latency")
    p.add_argument("--targets", help="comma list of target names to run (default: all, plus direct)")
    p.add_argument("--python", default=str(VENV_PYTHON if VENV_PYTHON.exists() else sys.executable),
                   help="interpreter for rsp")
    p.add_argument("--rsp-cmd", default=DEFAULT_RSP_CMD,
                   help="command template that starts rsp; placeholders {python} {config} {port} "
                        "{backend_port} {backends} {tmp}")
    p.add_argument("--proxy-cmd", action="append", default=[], metavar="NAME=TEMPLATE",
                   help="an extra proxy to compare with haproxy (same placeholders; {config} is an rsp "
                        "config for its port); repeatable")
    p.add_argument("--lb-mode", choices=("http", "tcp"), default="http", help="proxy mode of --scenario lb")
    p.add_argument("--results", default=str(BENCH_DIR / "RESULTS.md"), help="markdown file to append to")
    p.add_argument("--no-results", action="store_true", help="print only; do not append to RESULTS.md")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (configs, server logs)")
    args = p.parse_args(argv)
    defaults = QUICK if args.quick else FULL
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.reps < 1 or args.duration < 1 or args.ab_requests < 100:
        p.error("--reps and --duration must be >= 1, --ab-requests >= 100")
    for item in args.proxy_cmd:
        if "=" not in item:
            p.error(f"--proxy-cmd wants NAME=TEMPLATE, got {item!r}")
    return args


def rsp_problem(python: str) -> str | None:
    """Why rsp cannot run yet, or None when `python -m rsp --version` works."""
    if not (REPO / "src" / "rsp" / "cli.py").exists():
        return "src/rsp/cli.py does not exist yet"
    try:
        out = subprocess.run([python, "-m", "rsp", "--version"], capture_output=True, text=True, timeout=30,
                             cwd=REPO, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`python -m rsp --version` failed: {exc}"
    if out.returncode != 0:
        return f"`python -m rsp --version` exited {out.returncode}: {(out.stderr or out.stdout).strip()[-300:]}"
    return None


def measure(target: Target, load: scenarios.Load, rep: int, backends: list[Server], tools: dict[str, str],
            script: Path) -> report.Sample:
    url = f"http://{LOOPBACK}:{target.port}{load.path}"
    if load.tool == "ab":
        argv = ab_argv(tools["ab"], url, load.requests, load.conns)
        timeout = load.requests / AB_MIN_RATE + CLIENT_SLACK
    else:
        wrk_script = script.with_name("varied.lua") if load.tool == "wrk-varied" else script
        argv = wrk_argv(tools["wrk"], wrk_script, url, load.conns, load.duration)
        timeout = load.duration + CLIENT_SLACK
    roots = [b.pid for b in backends] + ([target.pid] if target.pid else [])
    before = procstat.snapshot(roots)
    t0 = time.monotonic()
    text = run_client(argv, timeout)
    wall = time.monotonic() - t0
    after = procstat.snapshot(roots)
    result = parse_ab(text) if load.tool == "ab" else parse_wrk(text)

    def used(pid: int) -> float:
        return after.trees.get(pid, 0.0) - before.trees.get(pid, 0.0)

    proxy_cpu = used(target.pid) if target.pid else None
    backend_cpu = sum(used(b.pid) for b in backends)
    client_cpu = after.children_cpu - before.children_cpu
    other = procstat.other_seconds(before, after) / wall if wall else 0.0
    return report.Sample(load=load, target=target.name, rep=rep, result=result, proxy_cpu=proxy_cpu,
                         backend_cpu=backend_cpu, client_cpu=client_cpu, wall=wall, other_cores=other)


def progress(s: report.Sample, reps: int) -> str:
    cpu = "" if s.proxy_cpu is None else f"  proxy {s.proxy_per_unit:8.3f} {report.unit_label(s.load)}"
    return (f"  [{s.load.name}] rep {s.rep + 1}/{reps} {s.target:>12}: {s.result.rps:10,.0f} req/s "
            f"{s.result.mib_per_s:8.1f} MiB/s{cpu}  p50 {s.result.p50_ms:.3f} ms  errors {s.result.errors}"
            f"  other load {s.other_cores:.2f}")


def run(args: argparse.Namespace, servers: Servers, tmp: Path, notes: list[str]) -> str:
    opts = scenarios.Options(
        duration=args.duration, reps=args.reps, ab_requests=args.ab_requests, lb_mode=args.lb_mode,
        rsp_cmd=args.rsp_cmd, extra=tuple((n, t) for n, t in (item.split("=", 1) for item in args.proxy_cmd)),
    )
    scenario = scenarios.SCENARIOS[args.scenario](opts)
    wanted = set(args.targets.split(",")) if args.targets else None
    proxies = [p for p in scenario.proxies if wanted is None or p.name in wanted]
    loads = [ld for ld in scenario.loads if ld.key in args.tests.split(",")]
    if not loads:
        raise BenchError(f"--tests {args.tests!r} selects nothing; choose from small,varied,1m,ab,latency")

    if any(p.is_rsp for p in proxies) and args.rsp_cmd == DEFAULT_RSP_CMD:
        problem = rsp_problem(args.python)
        if problem:
            msg = f"rsp skipped: {problem}"
            print(f"bench: {msg}", file=sys.stderr)
            notes.append(msg)
            proxies = [p for p in proxies if not p.is_rsp]

    needed = ["nginx", "wrk", "ab", *sorted({t for p in proxies for t in p.tools})]
    tools = ensure_tools(needed)
    script = tmp / "report.lua"
    script.write_text(WRK_SCRIPT)
    script.with_name("varied.lua").write_text(WRK_VARIED_SCRIPT)
    docroot = configs.write_docroot(tmp)

    backend_ports = free_ports(scenario.backends)
    backends = [servers.start(f"backend{i}", configs.nginx_backend(tools["nginx"], tmp, f"backend{i}", port,
                                                                   docroot), port)
                for i, port in enumerate(backend_ports, 1)]
    ctx = scenarios.Ctx(tmp=tmp, tools=tools, python=args.python, backends=tuple(backend_ports), opts=opts)

    targets: list[Target] = []
    for proxy in proxies:
        port = free_ports(1)[0]
        try:
            argv = proxy.start(ctx, port)
            targets.append(Target(proxy.name, port, servers.start(proxy.name, argv, port, cwd=REPO)))
        except BenchError as exc:
            print(f"bench: {proxy.name} did not start, skipped: {exc}", file=sys.stderr)
            notes.append(f"{proxy.name} did not start: {str(exc).splitlines()[0]}")
    if wanted is None or report.DIRECT in wanted:
        targets.append(Target(report.DIRECT, backend_ports[0], None))
    print(f"bench: scenario {scenario.name}; targets {', '.join(t.name for t in targets)}; "
          f"{args.reps} repetitions; temp dir {tmp}", file=sys.stderr)

    for t in targets:  # warm-up, not measured
        run_client(wrk_argv(tools["wrk"], script, f"http://{LOOPBACK}:{t.port}{configs.SMALL_PATH}", 10,
                            WARMUP_SECONDS), WARMUP_SECONDS + CLIENT_SLACK)

    loadavg_start = Path("/proc/loadavg").read_text().split()[:3]
    whole_run = procstat.snapshot([])
    samples: list[report.Sample] = []
    for load in loads:
        for rep in range(args.reps):
            for t in list(targets):  # interleaved: rsp, haproxy, ..., direct, rsp, haproxy, ...
                time.sleep(PAUSE_BETWEEN_RUNS)
                sample = measure(t, load, rep, backends, tools, script)
                samples.append(sample)
                print(progress(sample, args.reps), file=sys.stderr)
                if t.server and t.server.proc.poll() is not None:
                    msg = f"{t.name} exited ({t.server.proc.returncode}) during '{load.name}'; dropped"
                    print(f"bench: {msg}\n{t.server.log_tail()}", file=sys.stderr)
                    notes.append(msg)
                    targets.remove(t)
    loadavg_end = Path("/proc/loadavg").read_text().split()[:3]
    others = sorted(procstat.other_by_comm(whole_run, procstat.snapshot([])).items(), key=lambda kv: -kv[1])
    busiest = ", ".join(f"{comm} {sec:.1f} s" for comm, sec in others[:OTHERS_SHOWN] if sec >= OTHERS_MIN_SECONDS)

    notes.extend(scenario.notes)
    notes.append(f"load average at start {' '.join(loadavg_start)}, at end {' '.join(loadavg_end)}; "
                 "the 2 cores may be shared with other work")
    notes.append(f"busiest other processes during the measured runs (utime+stime): {busiest or 'none'}")
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %z")
    title = f"{now}: scenario {scenario.name}{' (quick)' if args.quick else ''}"
    command = "bench/run_tcp.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    info = report.machine_info(tools, args.python, REPO)
    names = [p.name for p in proxies if any(s.target == p.name for s in samples)] + [report.DIRECT]
    scenario_run = dataclasses.replace(scenario, loads=tuple(loads))
    return report.section(title, command, info, scenario_run, names, samples, notes, args.reps)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    # Also when started from a shell that ignores SIGINT (a background job): Ctrl-C must still clean up.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    tmp = Path(tempfile.mkdtemp(prefix="rsp-bench-"))
    servers = Servers(tmp)
    notes: list[str] = []
    try:
        text = run(args, servers, tmp, notes)
    except KeyboardInterrupt:
        print("bench: interrupted; stopping servers", file=sys.stderr)
        return 130
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    finally:
        servers.stop_all()
        if args.keep_tmp:
            print(f"bench: temp dir kept: {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(text)
    if not args.no_results:
        report.append_results(Path(args.results), text)
        print(f"bench: appended to {args.results}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
