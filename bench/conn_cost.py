"""What one new connection costs a proxy, counted so that a loaded machine does not change the figure.

Starts the benchmark's nginx backend and one proxy (rsp in HTTP mode with `--workers N`, or HAProxy in
`mode http` with `nbthread N`) under a counting wrapper, sends `ab -c C -n A` and then `ab -c C -n B`
through it, and reports the MARGINAL cost per request, (count(B) - count(A)) / (B - A), so start-up,
imports and shutdown cancel out:

    --count syscalls   strace -f -c: system calls per request, by name (accept4, epoll_wait, EAGAIN...)
    --count instr      valgrind --tool=cachegrind (no cache simulation): CPU instructions per request (rsp:
                       its workers' only, see WORKER_UNDER_VALGRIND)
    --count accepts    strace -f -e accept4,epoll_wait: accepts, empty accepts (EAGAIN) and epoll wake-ups per
                       request, in all and per process (rsp worker; HAProxy thread), busiest first (strace
                       slows the traced process: the split between workers is not the untraced one)
    --count cpu        utime+stime of the proxy's process tree per request (wall-clock sensitive)
    --count events     the tree's page faults and context switches per request, from /proc (where a
                       wall-clock gap lies when instructions agree; this VM has no hardware counters)

    .venv/bin/python bench/conn_cost.py --target rsp --count syscalls --workers 2
    .venv/bin/python bench/conn_cost.py --target haproxy --count instr
    RSP_BENCH_CALLGRIND_DIR=/tmp/profiles .venv/bin/python bench/conn_cost.py --count instr   # + rsp worker profiles

ab opens a new connection per request (no -k): this is the table's "new connection per request" figure.
`--load wrk --conns 1000 --small 5 --large 15` counts keep-alive requests instead (wrk runs for that many
seconds; the requests it completed in each run are the divisor).
Every process is stopped by pid; only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import ssl
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import configs
import lib
import procstat
import run_tls
from tls.certs import Authority  # tests/tls/certs.py, on the path through run_tls

ROOT = Path(__file__).resolve().parent.parent
# valgrind slows the proxy about 50-fold: give it time to start and ab time to finish.
READY_SECONDS_UNDER_VALGRIND = 900.0
AB_TIMEOUT = 600.0
STRACE_ROW = re.compile(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(\d+)?\s*(\w+)\s*$")
# One finished call of `strace -f -o` (a call cut by another thread's ends in "<unfinished ...>" and is counted
# on its "<... NAME resumed>" line): pid, name, result, errno name.
STRACE_CALL = re.compile(r"^(\d+)\s+(?:<\.\.\. )?(\w+)(?:\(| resumed>).*\)\s+=\s+(-?\d+)(?:\s+(E[A-Z]+))?")
ACCEPT_CALLS = "accept4,accept,epoll_wait,epoll_pwait"


def proxy_argv(target: str, tmp: Path, port: int, backend: int, workers: int, gc_threshold: int,
               rsp_http: str = "", mode: str = "http", defer_accept: int = 0) -> list[str]:
    """argv of rsp `workers = N` or HAProxy `nbthread N` in `mode` ("http" or "tcp"), its config in `tmp`."""
    if target == "haproxy":
        argv = configs.haproxy(shutil.which("haproxy") or "haproxy", tmp, "haproxy", port, [backend], mode)
        cfg = Path(argv[-1])
        cfg.write_text(cfg.read_text().replace("nbthread 1", f"nbthread {workers}"))
        return argv
    conf = configs.rsp_config(tmp, "rsp", port, [backend], mode)
    text = conf.read_text().replace("workers = 1", f"workers = {workers}")
    if rsp_http:  # more keys of rsp's `http` table, e.g. "pool_max_idle = 2000"
        text = text.replace('access_log = "off"', f'access_log = "off", {rsp_http}')
    conf.write_text(text)
    prelude = ""  # experiments without editing src/, run in the master before rsp starts
    if gc_threshold:  # the GC's first threshold (the workers are spawned: only the master's is set here)
        prelude += f"import gc; gc.set_threshold({gc_threshold}); "
    if defer_accept:  # TCP_DEFER_ACCEPT on every TCP listener the master binds, inherited by the workers
        prelude += DEFER_ACCEPT_PRELUDE.format(seconds=defer_accept)
    if prelude:
        return [sys.executable, "-c", f"import sys; {prelude}from rsp.cli import main; sys.exit(main(sys.argv[1:]))",
                str(conf)]
    return [sys.executable, "-m", "rsp", str(conf)]


# socket.socket is a Python class: its `listen`, looked up on each call (also from compiled code), is wrapped
# so that a TCP listener gets TCP_DEFER_ACCEPT (tcp(7)) before it listens: the kernel queues a connection
# for accept() only once its first data has arrived, so the first read after accept finds the request.
DEFER_ACCEPT_PRELUDE = (
    "import socket; _listen = socket.socket.listen; "
    "socket.socket.listen = lambda self, *a: (self.family in (socket.AF_INET, socket.AF_INET6) and "
    "self.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, {seconds}), _listen(self, *a))[1]; ")


# rsp under valgrind: the master calls pidfd_open, which valgrind does not implement (ENOSYS), so the master
# runs natively and only its workers run under cachegrind. This sitecustomize module, first on the workers'
# path, re-executes a worker (`python -m rsp worker`) under valgrind; the process keeps its pid and the
# descriptors the master passed it. The master does nothing per connection: the worker's count is rsp's.
WORKER_UNDER_VALGRIND = r'''
import os, sys
out = os.environ.get("RSP_BENCH_CACHEGRIND_OUT")
if out and sys.orig_argv[-2:] == ["rsp", "worker"] and not os.environ.get("RSP_BENCH_UNDER_VALGRIND"):
    os.environ["RSP_BENCH_UNDER_VALGRIND"] = "1"
    tool = os.environ.get("RSP_BENCH_VALGRIND_TOOL", "cachegrind")
    argv = ["valgrind", f"--tool={tool}", f"--{tool}-out-file={out}.%p",
            *(["--cache-sim=no"] if tool == "cachegrind" else []), sys.executable, *sys.orig_argv[1:]]
    os.execvp("valgrind", argv)
'''


def rsp_workers_under_valgrind(tmp: Path, argv: list[str], out: Path) -> list[str]:
    # A worker under valgrind starts ~50 times slower than the master's 30 s readiness wait allows.
    ready = f"import rsp.master.master as m; m.WORKER_READY_TIMEOUT = {READY_SECONDS_UNDER_VALGRIND}; "
    if argv[1:3] == ["-m", "rsp"]:
        argv = [argv[0], "-c", f"import sys; {ready}from rsp.cli import main; sys.exit(main(sys.argv[1:]))",
                *argv[3:]]
    elif argv[1] == "-c":  # proxy_argv's experiments (--gc-threshold, --defer-accept) start rsp from code
        argv = [argv[0], "-c", ready + argv[2], *argv[3:]]
    site = tmp / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(WORKER_UNDER_VALGRIND)
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    profile = os.environ.get("RSP_BENCH_CALLGRIND_DIR", "")  # a profile instead: callgrind's files there
    if profile:
        return ["env", f"PYTHONPATH={path}", f"RSP_BENCH_CACHEGRIND_OUT={profile}/callgrind.out",
                "RSP_BENCH_VALGRIND_TOOL=callgrind", *argv]
    return ["env", f"PYTHONPATH={path}", f"RSP_BENCH_CACHEGRIND_OUT={out}", *argv]


def wrap(count: str, argv: list[str], out: Path) -> list[str]:
    if count == "syscalls":
        return ["strace", "-f", "-c", "-o", str(out), *argv]
    if count == "accepts":
        return ["strace", "-f", "-e", f"trace={ACCEPT_CALLS}", "-o", str(out), *argv]
    if count == "instr":
        return ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--trace-children=yes",
                f"--cachegrind-out-file={out}.%p", *argv]
    return argv


def read_syscalls(out: Path) -> tuple[Counter[str], Counter[str]]:
    calls: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for line in out.read_text().splitlines():
        m = STRACE_ROW.match(line)
        if m and m.group(3) != "total":
            calls[m.group(3)] += int(m.group(1))
            if m.group(2):
                errors[m.group(3)] += int(m.group(2))
    return calls, errors


def read_accepts(text: str) -> Counter[str]:
    """Accepts, accepts that found nothing (EAGAIN) and epoll waits, per process (or HAProxy thread): keys
    "p1 accept4", "p1 accept4 EAGAIN", "p1 epoll_wait", "p1 epoll_wait empty" (returned 0), the processes
    ranked by their successful accepts (p1 the busiest), so that two runs' counts can be subtracted although
    their pids differ; and the same without the "pN " prefix, summed over all."""
    by_pid: dict[str, Counter[str]] = {}
    for line in text.splitlines():
        m = STRACE_CALL.match(line)
        if not m:
            continue
        pid, name, result, errno = m.groups()
        counts = by_pid.setdefault(pid, Counter())
        counts[f"{name} {errno}" if errno else name] += 1
        if name.startswith("epoll") and result == "0":
            counts[f"{name} empty"] += 1
    ranked = sorted(by_pid.values(), key=lambda c: -(c["accept4"] + c["accept"]))
    total: Counter[str] = Counter()
    for rank, counts in enumerate(ranked, 1):
        for key, n in counts.items():
            total[f"p{rank} {key}"] += n
            total[key] += n
    return total


def per_process_split(counts: Counter[str]) -> str:
    """One line per process of read_accepts' counts: its accepts (share of all), empty accepts, epoll waits."""
    total = counts["accept4"] + counts["accept"] or 1
    lines = []
    for rank in range(1, 1 + len({k.split()[0] for k in counts if k.startswith("p")})):
        accepts = counts[f"p{rank} accept4"] + counts[f"p{rank} accept"]
        lines.append(f"  p{rank}: {accepts} accepts ({accepts / total * 100:.0f} %), "
                     f"{counts[f'p{rank} accept4 EAGAIN']} EAGAIN, {counts[f'p{rank} epoll_wait']} epoll_wait "
                     f"({counts[f'p{rank} epoll_wait empty']} empty)")
    return "\n".join(lines)


def tree_events(root: int) -> Counter[str]:
    """Page faults (proc(5) stat fields 10 and 12), user and system CPU in µs (fields 14 and 15: which side of
    the system call boundary the CPU went to) and context switches (status) of `root`'s process tree."""
    events: Counter[str] = Counter()
    procs = procstat._read_all()
    for pid in procstat.tree_pids(root, procs):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            status = Path(f"/proc/{pid}/status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        events["minor-faults"] += int(fields[7])
        events["major-faults"] += int(fields[9])
        events["user CPU us"] += int(fields[11]) * 1_000_000 // procstat.CLK_TCK
        events["system CPU us"] += int(fields[12]) * 1_000_000 // procstat.CLK_TCK
        for line in status.splitlines():
            name, _, value = line.partition(":")
            if name.endswith("ctxt_switches"):
                events[name] += int(value)
    return events


def read_instructions(prefix: Path) -> int:
    total = 0
    for f in prefix.parent.glob(prefix.name + ".*"):
        for line in f.read_text().splitlines():
            if line.startswith("summary:"):
                total += int(line.split()[1])
    return total


def wait_answers(port: int, count: int, tls: bool = False) -> None:
    """Until `count` requests in a row, each on a new connection, got a response (every worker is up)."""
    deadline = time.monotonic() + READY_SECONDS_UNDER_VALGRIND
    ok = 0
    while ok < count:
        if time.monotonic() > deadline:
            raise lib.BenchError(f"the proxy on port {port} did not answer within {READY_SECONDS_UNDER_VALGRIND} s")
        conn = (http.client.HTTPSConnection(lib.LOOPBACK, port, timeout=READY_SECONDS_UNDER_VALGRIND,
                                            context=ssl._create_unverified_context()) if tls
                else http.client.HTTPConnection(lib.LOOPBACK, port, timeout=READY_SECONDS_UNDER_VALGRIND))
        try:
            conn.request("GET", configs.SMALL_PATH)
            conn.getresponse().read()
            ok += 1
        except OSError:
            ok = 0
            time.sleep(0.5)
        finally:
            conn.close()


Run = tuple[Counter[str], Counter[str], float, int]


def one_run(opts: argparse.Namespace, requests: int, tmp: Path) -> Run:
    """Start backend and proxy, run `requests` (--load wrk: seconds), stop; returns (calls, errors, cpu or
    instructions, requests served)."""
    servers = lib.Servers(tmp)
    out = tmp / f"count-{requests}"
    port, backend = lib.free_ports(2)
    try:
        docroot = configs.write_docroot(tmp)
        servers.start("backend", configs.nginx_backend(shutil.which("nginx") or "nginx", tmp, "backend",
                                                      backend, docroot), backend)
        if opts.tls:  # a full TLS handshake per request (ab makes no session resumption)
            tmp.chmod(0o755)
            issued = Authority(tmp, "bench-ca").issue("bench", ["bench.example"], kind=opts.tls)
            inner = (run_tls.haproxy_tls(shutil.which("haproxy") or "haproxy", tmp, "haproxy", port, backend,
                                         issued.pem_path) if opts.target == "haproxy"
                     else run_tls.rsp_tls(tmp, "rsp", port, backend, issued.cert_path, issued.key_path))
        else:
            inner = proxy_argv(opts.target, tmp, port, backend, opts.workers, opts.gc_threshold, opts.rsp_http,
                               opts.mode, opts.defer_accept)
        if opts.count == "instr" and opts.target == "rsp":
            argv = rsp_workers_under_valgrind(tmp, inner, out)
        else:
            argv = wrap(opts.count, inner, out)
        old = lib.READY_TIMEOUT
        lib.READY_TIMEOUT = READY_SECONDS_UNDER_VALGRIND
        try:
            proxy = servers.start("proxy", argv, port, cwd=ROOT)
        finally:
            lib.READY_TIMEOUT = old
        url = f"{'https' if opts.tls else 'http'}://{lib.LOOPBACK}:{port}{configs.SMALL_PATH}"
        # The master binds the port before its workers have started (slow under valgrind): wait for answers.
        wait_answers(port, opts.workers * 4, bool(opts.tls))
        before = procstat.tree_seconds([proxy.pid])
        events_before = tree_events(proxy.pid) if opts.count == "events" else Counter()
        if opts.load == "wrk":  # keep-alive: `requests` is the duration in seconds
            script = tmp / "report.lua"
            script.write_text(lib.WRK_SCRIPT)
            argv = lib.wrk_argv(shutil.which("wrk") or "wrk", script, url, opts.conns, requests)
            result = lib.parse_wrk(lib.run_client(argv, AB_TIMEOUT))
        else:
            result = lib.parse_ab(lib.run_client(lib.ab_argv(shutil.which("ab") or "ab", url, requests,
                                                             opts.conns), AB_TIMEOUT))
        if result.errors:
            print(f"  {opts.load} reported {result.errors} errors", file=sys.stderr)
        after = procstat.tree_seconds([proxy.pid])
        events = tree_events(proxy.pid) - events_before if opts.count == "events" else Counter()
        cpu = sum(after.values()) - sum(before.values())
    finally:
        servers.stop_all()
    if opts.count == "syscalls":
        calls, errors = read_syscalls(out)
        return calls, errors, cpu, result.requests
    if opts.count == "accepts":
        return read_accepts(out.read_text()), Counter(), cpu, result.requests
    if opts.count == "instr":
        return Counter(), Counter(), float(read_instructions(out)), result.requests
    if opts.count == "events":
        return events, Counter(), cpu, result.requests
    return Counter(), Counter(), cpu, result.requests


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", choices=("rsp", "haproxy"), default="rsp")
    ap.add_argument("--count", choices=("syscalls", "accepts", "instr", "cpu", "events"), default="syscalls")
    ap.add_argument("--mode", choices=("http", "tcp"), default="http", help="the proxy's mode (not with --tls)")
    ap.add_argument("--workers", type=int, default=1, help="rsp workers / HAProxy nbthread")
    ap.add_argument("--conns", type=int, default=50, help="ab -c")
    ap.add_argument("--rsp-http", default="", help='rsp: more keys of its http table, e.g. "pool_max_idle = 2000"')
    ap.add_argument("--gc-threshold", type=int, default=0, help="rsp: gc.set_threshold(N) before start-up")
    ap.add_argument("--defer-accept", type=int, default=0, metavar="SECONDS",
                    help="rsp: TCP_DEFER_ACCEPT on its listeners (an experiment, no src/ edit)")
    ap.add_argument("--small", type=int, default=200, help="requests of the baseline run (wrk: seconds)")
    ap.add_argument("--large", type=int, default=2200, help="requests of the measured run (wrk: seconds)")
    ap.add_argument("--tls", choices=("rsa", "ec"), default="",
                    help="terminate TLS with an RSA 2048 or ECDSA P-256 certificate: a full handshake per request "
                         "(workers = 1 for rsp)")
    ap.add_argument("--load", choices=("ab", "wrk"), default="ab",
                    help="ab: a new connection per request; wrk: keep-alive (wrk -t1 -cN for --small/--large s)")
    opts = ap.parse_args()
    runs = []
    for n in (opts.small, opts.large):
        with tempfile.TemporaryDirectory(prefix="rsp-conncost-") as d:
            runs.append(one_run(opts, n, Path(d)))
    (c1, e1, v1, n1), (c2, e2, v2, n2) = runs
    per = n2 - n1
    gc_note = (f" gc threshold {opts.gc_threshold}" if opts.gc_threshold else "") + (
        f" defer-accept {opts.defer_accept}" if opts.defer_accept else "") + (
        f" http {{{opts.rsp_http}}}" if opts.rsp_http else "")
    tls_note = f" tls {opts.tls}" if opts.tls else ""
    label = (f"{opts.target} {opts.mode} workers={opts.workers}{gc_note}{tls_note} {opts.load} -c{opts.conns}, "
             f"marginal over {per} requests")
    if opts.count == "syscalls":
        print(f"{label}: system calls per request (errors per request)")
        names = sorted(set(c2) | set(c1), key=lambda k: -(c2[k] - c1[k]))
        total = sum(c2.values()) - sum(c1.values())
        for name in names:
            delta = (c2[name] - c1[name]) / per
            if abs(delta) >= 0.005:
                err = (e2[name] - e1[name]) / per
                print(f"  {name:<16} {delta:7.2f}" + (f"  ({err:.2f} errors)" if err >= 0.005 else ""))
        print(f"  {'total':<16} {total / per:7.2f}")
    elif opts.count == "accepts":
        print(f"{label}: per request, all processes")
        for name in sorted(k for k in set(c2) | set(c1) if not k.startswith("p")):
            print(f"  {name:<26} {(c2[name] - c1[name]) / per:9.2f}")
        print(f"  {'CPU us':<26} {(v2 - v1) / per * 1e6:9.1f}")
        print(f"the run of {n2} requests, by process (thread for HAProxy), busiest first:")
        print(per_process_split(c2))
    elif opts.count == "events":
        print(f"{label}: per request")
        for name in sorted(set(c2) | set(c1)):
            print(f"  {name:<26} {(c2[name] - c1[name]) / per:9.2f}")
        print(f"  {'CPU us':<26} {(v2 - v1) / per * 1e6:9.1f}")
    elif opts.count == "instr":
        print(f"{label}: {(v2 - v1) / per:,.0f} instructions per request")
    else:
        print(f"{label}: {(v2 - v1) / per * 1e6:.1f} us CPU per request")


if __name__ == "__main__":
    main()
