"""A real redis-server on a free loopback port, with no persistence, for the route store's tests.

    server = RedisServer().start()      # redis-server --port P --bind 127.0.0.1 --save "" --appendonly no
    server.client()                      # a redis-py client (decode_responses=True)
    server.kill(); server.start()        # an outage: the same port again, empty (no persistence)
    server.stop()

The Debian package redis-server is installed by scripts/bootstrap (DEB_PACKAGES).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import redis

from support.rsp_process import free_port

REDIS_START_TIMEOUT = 10.0  # a redis-server with nothing to load answers PING within milliseconds


class RedisServer:
    def __init__(self, workdir: Path | None = None, port: int | None = None, *, tls_ca: Path | None = None,
                 tls_cert: Path | None = None, tls_key: Path | None = None) -> None:
        """With the tls_* files: TLS only (`--port 0 --tls-port P`), clients unauthenticated."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is missing: run scripts/bootstrap (Debian package redis-server)")
        self.binary = binary
        self.port = port or free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.tls = (tls_ca, tls_cert, tls_key) if tls_ca and tls_cert and tls_key else None

    @property
    def url(self) -> str:
        if self.tls is not None:
            return f"rediss://127.0.0.1:{self.port}/0?ssl_ca_certs={self.tls[0]}"
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--protected-mode", "no"]
        if self.tls is not None:
            ca, cert, key = self.tls
            argv += ["--port", "0", "--tls-port", str(self.port), "--tls-ca-cert-file", str(ca),
                     "--tls-cert-file", str(cert), "--tls-key-file", str(key), "--tls-auth-clients", "no"]
        if self.workdir is not None:
            argv += ["--dir", str(self.workdir)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + REDIS_START_TIMEOUT
        client = self.client()
        try:
            while True:
                try:
                    if client.ping():
                        return self
                except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        self.stop()
                        raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                    time.sleep(0.02)
        finally:
            client.close()

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, decode_responses=True, socket_timeout=5.0, socket_connect_timeout=1.0)

    def kill(self) -> None:
        """SIGKILL: a crash, not a shutdown (no goodbye to the clients)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None
