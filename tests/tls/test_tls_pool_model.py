"""TLS belongs to the pool (rsp.proxy.pools.BackendTls), not to a table of names by position: a backend added
at run time to a TLS pool is reached over TLS with its own name, with one worker or many."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from rsp.admin.socket_server import admin_request
from support.http_client import plain_get
from support.rsp_process import RspProcess, free_port

from .conftest import CertSet, TlsHttpBackend

DRAIN_SETTLE_REQUESTS = 40  # requests sent, at most, until every worker has the drain


@pytest.mark.parametrize("workers", [1, 2])
def test_backend_added_at_run_time_to_a_tls_pool(run_rsp: Callable[..., RspProcess],
                                                 tls_backend: type[TlsHttpBackend], certs: CertSet,
                                                 tmp_path: Path, workers: int) -> None:
    first = tls_backend(certs.backend, name="first")
    added = tls_backend(certs.backend, name="added")
    sock = str(tmp_path / "admin.sock")
    rsp = run_rsp(f"""
listen = {{ {{ address = "127.0.0.1", port = {free_port()}, mode = "http", pool = "secure" }} }}
pools = {{ secure = {{ backends = {{ "127.0.0.1:{first.port}" }}, retries = 0,
                      tls = {{ ca = "{certs.backend_ca.path}", sni = "backend.test" }} }} }}
http = {{ access_log = "off" }}
admin_socket = "{sock}"
workers = {workers}
""")
    assert plain_get(rsp.port, "/before").startswith(b"HTTP/1.1 200 ")
    assert "error" not in json.loads(admin_request(sock, f"add backend secure 127.0.0.1:{added.port}"))
    assert "error" not in json.loads(admin_request(sock, "drain secure 1"))
    # The master tells every worker before it replies, but a worker may serve a request read in the same loop
    # turn as the news before it reads the news: wait (bounded) for a run in which every worker picks `added`.
    run = 0
    for i in range(DRAIN_SETTLE_REQUESTS):
        reply = plain_get(rsp.port, f"/after{i}")
        assert reply.startswith(b"HTTP/1.1 200 "), reply
        run = run + 1 if f"added GET /after{i}".encode() in reply else 0
        if run == 2 * workers:
            break
    assert run == 2 * workers, f"the drained backend still answered after {DRAIN_SETTLE_REQUESTS} requests"
    assert added.server_names and set(added.server_names) == {"backend.test"}
