"""HTTP/2 with prior knowledge: h2load against rsp, HAProxy and nginx, the same nginx backend, CPU per request.

    PYTHONPATH=src python bench/h2_load.py            # small -c10 -m10 and 1 MiB -c10 -m1, one run each
    PYTHONPATH=src python bench/h2_load.py --quick    # fewer requests
    PYTHONPATH=src python bench/h2_load.py --tls      # over TLS, HTTP/2 chosen by ALPN, instead

--tls: every proxy terminates TLS with the same ECDSA P-256 certificate (tests/tls/certs.py) and offers h2 by
ALPN (rsp `http2 = true`, HAProxy `ssl crt ... alpn h2,http/1.1`, nginx `listen ... ssl http2`); h2load
connects over https. Each h2load connection makes one handshake, so the handshakes (10 per run) are counted.

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

from configs import (
    HAPROXY_TIMEOUTS,
    LARGE_PATH,
    SMALL_PATH,
    haproxy,
    nginx_argv,
    nginx_backend,
    rsp_config,
    write_docroot,
)
from lib import BenchError, Servers, free_ports, run_client
from procstat import tree_seconds

LOOPBACK = "127.0.0.1"
BENCH_DIR = Path(__file__).resolve().parent
TLS_NAME = "bench.example"


class Tls:
    """The certificate every proxy serves with --tls: paths of its certificate, key, and both in one PEM."""

    def __init__(self, tmp: Path) -> None:
        sys.path.insert(0, str(BENCH_DIR.parent / "tests"))
        from tls.certs import Authority  # (tests/tls/certs.py: the tests' certificate maker)

        issued = Authority(tmp, "bench-ca").issue("bench-ec", [TLS_NAME], kind="ec")
        self.cert, self.key, self.pem = issued.cert_path, issued.key_path, issued.pem_path


def rsp_tls_argv(tmp: Path, port: int, backend: int, tls: Tls) -> list[str]:
    conf = tmp / "rsp-tls.lua"
    conf.write_text(f"""\
listen = {{ {{ address = "{LOOPBACK}", port = {port}, mode = "http", http2 = true,
  tls = {{ certificates = {{ {{ cert = "{tls.cert}", key = "{tls.key}", names = {{ "{TLS_NAME}" }} }} }} }} }} }}
backends = {{ "{LOOPBACK}:{backend}" }}
http = {{ access_log = "off" }}
workers = 1
""")
    return [sys.executable, "-m", "rsp", str(conf)]


def haproxy_tls_argv(bin_: str, tmp: Path, port: int, backend: int, tls: Tls) -> list[str]:
    conf = tmp / "haproxy-tls.cfg"
    timeouts = "".join(f"    {t}\n" for t in HAPROXY_TIMEOUTS)
    conf.write_text(f"""\
global
    nbthread 1
defaults
    mode http
{timeouts}    option forwardfor
    http-reuse always
frontend fe
    bind {LOOPBACK}:{port} ssl crt {tls.pem} alpn h2,http/1.1
    default_backend be
backend be
    server s1 {LOOPBACK}:{backend}
""")
    return [bin_, "-db", "-f", str(conf)]


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


def nginx_h2_argv(bin_: str, tmp: Path, port: int, backend: int, tls: Tls | None = None) -> list[str]:
    conf = tmp / "nginx-proxy.conf"
    listen = (f"{LOOPBACK}:{port} ssl http2;\n        ssl_certificate {tls.cert};\n"
              f"        ssl_certificate_key {tls.key};" if tls is not None else f"{LOOPBACK}:{port} http2;")
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
        listen {listen}
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


def h2load(port: int, path: str, requests: int, conns: int, streams: int, tls: bool = False) -> tuple[int, str]:
    out = run_client(["h2load", "-n", str(requests), "-c", str(conns), "-m", str(streams),
                      f"{'https' if tls else 'http'}://{LOOPBACK}:{port}{path}"], timeout=300)
    match = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded", out)
    if not match:
        raise BenchError(f"unexpected h2load output:\n{out[-800:]}")
    rate = re.search(r"finished in [^,]+, ([\d.]+) req/s", out)
    return int(match.group(1)), rate.group(1) if rate else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--tls", action="store_true", help="over TLS with ALPN h2 instead of prior knowledge")
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
            tls = Tls(tmp) if args.tls else None
            rsp_argv = (rsp_tls_argv(tmp, rsp_port, backend_port, tls) if tls is not None
                        else rsp_h2_argv(tmp, rsp_port, backend_port))
            haproxy_argv = (haproxy_tls_argv("haproxy", tmp, haproxy_port, backend_port, tls) if tls is not None
                            else haproxy_h2_argv("haproxy", tmp, haproxy_port, backend_port))
            targets = {
                "rsp": servers.start("rsp", rsp_argv, rsp_port),
                "haproxy": servers.start("haproxy", haproxy_argv, haproxy_port),
                "nginx": servers.start("nginx", nginx_h2_argv("nginx", tmp, nginx_port, backend_port, tls),
                                       nginx_port),
            }
            print("| test | target | req/s | proxy CPU per request |")
            print("|---|---|---|---|")
            for label, path, n, conns, streams in (("small -c10 -m10", SMALL_PATH, small_n, 10, 10),
                                                   ("1 MiB -c10 -m1", LARGE_PATH, large_n, 10, 1)):
                h2load(targets["rsp"].port, path, 200, conns, streams, args.tls)  # warm-up
                for target, server in targets.items():
                    before = sum(tree_seconds([server.pid]).values())
                    done, rate = h2load(server.port, path, n, conns, streams, args.tls)
                    spent = sum(tree_seconds([server.pid]).values()) - before
                    print(f"| {label} | {target} | {rate} | {spent / max(done, 1) * 1e6:.1f} µs |")
        finally:
            servers.stop_all()


if __name__ == "__main__":
    main()
