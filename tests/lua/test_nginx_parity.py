"""The same handler files in nginx's Lua module (Debian's libnginx-mod-http-lua) and in rsp give the same
answers: status, body, and the headers the handlers set (tests/lua/parity/*.lua, each an access handler)."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support.rsp_process import RspProcess

PARITY = Path(__file__).resolve().parent / "parity"
NGINX_LUA_MODULES = ("/usr/lib/nginx/modules/ndk_http_module.so", "/usr/lib/nginx/modules/ngx_http_lua_module.so")
START_TIMEOUT = 10.0
CLIENT_TIMEOUT = 10.0
HANDLERS = ("vars", "text", "regex", "shared", "status")
REQUESTS = [
    ("/vars/p?a=1&flag&a=2", {"X-Test": "t1", "Cookie": "c=cv; d=1"}),
    ("/text", {}),
    ("/regex", {}),
    ("/shared", {}),
    ("/status?what=deny", {}),
    ("/status?what=redirect", {}),
    ("/status", {}),
]


def get(port: int, target: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT)
    try:
        conn.request("GET", target, headers={"Host": "parity.example", **headers})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def wait_port(port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        try:
            conn.connect()
            return
        except OSError:
            time.sleep(0.05)
        finally:
            conn.close()
    raise AssertionError(f"nothing listens on {port}")


@pytest.fixture
def nginx_lua(tmp_path: Path, free_port: Callable[[], int]) -> Iterator[int]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    missing = [m for m in NGINX_LUA_MODULES if not os.path.exists(m)]
    assert not missing, "nginx's Lua module is missing: apt-get install libnginx-mod-http-lua (scripts/bootstrap)"
    port = free_port()
    work = tmp_path / "nginx"
    work.mkdir()
    for p in (tmp_path, work):
        p.chmod(0o755)  # nginx's worker runs as nobody
    # content: a 500 that only shows if the access handler let the request through
    locations = "\n".join(f"        location /{name} {{ access_by_lua_file {PARITY / name}.lua; "
                          "content_by_lua_block { ngx.exit(500) } }" for name in HANDLERS)
    loads = "".join(f"load_module {m};\n" for m in NGINX_LUA_MODULES)
    conf = work / "nginx.conf"
    conf.write_text(f"""{loads}daemon off;
master_process off;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    lua_shared_dict parity 1m;
    server {{
        listen 127.0.0.1:{port};
{locations}
    }}
}}
""")
    proc = subprocess.Popen([nginx, "-p", str(work), "-e", f"{work}/error.log", "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(START_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_same_answers_as_nginx_lua(nginx_lua: int, run_rsp: Callable[..., RspProcess],
                                   free_port: Callable[[], int]) -> None:
    port = free_port()
    routes = ",\n".join(f'  {{ path = "/{name}", pool = "default", lua = {{ access = "{PARITY / name}.lua" }} }}'
                        for name in HANDLERS)
    run_rsp(f'listen = {{ {{ address = "127.0.0.1", port = {port}, mode = "http" }} }}\n'
            f'backends = {{ "127.0.0.1:9" }}\nworkers = 1\nhttp = {{ access_log = "off" }}\n'
            f'lua = {{ shared = {{ parity = "1m" }}, shared_dir = "shared" }}\nroutes = {{\n{routes}\n}}\n')
    for target, headers in REQUESTS:
        ours = get(port, target, headers)
        theirs = get(nginx_lua, target, headers)
        assert ours[0] == theirs[0], (target, ours, theirs)
        if ours[0] < 300:
            assert ours[2] == theirs[2], (target, ours[2], theirs[2])
        for name in ("location", "x-made"):
            assert ours[1].get(name) == theirs[1].get(name), (target, name)
