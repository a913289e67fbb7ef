"""Issue 23's table from one command: every figure as a ratio to HAProxy, interleaved, on one machine.

    .venv/bin/python bench/haproxy_table.py [--reps 5] [--duration 5] [--only new-conn-1,tcp,...] [--quick]

One nginx backend; for each figure rsp and HAProxy side by side (rsp `workers = N` against `nbthread N`),
both started once and kept running. Each repetition runs every figure on both proxies before the next
repetition starts (rsp first in even repetitions, HAProxy first in odd ones), so a noisy moment on the shared
machine hurts both alike. CPU is utime+stime of the proxy's whole process tree (/proc, bench/procstat.py),
measured around each run and divided by the requests the load generator completed. The figures:

    new-conn-1     ab -c100, a new connection per request, HTTP, workers = 1 / nbthread 1  (as run_tcp.py's ab)
    new-conn-2     the same, workers = 2 / nbthread 2
    keepalive-2    wrk -t1 -c50, small keep-alive requests, workers = 2 / nbthread 2        (as run_workers.py)
    handshake-ec   ab -c50 over TLS, a full ECDSA P-256 handshake per request, 1 / 1         (as conn_cost.py --tls ec)
    handshake-rsa  the same, RSA 2048
    tls-keepalive  wrk -t1 -c20 over TLS (RSA 2048), keep-alive requests, 1 / 1              (as run_tls.py)
    tcp            wrk -t1 -c50, small keep-alive requests, TCP mode, 1 / 1                  (as run_tcp.py's small)
    idle-memory    RSS per idle keep-alive connection, 1 / 1 (bench/idle_memory.py: fresh servers each run)

It prints the commit, whether rsp is compiled, the load average before and after, and one markdown table:
median of the runs for each proxy, median ÷ median, the per-run ratios, the issue's target. Everything it
starts it stops (`finally`, process groups by pid); every load is bounded (ab -t, wrk -d, each with a timeout).
Run from the repository root; this tree's src/ is put first on PYTHONPATH for rsp.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

import configs  # noqa: E402
import conn_cost  # noqa: E402
import idle_memory  # noqa: E402
import lib  # noqa: E402
import procstat  # noqa: E402
import run_tcp  # noqa: E402
import run_tls  # noqa: E402  (puts src/ and tests/ on sys.path: rsp, tls.certs)
from tls.certs import Authority  # noqa: E402

RSP, HAPROXY = "rsp", "haproxy"
NEW_CONN_CONNS = 100  # ab -c of the issue's "new connection per request" figure
HANDSHAKE_CONNS = 50  # ab -c of conn_cost.py --tls
KEEPALIVE_CONNS = 50  # wrk -c of run_workers.py and run_tcp.py's small test
TLS_KEEPALIVE_CONNS = 20  # wrk -c of run_tls.py's keep-alive test
# ab stops at `-t` seconds; -n only has to be above what it can do in that time (ab's own -t default caps it
# at 50,000, too few for a compiled proxy in 10 s).
AB_MAX_REQUESTS = 10_000_000
WARMUP_SECONDS = 1
READY_ANSWERS_PER_WORKER = 4  # in a row, each on a new connection: every worker is serving
IDLE_CONNS = 1000  # idle_memory.py's default; --quick uses fewer
QUICK_IDLE_CONNS = 200


@dataclass(frozen=True)
class Figure:
    key: str
    title: str
    unit: str  # of the medians: "µs CPU/request", "µs CPU/handshake", "KB/connection"
    workers: int  # rsp workers = HAProxy nbthread
    target: str  # as the issue writes it
    pair: str  # the pair of running proxies it uses ("" for idle-memory: started per run)
    load: str  # "ab", "wrk" or "idle"
    conns: int = 0


FIGURES: tuple[Figure, ...] = (
    Figure("new-conn-1", "a new connection per request, HTTP (ab -c100)", "µs CPU/request", 1, "≤ 1.05x",
           "http-1", "ab", NEW_CONN_CONNS),
    Figure("new-conn-2", "a new connection per request, HTTP (ab -c100), workers = 2 vs nbthread 2", "µs CPU/request",
           2, "≤ 1.05x", "http-2", "ab", NEW_CONN_CONNS),
    Figure("keepalive-2", "small keep-alive requests (wrk -c50), workers = 2 vs nbthread 2", "µs CPU/request", 2,
           "≤ 1.05x", "http-2", "wrk", KEEPALIVE_CONNS),
    Figure("handshake-ec", "ECDSA P-256 full handshake (ab -c50)", "µs CPU/handshake", 1, "≤ 1.10x", "tls-ec",
           "ab", HANDSHAKE_CONNS),
    Figure("handshake-rsa", "RSA 2048 full handshake (ab -c50)", "µs CPU/handshake", 1, "≤ 1.05x", "tls-rsa", "ab",
           HANDSHAKE_CONNS),
    Figure("tls-keepalive", "keep-alive request over TLS (wrk -c20)", "µs CPU/request", 1, "≤ 1.00x", "tls-rsa",
           "wrk", TLS_KEEPALIVE_CONNS),
    Figure("tcp", "small requests in TCP mode, per core (wrk -c50)", "µs CPU/request", 1, "≤ 1.00x", "tcp-1", "wrk",
           KEEPALIVE_CONNS),
    Figure("idle-memory", "memory per idle keep-alive connection", "KB/connection", 1, "rsp ≤ 1.5 KB", "", "idle"),
)
BY_KEY = {f.key: f for f in FIGURES}


# ------------------------------------------------------------------------------------------ pure parts


@dataclass
class Sample:
    figure: str
    proxy: str
    rep: int
    value: float  # in the figure's unit
    errors: int = 0
    worker_cpu: tuple[float, ...] = ()  # CPU seconds of each rsp worker process / HAProxy thread in this run
    rps: float = math.nan  # requests (handshakes) per second the load generator saw: a slower proxy batches less


def median(values: Sequence[float]) -> float:
    clean = [v for v in values if not math.isnan(v)]
    return statistics.median(clean) if clean else math.nan


def per_run_ratios(samples: Sequence[Sample], figure: str) -> list[float]:
    """rsp ÷ HAProxy in each repetition that has both, in repetition order."""
    hap = {s.rep: s.value for s in samples if s.figure == figure and s.proxy == HAPROXY}
    return [s.value / hap[s.rep] if hap.get(s.rep) else math.nan
            for s in sorted(samples, key=lambda s: s.rep) if s.figure == figure and s.proxy == RSP and s.rep in hap]


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "—"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def table_row(figure: Figure, samples: Sequence[Sample]) -> str:
    mine = [s for s in samples if s.figure == figure.key]
    rsp = median([s.value for s in mine if s.proxy == RSP])
    hap = median([s.value for s in mine if s.proxy == HAPROXY])
    ratio = rsp / hap if hap and not math.isnan(rsp) and not math.isnan(hap) else math.nan
    runs = ", ".join("—" if math.isnan(r) else f"{r:.2f}" for r in per_run_ratios(samples, figure.key))
    errors = sum(s.errors for s in mine)
    title = figure.title + (f" ({errors} errors)" if errors else "")
    ratio_text = "—" if math.isnan(ratio) else f"**{ratio:.2f}x**"
    return (f"| {title}, {figure.unit} | {_fmt(rsp)} | {_fmt(hap)} | {ratio_text} | {runs or '—'} "
            f"| {figure.target} | {figure.workers} / {figure.workers} |")


def table(figures: Sequence[Figure], samples: Sequence[Sample]) -> str:
    head = ("| figure | rsp (median) | HAProxy (median) | rsp ÷ HAProxy (median ÷ median) | per-run ratios "
            "| target | workers / nbthread |\n|---|--:|--:|--:|---|--:|--:|")
    return "\n".join([head, *(table_row(f, samples) for f in figures)])


def worker_split(samples: Sequence[Sample], figure: str, proxy: str) -> str:
    """Each rsp worker's (HAProxy thread's) share of their CPU, % per run, largest first: how the load split."""
    runs = []
    for s in samples:
        if s.figure == figure and s.proxy == proxy and len(s.worker_cpu) > 1 and sum(s.worker_cpu):
            runs.append("/".join(f"{c / sum(s.worker_cpu) * 100:.0f}" for c in sorted(s.worker_cpu, reverse=True)))
    return ", ".join(runs)


def select(only: str) -> list[Figure]:
    """The figures named in `--only` (comma list of keys), in the table's order; all when empty."""
    if not only:
        return list(FIGURES)
    keys = [k.strip() for k in only.split(",") if k.strip()]
    unknown = [k for k in keys if k not in BY_KEY]
    if unknown:
        raise lib.BenchError(f"--only: unknown figure(s) {unknown}; choose from {', '.join(BY_KEY)}")
    return [f for f in FIGURES if f.key in keys]


def ab_timed_argv(ab: str, url: str, conns: int, seconds: int) -> list[str]:
    """lib.ab_argv for `seconds` of load: -t before -n (ab's -t resets -n to 50,000; a later -n overrides)."""
    argv = lib.ab_argv(ab, url, AB_MAX_REQUESTS, conns)
    return [argv[0], "-t", str(seconds), *argv[1:]]


# ------------------------------------------------------------------------------------------ running


@dataclass
class Pair:
    """rsp and HAProxy, configured alike, both running."""

    scheme: str  # "http" or "https"
    servers: dict[str, lib.Server] = field(default_factory=dict)


def _issue(tmp: Path, kind: str) -> tuple[Path, Path, Path]:
    issued = Authority(tmp, f"ca-{kind}").issue(f"bench-{kind}", ["bench.example"], kind=kind)
    return issued.cert_path, issued.key_path, issued.pem_path


def pair_argv(name: str, d: Path, rsp_port: int, hap_port: int, backend: int,
              haproxy_bin: str) -> tuple[dict[str, list[str]], int, str]:
    """The argv of rsp and HAProxy for pair `name` ("http-N", "tcp-N", "tls-ec", "tls-rsa"), their configs and
    certificates written in `d`; with the workers (= nbthread) and the URL scheme."""
    if name.startswith("tls-"):
        cert, key, pem = _issue(d, name.removeprefix("tls-"))
        return ({RSP: run_tls.rsp_tls(d, "rsp", rsp_port, backend, cert, key),
                 HAPROXY: run_tls.haproxy_tls(haproxy_bin, d, "haproxy", hap_port, backend, pem)}, 1, "https")
    mode, workers = name.split("-")[0], int(name.split("-")[1])
    return ({p: conn_cost.proxy_argv(p, d, port, backend, workers, 0, mode=mode)
             for p, port in ((RSP, rsp_port), (HAPROXY, hap_port))}, workers, "http")


def start_pair(name: str, servers: lib.Servers, tmp: Path, backend: int, tools: dict[str, str]) -> Pair:
    """Start rsp and HAProxy for one of the pairs the figures use; waits until every rsp worker answers."""
    d = tmp / name
    d.mkdir()
    d.chmod(0o755)
    rsp_port, hap_port = lib.free_ports(2)
    argv, workers, scheme = pair_argv(name, d, rsp_port, hap_port, backend, tools["haproxy"])
    pair = Pair(scheme)
    for proxy, port in ((RSP, rsp_port), (HAPROXY, hap_port)):
        pair.servers[proxy] = servers.start(f"{name}-{proxy}", argv[proxy], port, cwd=REPO)
        # rsp's master binds the port before its workers serve: wait until they all answer.
        conn_cost.wait_answers(port, workers * READY_ANSWERS_PER_WORKER, scheme == "https")
    return pair


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of each thread of one process (/proc/PID/task/TID/stat has the stat line's format)."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out[int(task.name)] = procstat.parse_stat((task / "stat").read_text()).ticks / procstat.CLK_TCK
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue  # a thread that ended meanwhile
    return out


def process_cpu(root: int) -> dict[int, float]:
    """CPU seconds (with reaped children) of every process in `root`'s tree."""
    procs = procstat._read_all()
    return {pid: procs[pid].total / procstat.CLK_TCK for pid in procstat.tree_pids(root, procs)}


def run_load(figure: Figure, pair: Pair, proxy: str, rep: int, seconds: int, tools: dict[str, str],
             script: Path) -> Sample:
    server = pair.servers[proxy]
    url = f"{pair.scheme}://{lib.LOOPBACK}:{server.port}{configs.SMALL_PATH}"
    if figure.load == "ab":
        argv, parse = ab_timed_argv(tools["ab"], url, figure.conns, seconds), lib.parse_ab
    else:
        argv, parse = lib.wrk_argv(tools["wrk"], script, url, figure.conns, seconds), lib.parse_wrk
    threads = thread_cpu(server.pid) if proxy == HAPROXY else {}
    before = process_cpu(server.pid)
    result = parse(lib.run_client(argv, seconds + lib.CLIENT_SLACK))
    after = process_cpu(server.pid)
    cpu = sum(after.values()) - sum(before.values())
    if proxy == RSP:  # the workers are the master's children
        workers = tuple(after[pid] - before.get(pid, 0.0) for pid in after if pid != server.pid)
    else:
        workers = tuple(v - threads.get(tid, 0.0) for tid, v in thread_cpu(server.pid).items())
    value = cpu / result.requests * 1e6 if result.requests else math.nan
    return Sample(figure.key, proxy, rep, value, result.errors, workers, result.rps)


def warm_up(pair: Pair, tools: dict[str, str], script: Path) -> None:
    for server in pair.servers.values():
        url = f"{pair.scheme}://{lib.LOOPBACK}:{server.port}{configs.SMALL_PATH}"
        lib.run_client(lib.wrk_argv(tools["wrk"], script, url, 10, WARMUP_SECONDS), WARMUP_SECONDS + lib.CLIENT_SLACK)


def measure(figures: Sequence[Figure], reps: int, seconds: int, idle_conns: int, tools: dict[str, str],
            tmp: Path, servers: lib.Servers, log: Callable[[str], None]) -> list[Sample]:
    docroot = configs.write_docroot(tmp)
    script = tmp / "report.lua"
    script.write_text(lib.WRK_SCRIPT)
    backend = lib.free_ports(1)[0]
    servers.start("backend", configs.nginx_backend(tools["nginx"], tmp, "backend", backend, docroot), backend)
    pairs: dict[str, Pair] = {}
    for name in dict.fromkeys(f.pair for f in figures if f.pair):
        pairs[name] = start_pair(name, servers, tmp, backend, tools)
        warm_up(pairs[name], tools, script)
    samples: list[Sample] = []
    for rep in range(reps):
        for figure in figures:
            order = (RSP, HAPROXY) if rep % 2 == 0 else (HAPROXY, RSP)
            for proxy in order:
                time.sleep(run_tcp.PAUSE_BETWEEN_RUNS)
                if figure.load == "idle":
                    value = idle_memory.idle_rss(proxy, idle_conns).kb_per_connection
                    sample = Sample(figure.key, proxy, rep, value)
                else:
                    sample = run_load(figure, pairs[figure.pair], proxy, rep, seconds, tools, script)
                samples.append(sample)
                log(f"rep {rep + 1}/{reps} {figure.key:<14} {proxy:<8} {sample.value:9.2f} {figure.unit}"
                    + ("" if math.isnan(sample.rps) else f"  {sample.rps:9,.0f}/s")
                    + (f"  errors {sample.errors}" if sample.errors else ""))
        for pair in pairs.values():
            for server in pair.servers.values():
                if server.proc.poll() is not None:
                    raise lib.BenchError(f"{server.name} exited ({server.proc.returncode}):\n{server.log_tail()}")
    return samples


def header(command: str) -> list[str]:
    import rsp
    import rsp.native

    rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                         timeout=10, check=False).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "src"], capture_output=True,
                           text=True, timeout=10, check=False).stdout.strip()
    return [f"command: `{command}`",
            f"rsp commit: {rev or 'unknown'}{' (src/ has uncommitted changes)' if dirty else ''}",
            f"rsp build: {rsp.native.build_description()} ({Path(rsp.__file__).parent})",
            f"haproxy: {lib.tool_version([shutil.which('haproxy') or 'haproxy', '-v'])}",
            f"machine: {os.cpu_count()} CPUs"]


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=5, help="interleaved repetitions (default 5)")
    p.add_argument("--duration", type=int, default=5, help="seconds per load run (default 5)")
    p.add_argument("--only", default="", help=f"comma list of figures: {','.join(BY_KEY)}")
    p.add_argument("--idle-conns", type=int, default=IDLE_CONNS, help="idle-memory: connections per step")
    p.add_argument("--quick", action="store_true", help=f"a smoke run: 1 repetition of 2 s, {QUICK_IDLE_CONNS} "
                                                        "idle connections")
    args = p.parse_args(argv)
    if args.quick:
        args.reps, args.duration, args.idle_conns = 1, 2, QUICK_IDLE_CONNS
    if args.reps < 1 or args.duration < 1 or args.idle_conns < 1:
        p.error("--reps, --duration and --idle-conns must be >= 1")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, run_tcp._terminate)
    # rsp's processes import this tree's rsp (the shared venv's editable install is another checkout's).
    src = str(REPO / "src")
    if os.environ.get("PYTHONPATH", "").split(os.pathsep)[0] != src:
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p)
    try:
        figures = select(args.only)
        tools = lib.ensure_tools(["nginx", "haproxy", "wrk", "ab"])
    except lib.BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    command = "bench/haproxy_table.py " + " ".join(argv)
    info = header(command.strip())
    load_before = loadavg()
    tmp = Path(tempfile.mkdtemp(prefix="rsp-table-"))
    tmp.chmod(0o755)
    servers = lib.Servers(tmp)
    whole = procstat.snapshot([])
    t0 = time.monotonic()
    try:
        samples = measure(figures, args.reps, args.duration, args.idle_conns, tools, tmp, servers,
                          lambda line: print(line, file=sys.stderr, flush=True))
    except KeyboardInterrupt:
        print("bench: interrupted; stopping servers", file=sys.stderr)
        return 130
    except lib.BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    finally:
        servers.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    other = procstat.other_seconds(whole, procstat.snapshot([])) / max(1e-9, time.monotonic() - t0)
    info.append(f"load average before {load_before}, after {loadavg()}; other load during the run "
                f"{other:.2f} cores (machine busy time minus this bench's processes)")
    info.append(f"{args.reps} interleaved repetition(s), {args.duration} s per load run"
                + (" (--quick: a smoke run, not a measurement)" if args.quick else ""))
    print("\n".join(f"- {line}" for line in info) + "\n")
    print(table(figures, samples))
    for f in (f for f in figures if f.workers > 1):
        print(f"\n{f.key}: shares of the CPU, % per run, of rsp's workers: {worker_split(samples, f.key, RSP)}; "
              f"of HAProxy's threads: {worker_split(samples, f.key, HAPROXY)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
