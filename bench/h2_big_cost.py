"""What one 1 MiB download over HTTP/2 + TLS costs a proxy, in instructions (repeatable on a loaded machine).

Starts the benchmark's nginx backend and one proxy terminating TLS with ALPN h2 (rsp with `workers = 1` and
`http2 = true`, or HAProxy with `alpn h2,http/1.1`, bench/h2_load.py's --tls configurations), then
`h2load -n N -c C -m 1` fetches the 1 MiB file; once with --small requests and once with --large, each run a
fresh proxy under valgrind, and reports the MARGINAL count per request, (count(large) - count(small)) /
(large - small): start-up, imports, the C handshakes and shutdown cancel out.

    PYTHONPATH=$PWD/src .venv/bin/python bench/h2_big_cost.py                      # rsp's worker, cachegrind
    PYTHONPATH=$PWD/src .venv/bin/python bench/h2_big_cost.py --target haproxy     # HAProxy, the same count
    RSP_BENCH_CALLGRIND_DIR=/tmp/p PYTHONPATH=$PWD/src .venv/bin/python bench/h2_big_cost.py   # + rsp profiles

rsp runs its master natively and only its worker under valgrind (bench/conn_cost.py's WORKER_UNDER_VALGRIND);
HAProxy runs whole under valgrind (one process, nbthread 1). Kernel work (the socket copies) is not counted:
only the proxy's user-space instructions, libcrypto's AES-GCM included. Build rsp first
(scripts/build-native) for the compiled figure.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import configs
import conn_cost
import h2_load
import lib


def one_run(target: str, requests: int, conns: int, tmp: Path) -> tuple[int, int]:
    """Start backend and proxy, fetch the 1 MiB file `requests` times, stop; (instructions, requests done)."""
    tmp.chmod(0o755)
    servers = lib.Servers(tmp)
    out = tmp / "count"
    backend, port = lib.free_ports(2)
    try:
        docroot = configs.write_docroot(tmp)
        servers.start("backend", configs.nginx_backend(shutil.which("nginx") or "nginx", tmp, "backend",
                                                      backend, docroot), backend)
        tls = h2_load.Tls(tmp)
        if target == "haproxy":
            inner = h2_load.haproxy_tls_argv(shutil.which("haproxy") or "haproxy", tmp, port, backend, tls)
            argv = conn_cost.wrap("instr", inner, out)
        else:
            inner = h2_load.rsp_tls_argv(tmp, port, backend, tls)
            argv = conn_cost.rsp_workers_under_valgrind(tmp, inner, out)
        old = lib.READY_TIMEOUT
        lib.READY_TIMEOUT = conn_cost.READY_SECONDS_UNDER_VALGRIND
        try:
            servers.start("proxy", argv, port, cwd=conn_cost.ROOT)
        finally:
            lib.READY_TIMEOUT = old
        conn_cost.wait_answers(port, 2, tls=True)
        done, _rate = h2_load.h2load(port, configs.LARGE_PATH, requests, conns, 1, tls=True)
    finally:
        servers.stop_all()
    return conn_cost.read_instructions(out), done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--target", choices=("rsp", "haproxy"), default="rsp")
    ap.add_argument("--conns", type=int, default=10, help="h2load -c (one handshake each, in both runs)")
    ap.add_argument("--small", type=int, default=10, help="requests of the baseline run")
    ap.add_argument("--large", type=int, default=60, help="requests of the measured run")
    opts = ap.parse_args()
    for tool in ("h2load", "nginx", "haproxy", "valgrind"):
        if shutil.which(tool) is None and shutil.which(tool, path="/usr/sbin:/sbin") is None:
            sys.exit(f"bench/h2_big_cost.py needs {tool}")
    runs = []
    for n in (opts.small, opts.large):
        with tempfile.TemporaryDirectory(prefix="rsp-h2big-") as d:
            runs.append(one_run(opts.target, n, opts.conns, Path(d)))
    (i1, n1), (i2, n2) = runs
    if n1 != opts.small or n2 != opts.large:
        sys.exit(f"h2load completed {n1} and {n2} of {opts.small} and {opts.large} requests")
    print(f"{opts.target} 1 MiB over HTTP/2 + TLS, h2load -c{opts.conns} -m1, marginal over {n2 - n1} requests: "
          f"{(i2 - i1) / (n2 - n1):,.0f} instructions per request")


if __name__ == "__main__":
    main()
