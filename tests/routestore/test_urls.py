"""The store through the other URL kinds it supports: rediss:// (TLS, certificates made by openssl) and
redis+sentinel:// (a real sentinel, redis-server --sentinel, naming the master)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from support.http_backends import HttpBackend
from support.http_client import http_config, lua
from support.redis_server import REDIS_START_TIMEOUT, RedisServer
from support.rsp_process import RspProcess, free_port, run_cli

from .conftest import PROPAGATION_BOUND, body_of, wait_until

Launch = Callable[..., RspProcess]


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for IP 127.0.0.1 signed by it (EC keys: quick to make)."""
    ca, ca_key = directory / "ca.pem", directory / "ca.key"
    cert, key, csr = directory / "server.pem", directory / "server.key", directory / "server.csr"
    ext = directory / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for argv in (
        ["openssl", "req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca), "-days", "1",
         "-subj", "/CN=rsp test CA"],
        ["openssl", "req", *ec, "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1"],
        ["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
         "-out", str(cert), "-days", "1", "-extfile", str(ext)],
    ):
        subprocess.run(argv, check=True, capture_output=True, timeout=30)
    return ca, cert, key


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[RedisServer]:
    ca, cert, key = make_certificates(tmp_path)
    server = RedisServer(tmp_path, tls_ca=ca, tls_cert=cert, tls_key=key).start()
    try:
        yield server
    finally:
        server.stop()


def test_rediss(run_rsp: Launch, tls_redis: RedisServer, named_backend: Callable[[str], HttpBackend]) -> None:
    a, b = named_backend("a"), named_backend("b")
    assert tls_redis.url.startswith("rediss://")
    result = run_cli("routes", "--redis", tls_redis.url, "set", "tls.test", f"127.0.0.1:{a.port}")
    assert result.returncode == 0, result.stderr
    config = http_config(free_port(), ["127.0.0.1:1"],
                         extra=f"route_store = {lua({'url': tls_redis.url, 'template': 'default', 'ttl': 60})}")
    rsp = run_rsp(config)
    assert body_of(rsp.port, "tls.test") == "a"
    result = run_cli("routes", "--redis", tls_redis.url, "set", "tls.test", f"127.0.0.1:{b.port}")
    assert result.returncode == 0, result.stderr
    wait_until(rsp.port, "tls.test", "b", PROPAGATION_BOUND)


@pytest.fixture
def sentinel(redis_server: RedisServer, tmp_path: Path) -> Iterator[str]:
    """A sentinel watching `redis_server` as master "rspmaster"; yields the store URL naming it."""
    port = free_port()
    conf = tmp_path / "sentinel.conf"  # the sentinel rewrites its config file: a private copy
    conf.write_text(f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\nprotected-mode no\n"
                    f"sentinel monitor rspmaster 127.0.0.1 {redis_server.port} 1\n")
    proc = subprocess.Popen([redis_server.binary, str(conf), "--sentinel"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1.0, socket_connect_timeout=1.0)
        deadline = time.monotonic() + REDIS_START_TIMEOUT
        while True:
            try:
                if client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "rspmaster"):
                    break
            except redis.exceptions.ConnectionError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "the sentinel did not start"
            time.sleep(0.05)
        client.close()
        yield f"redis+sentinel://127.0.0.1:{port}/rspmaster/0"
    finally:
        proc.terminate()
        proc.wait(10)


def test_sentinel(run_rsp: Launch, sentinel: str, redis_server: RedisServer,
                  named_backend: Callable[[str], HttpBackend]) -> None:
    a, b = named_backend("a"), named_backend("b")
    result = run_cli("routes", "--redis", sentinel, "set", "s.test", f"127.0.0.1:{a.port}")
    assert result.returncode == 0, result.stderr
    assert redis_server.client().smembers("hostnames:s.test:backends") == {f"127.0.0.1:{a.port}"}
    config = http_config(free_port(), ["127.0.0.1:1"],
                         extra=f"route_store = {lua({'url': sentinel, 'template': 'default', 'ttl': 60})}")
    rsp = run_rsp(config)
    assert body_of(rsp.port, "s.test") == "a"
    result = run_cli("routes", "--redis", sentinel, "set", "s.test", f"127.0.0.1:{b.port}")
    assert result.returncode == 0, result.stderr
    wait_until(rsp.port, "s.test", "b", PROPAGATION_BOUND)
