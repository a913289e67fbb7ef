"""Config files for the servers a benchmark starts: nginx backends, haproxy, nginx as a proxy, rsp.

Each writer puts its file in the run's temp dir and returns the argv that starts the server in the
foreground, so that the harness owns the process and can stop it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lib import LOOPBACK, MIB

SMALL_BODY_SIZE = 97  # bytes: the "small response" of the prototypes measured before rsp (docs/performance.md)
LARGE_BODY_SIZE = MIB
SMALL_PATH = "/small"
LARGE_PATH = "/1m"

# Keep-alive limits high enough that no connection is closed during a run (nginx's default is 1000
# requests / 75 s; a closed connection would turn a keep-alive test into a partly new-connection one).
KEEPALIVE_REQUESTS = 100_000
KEEPALIVE_TIMEOUT = "300s"
# Timeouts matching rsp's defaults (config/model.py): connect 5 s, idle 300 s.
HAPROXY_TIMEOUTS = ("timeout connect 5s", "timeout client 300s", "timeout server 300s")
# nginx upstream keepalive pool per worker: above the largest -c of any run, so every client connection
# can hold an idle upstream connection.
NGINX_UPSTREAM_KEEPALIVE = 128


def _nginx_common(tmp: Path, name: str) -> str:
    """Main-context lines for an nginx of our own: foreground master with one worker, files in `tmp`."""
    return f"""\
daemon off;
master_process on;
worker_processes 1;
pid {tmp}/{name}.pid;
error_log {tmp}/{name}.error.log warn;
events {{ worker_connections 4096; }}
"""


def _nginx_http_common(tmp: Path, name: str) -> str:
    return f"""\
    access_log off;
    keepalive_requests {KEEPALIVE_REQUESTS};
    keepalive_timeout {KEEPALIVE_TIMEOUT};
    client_body_temp_path {tmp}/{name}.client_body;
    proxy_temp_path {tmp}/{name}.proxy;
    fastcgi_temp_path {tmp}/{name}.fastcgi;
    uwsgi_temp_path {tmp}/{name}.uwsgi;
    scgi_temp_path {tmp}/{name}.scgi;
    default_type application/octet-stream;
"""


def nginx_argv(nginx: str, tmp: Path, name: str, conf: Path) -> list[str]:
    # -e: the early error log, before the config is read (the default /var/log/nginx may not be writable).
    return [nginx, "-p", str(tmp), "-e", f"{tmp}/{name}.error.log", "-c", str(conf)]


def write_docroot(tmp: Path) -> Path:
    root = tmp / "www"
    root.mkdir(exist_ok=True)
    small = b"rsp benchmark small response body. " * 3
    (root / SMALL_PATH.lstrip("/")).write_bytes(small[: SMALL_BODY_SIZE - 1] + b"\n")
    (root / LARGE_PATH.lstrip("/")).write_bytes(bytes(range(256)) * (LARGE_BODY_SIZE // 256))
    # nginx started as root runs its worker as `nobody`: the tree must be world-readable.
    for p in (tmp, root, *root.iterdir()):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return root


def nginx_backend(nginx: str, tmp: Path, name: str, port: int, docroot: Path) -> list[str]:
    conf = tmp / f"{name}.conf"
    conf.write_text(f"""\
{_nginx_common(tmp, name)}
http {{
{_nginx_http_common(tmp, name)}
    # sendfile keeps the backend cheap, leaving the other core to the proxy under test.
    sendfile on;
    tcp_nopush on;
    server {{
        listen {LOOPBACK}:{port} backlog=4096;
        root {docroot};
        # A unique header per response (as real backends send: ids, cookies, timestamps), so that no
        # proxy can answer from a cache of the previous identical response head.
        location = {SMALL_PATH} {{ add_header X-Request-Id $request_id; }}
        location = {LARGE_PATH} {{ }}
        location / {{ return 404; }}
    }}
}}
""")
    return nginx_argv(nginx, tmp, name, conf)


def nginx_proxy(nginx: str, tmp: Path, name: str, port: int, backends: Sequence[int], algorithm: str) -> list[str]:
    """nginx proxy_pass with an upstream keep-alive pool (the usual production setup)."""
    balance = {"roundrobin": "", "leastconn": "least_conn;"}[algorithm]
    servers = "\n".join(f"        server {LOOPBACK}:{p};" for p in backends)
    conf = tmp / f"{name}.conf"
    conf.write_text(f"""\
{_nginx_common(tmp, name)}
http {{
{_nginx_http_common(tmp, name)}
    upstream be {{
        {balance}
{servers}
        keepalive {NGINX_UPSTREAM_KEEPALIVE};
        keepalive_requests {KEEPALIVE_REQUESTS};
        keepalive_timeout {KEEPALIVE_TIMEOUT};
    }}
    server {{
        listen {LOOPBACK}:{port} backlog=4096;
        location / {{
            proxy_pass http://be;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            # 1 MiB responses stay in memory: no temp files on disk to skew the CPU figures.
            proxy_buffer_size 64k;
            proxy_buffers 16 64k;
            proxy_busy_buffers_size 128k;
            proxy_max_temp_file_size 0;
        }}
    }}
}}
""")
    return nginx_argv(nginx, tmp, name, conf)


def haproxy(haproxy_bin: str, tmp: Path, name: str, port: int, backends: Sequence[int], mode: str,
            algorithm: str = "roundrobin") -> list[str]:
    """HAProxy with one thread; `mode tcp` plain relay, or `mode http` with keep-alive and reuse."""
    http_opts = "    option forwardfor\n    http-reuse always\n" if mode == "http" else ""
    servers = "\n".join(f"    server s{i} {LOOPBACK}:{p}" for i, p in enumerate(backends, 1))
    conf = tmp / f"{name}.cfg"
    conf.write_text(f"""\
global
    nbthread 1
defaults
    mode {mode}
{"".join(f"    {t}{chr(10)}" for t in HAPROXY_TIMEOUTS)}{http_opts}
frontend fe
    bind {LOOPBACK}:{port}
    default_backend be
backend be
    balance {algorithm}
{servers}
""")
    # -db: stay in the foreground, no daemon; the harness owns the process.
    return [haproxy_bin, "-db", "-f", str(conf)]


def rsp_config(tmp: Path, name: str, port: int, backends: Sequence[int], mode: str,
               algorithm: str = "roundrobin") -> Path:
    """rsp's Lua config: the original three-globals form for one TCP backend, the rich form otherwise."""
    conf = tmp / f"{name}.lua"
    addrs = ", ".join(f'"{LOOPBACK}:{p}"' for p in backends)
    listen = f'listen = {{ {{ address = "{LOOPBACK}", port = {port}, mode = "{mode}" }} }}\n'
    if mode == "tcp" and len(backends) == 1:
        text = (f'listenAddress = "{LOOPBACK}"\nlistenPort = {port}\n'
                f'backendAddress = "{LOOPBACK}"\nbackendPort = {backends[0]}\n')
    elif len(backends) == 1:
        text = f"{listen}backends = {{ {addrs} }}\n"
    else:
        text = f'{listen}pools = {{ default = {{ algorithm = "{algorithm}", backends = {{ {addrs} }} }} }}\n'
    if mode == "http":
        # haproxy (no `log` line) and nginx (access_log off) log nothing here; neither does rsp.
        text += 'http = { access_log = "off" }\n'
    # One process against HAProxy's `nbthread 1` and nginx's one worker: the comparison is per core.
    # (rsp's default is a worker per core; bench/run_workers.py compares two workers with two threads.)
    text += "workers = 1\n"
    conf.write_text(text)
    return conf
