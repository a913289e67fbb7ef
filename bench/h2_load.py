"""HTTP/2 with prior knowledge: h2load against rsp, HAProxy and nginx, the same nginx backend, CPU per request.

    PYTHONPATH=src python bench/h2_load.py            # small -c10 -m10 and 1 MiB -c10 -m1, one run each
    PYTHONPATH=src python bench/h2_load.py --quick    # fewer requests

Needs h2load (Debian nghttp2-client), nginx, haproxy. Each proxy speaks h2c with prior knowledge to h2load
(rsp `http2 = "prior-knowledge"`, HAProxy `bind ... proto h2`, nginx `listen ... http2`) and HTTP/1.1 to the
backend, one process/thread each (rsp workers = 1, nbthread 1, worker_processes 1). CPU is utime+stime of the
proxy's process tree (bench/procstat.py) over the run, divided by the requests h2load completed. One run per
target: a first look, not a verdict (the machine is shared; repeat side by side before quoting a ratio).
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path

from configs import LARGE_PATH, SMALL_PATH, haproxy, nginx_argv, nginx_backend, rsp_config, write_docroot
from lib import BenchError, Servers, free_ports, run_client
from procstat import tree_seconds

LOOPBACK = "127.0.0.1"


def rsp_h2_argv(tmp: Path, port: int, backend: int) -> list[str]:
    conf = rsp_config(tmp, "rsp", port, [backend], "http")
    text = conf.read_text().replace('mode = "http" }', 'mode = "http", http2 = "prior-knowledge" }')
    # h2load opens streams faster than a browser; the connection limits stay the defaults otherwise.
    conf.write_text(text)
    return [sys.executable, "-m", "rsp", str(conf)]


def haproxy_h2_argv(bin_: str, tmp: Path, port: int, backend: int) -> list[str]:
    argv = haproxy(bin_, tmp, "haproxy", port, [backend], "http")
    cfg = Path(argv[-1])
    cfg.write_text(cfg.read_text().replace(f"bind {LOOPBACK}:{port}", f"bind {LOOPBACK}:{port} proto h2"))
    return argv


def nginx_h2_argv(bin_: str, tmp: Path, port: int, backend: int) -> list[str]:
    conf = tmp / "nginx-proxy.conf"
    conf.write_text(f"""\
daemon off;
master_process on;
worker_processes 1;
pid {tmp}/nginx-proxy.pid;
error_log {tmp}/nginx-proxy.error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/np.client_body;
    proxy_temp_path {tmp}/np.proxy;
    fastcgi_temp_path {tmp}/np.fastcgi;
    uwsgi_temp_path {tmp}/np.uwsgi;
    scgi_temp_path {tmp}/np.scgi;
    keepalive_requests 100000;
    http2_max_requests 100000;
    upstream be {{ server {LOOPBACK}:{backend}; keepalive 128; }}
    server {{
        listen {LOOPBACK}:{port} http2;
        location / {{
            proxy_pass http://be;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffers 16 64k;
            proxy_max_temp_file_size 0;
        }}
    }}
}}
""")
    return nginx_argv(bin_, tmp, "nginx-proxy", conf)


def h2load(port: int, path: str, requests: int, conns: int, streams: int) -> tuple[int, str]:
    out = run_client(["h2load", "-n", str(requests), "-c", str(conns), "-m", str(streams),
                      f"http://{LOOPBACK}:{port}{path}"], timeout=300)
    match = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded", out)
    if not match:
        raise BenchError(f"unexpected h2load output:\n{out[-800:]}")
    rate = re.search(r"finished in [^,]+, ([\d.]+) req/s", out)
    return int(match.group(1)), rate.group(1) if rate else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    for tool in ("h2load", "nginx", "haproxy"):
        if shutil.which(tool) is None:
            sys.exit(f"bench/h2_load.py needs {tool}")
    small_n, large_n = (5000, 200) if args.quick else (30000, 1000)
    with tempfile.TemporaryDirectory(prefix="rsp-h2-bench-") as name:
        tmp = Path(name)
        tmp.chmod(0o755)
        servers = Servers(tmp)
        try:
            backend_port, rsp_port, haproxy_port, nginx_port = free_ports(4)
            docroot = write_docroot(tmp)
            servers.start("backend", nginx_backend("nginx", tmp, "backend", backend_port, docroot), backend_port)
            targets = {
                "rsp": servers.start("rsp", rsp_h2_argv(tmp, rsp_port, backend_port), rsp_port),
                "haproxy": servers.start("haproxy", haproxy_h2_argv("haproxy", tmp, haproxy_port, backend_port),
                                         haproxy_port),
                "nginx": servers.start("nginx", nginx_h2_argv("nginx", tmp, nginx_port, backend_port), nginx_port),
            }
            print("| test | target | req/s | proxy CPU per request |")
            print("|---|---|---|---|")
            for label, path, n, conns, streams in (("small -c10 -m10", SMALL_PATH, small_n, 10, 10),
                                                   ("1 MiB -c10 -m1", LARGE_PATH, large_n, 10, 1)):
                h2load(targets["rsp"].port, path, 200, conns, streams)  # warm-up
                for target, server in targets.items():
                    before = sum(tree_seconds([server.pid]).values())
                    done, rate = h2load(server.port, path, n, conns, streams)
                    spent = sum(tree_seconds([server.pid]).values()) - before
                    print(f"| {label} | {target} | {rate} | {spent / max(done, 1) * 1e6:.1f} µs |")
        finally:
            servers.stop_all()


if __name__ == "__main__":
    main()
