"""Certificates are reread on reload (issue 11 with issue 10's reload): the file replaced on disk, `reload`
through the admin socket, and the next handshake with two workers presents the new certificate."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rsp.admin.socket_server import admin_request
from support.http_backends import HttpBackend
from support.rsp_process import RspProcess, free_port

from .conftest import CertSet, client_context, tls_get


def test_reload_serves_the_replaced_certificate(run_rsp: Callable[..., RspProcess], start_backend: Callable[..., Any],
                                                certs: CertSet, tmp_path: Path) -> None:
    backend = start_backend(HttpBackend)
    cert, key, sock = tmp_path / "site.pem", tmp_path / "site.key", tmp_path / "admin.sock"
    shutil.copy(certs.a.cert_path, cert)
    shutil.copy(certs.a.key_path, key)
    rsp = run_rsp(f"""
listen = {{ {{ address = "127.0.0.1", port = {free_port()}, mode = "http", pool = "web",
  tls = {{ certificates = {{ {{ cert = "{cert}", key = "{key}" }} }} }} }} }}
pools = {{ web = {{ backends = {{ "127.0.0.1:{backend.port}" }} }} }}
http = {{ access_log = "off" }}
admin_socket = "{sock}"
workers = 2
""")
    context = client_context(certs.ca.path)
    context.check_hostname = False  # the same name is asked for before and after: the certificate differs
    assert {tls_get(rsp.port, certs.ca.path, "a.example", context=context).served_name for _ in range(4)} \
        == {"a.example"}
    shutil.copy(certs.fallback.cert_path, cert)
    shutil.copy(certs.fallback.key_path, key)
    reply = json.loads(admin_request(str(sock), "reload", timeout=60.0))
    assert reply.get("ok") is True, reply
    # New connections go to the new generation's workers only (the reload answers once the old ones stop
    # accepting), and those built their TLS contexts from the files as they are now.
    served = {tls_get(rsp.port, certs.ca.path, "a.example", context=context).served_name for _ in range(4)}
    assert served == {"default.example"}
