"""A Redis-supplied pool is built from its template pool, TLS included: its backends are reached over TLS
with the template's CA and name (rsp.routestore.dynamic_pools, rsp.proxy.pools.BackendTls)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from support.http_client import get, http_config, lua
from support.redis_server import RedisServer
from support.rsp_process import RspProcess, free_port

from .conftest import CertSet, TlsHttpBackend


def test_redis_supplied_pool_gets_the_template_tls(run_rsp: Callable[..., RspProcess], redis_server: RedisServer,
                                                   tls_backend: type[TlsHttpBackend], certs: CertSet) -> None:
    backend = tls_backend(certs.backend, name="secure")
    redis_server.client().sadd("hostnames:app.test:backends", f"127.0.0.1:{backend.port}")
    pools: dict[str, Any] = {"default": {"backends": ["127.0.0.1:1"],
                                         "tls": {"ca": str(certs.backend_ca.path), "sni": "backend.test"}}}
    settings = {"url": redis_server.url, "template": "default"}
    rsp = run_rsp(http_config(free_port(), [], pools=pools, extra=f"workers = 1\nroute_store = {lua(settings)}"))
    response = get(rsp.port, "/x", host="app.test", timeout=5.0)
    assert response.status == 200 and response.body.startswith(b"secure GET /x")
    assert backend.server_names == ["backend.test"]
