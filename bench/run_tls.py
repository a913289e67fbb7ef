"""TLS benchmark: rsp against HAProxy, same certificate, same backend (nginx), on loopback; prints ratios.

    .venv/bin/python bench/run_tls.py [--duration S] [--reps N] [--conns C]

Two tests per certificate kind (RSA 2048 and ECDSA P-256), each proxy in HTTP mode terminating TLS:
- keep-alive: `wrk` over TLS (-c C, one handshake per connection, then requests on it): the proxy's CPU
  seconds per request;
- handshakes: `openssl s_time -new` (a full handshake per connection, no resumption, one HTTP/1.0 request
  each): the proxy's CPU seconds per handshake.
CPU is user + system time of the proxy's process tree from /proc, measured around each run. The target
(issue 11): rsp within 1.3x of HAProxy on both. HAProxy gets Mozilla's intermediate ciphers and TLS 1.2+
like rsp, one thread, `alpn http/1.1`; rsp `workers = 1` (its default is a worker per core, which compared two
processes with one thread until 2026-12-07). Everything started here is stopped in `finally`.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import configs
import procstat
from lib import LOOPBACK, WRK_SCRIPT, BenchError, Servers, ensure_tools, free_ports, parse_wrk, run_client

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "tests"))

from rsp.config.model import MOZILLA_INTERMEDIATE_CIPHERS  # noqa: E402
from tls.certs import Authority  # noqa: E402  (tests/tls/certs.py: the tests' certificate maker)

S_TIME_RE = re.compile(r"(\d+) connections in ([\d.]+)s")
CLIENT_SLACK = 60.0


def haproxy_tls(haproxy_bin: str, tmp: Path, name: str, port: int, backend: int, pem: Path) -> list[str]:
    conf = tmp / f"{name}.cfg"
    timeouts = "".join(f"    {t}\n" for t in configs.HAPROXY_TIMEOUTS)
    conf.write_text(f"""\
global
    nbthread 1
    ssl-default-bind-ciphers {MOZILLA_INTERMEDIATE_CIPHERS}
    ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
    mode http
{timeouts}    option forwardfor
    http-reuse always
frontend fe
    bind {LOOPBACK}:{port} ssl crt {pem} alpn http/1.1
    default_backend be
backend be
    server s1 {LOOPBACK}:{backend}
""")
    return [haproxy_bin, "-db", "-f", str(conf)]


def rsp_tls(tmp: Path, name: str, port: int, backend: int, cert: Path, key: Path) -> list[str]:
    conf = tmp / f"{name}.lua"
    conf.write_text(f"""\
listen = {{ {{ address = "{LOOPBACK}", port = {port}, mode = "http",
  tls = {{ certificates = {{ {{ cert = "{cert}", key = "{key}", names = {{ "bench.example" }} }} }} }} }} }}
backends = {{ "{LOOPBACK}:{backend}" }}
http = {{ access_log = "off" }}
workers = 1
""")
    return [sys.executable, "-m", "rsp", str(conf)]


def cpu_of(pid: int, run: object) -> tuple[float, object]:
    before = procstat.tree_seconds([pid])[pid]
    result = run() if callable(run) else None
    after = procstat.tree_seconds([pid])[pid]
    return after - before, result


def keepalive(wrk: str, script: Path, port: int, conns: int, duration: int, pid: int) -> tuple[float, int]:
    argv = [wrk, "-t1", f"-c{conns}", f"-d{duration}s", "--timeout", "10s", "-s", str(script),
            f"https://{LOOPBACK}:{port}{configs.SMALL_PATH}"]
    cpu, text = cpu_of(pid, lambda: run_client(argv, duration + CLIENT_SLACK))
    result = parse_wrk(str(text))
    if result.errors:
        raise BenchError(f"wrk saw {result.errors} errors on port {port}")
    return cpu, result.requests


def handshakes(openssl: str, port: int, duration: int, pid: int) -> tuple[float, int]:
    argv = [openssl, "s_time", "-connect", f"{LOOPBACK}:{port}", "-new", "-time", str(duration),
            "-www", configs.SMALL_PATH]
    cpu, text = cpu_of(pid, lambda: run_client(argv, duration + CLIENT_SLACK))
    m = S_TIME_RE.search(str(text))
    if not m:
        raise BenchError(f"no connection count in openssl s_time output:\n{str(text)[-500:]}")
    return cpu, int(m.group(1))


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=int, default=5, help="seconds per run (default 5)")
    p.add_argument("--reps", type=int, default=2, help="repetitions per test and target, interleaved (default 2)")
    p.add_argument("--conns", type=int, default=20, help="wrk connections for the keep-alive test (default 20)")
    args = p.parse_args(argv)
    tools = ensure_tools(["wrk", "haproxy", "nginx"])
    openssl = "openssl"
    with tempfile.TemporaryDirectory(prefix="rsp-bench-tls-") as tmp_name:
        tmp = Path(tmp_name)
        tmp.chmod(0o755)
        servers = Servers(tmp)
        try:
            docroot = configs.write_docroot(tmp)
            ca = Authority(tmp, "bench-ca")
            script = tmp / "report.lua"
            script.write_text(WRK_SCRIPT)
            be_port, *ports = free_ports(5)
            servers.start("backend", configs.nginx_backend(tools["nginx"], tmp, "backend", be_port, docroot), be_port)
            rows: list[tuple[str, str, str, float]] = []
            for kind, (hp, rp) in (("rsa2048", ports[0:2]), ("ecdsa-p256", ports[2:4])):
                issued = ca.issue(f"bench-{kind}", ["bench.example"], kind="rsa" if kind == "rsa2048" else "ec")
                targets = {
                    "haproxy": servers.start(f"haproxy-{kind}", haproxy_tls(tools["haproxy"], tmp, f"haproxy-{kind}",
                                                                            hp, be_port, issued.pem_path), hp),
                    "rsp": servers.start(f"rsp-{kind}", rsp_tls(tmp, f"rsp-{kind}", rp, be_port, issued.cert_path,
                                                                issued.key_path), rp),
                }
                for test in ("keep-alive", "handshake"):
                    if test == "keep-alive" and kind != "rsa2048":
                        continue  # keep-alive cost does not depend on the certificate's key
                    totals = {name: [0.0, 0] for name in targets}
                    for _ in range(args.reps):
                        for name, server in targets.items():  # interleaved: drift hits both alike
                            if test == "keep-alive":
                                cpu, n = keepalive(tools["wrk"], script, server.port, args.conns, args.duration,
                                                   server.pid)
                            else:
                                cpu, n = handshakes(openssl, server.port, args.duration, server.pid)
                            totals[name][0] += cpu
                            totals[name][1] += int(n)
                            time.sleep(0.3)
                    for name, (cpu, n) in totals.items():
                        per = cpu / n * 1e6 if n else float("nan")
                        rows.append((test, kind, name, per))
                        print(f"{test:10} {kind:10} {name:8} {int(n):8d} ops  {cpu:7.2f} s CPU  {per:8.1f} us/op",
                              flush=True)
            print()
            print("ratio rsp / haproxy (CPU per operation; target <= 1.3):")
            for test, kind in sorted({(r[0], r[1]) for r in rows}):
                per = {r[2]: r[3] for r in rows if r[0] == test and r[1] == kind}
                print(f"  {test:10} {kind:10} {per['rsp'] / per['haproxy']:.2f}x")
        finally:
            servers.stop_all()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        sys.exit(2)
