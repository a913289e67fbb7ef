"""The chain a TLS listener serves is built from its bundle (rsp.tls.served_chain over rsp.certs.chain):
the shortest strong path in order, weak chains refused unless allowed."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from support.http_backends import HttpBackend
from support.rsp_process import RspProcess, RspStartError, free_port

from .certs import Authority, Issued
from .conftest import client_context


def bundle(path: Path, *parts: Path) -> Path:
    path.write_bytes(b"".join(p.read_bytes() for p in parts))
    return path


def config(port: int, backend: int, cert: Path, key: Path, roots: Path, extra: str = "") -> str:
    return f"""
listen = {{ {{ address = "127.0.0.1", port = {port}, mode = "http", pool = "web",
  tls = {{ certificates = {{ {{ cert = "{cert}", key = "{key}" }} }}, roots = "{roots}" {extra} }} }} }}
pools = {{ web = {{ backends = {{ "127.0.0.1:{backend}" }} }} }}
http = {{ access_log = "off" }}
"""


def served_certificates(port: int) -> int:
    out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "chain.example",
                          "-showcerts"], input=b"", capture_output=True, timeout=20)
    return out.stdout.count(b"-----BEGIN CERTIFICATE-----")


def test_bundle_out_of_order_is_served_as_the_built_chain(tmp_path: Path, run_rsp: Callable[..., RspProcess],
                                                           start_backend: Callable[..., Any]) -> None:
    root = Authority(tmp_path, "chain-root")
    inter = Authority(tmp_path, "chain-intermediate", parent=root)
    leaf: Issued = inter.issue("chain-leaf", ["chain.example"])
    stray = Authority(tmp_path, "stray-ca")
    # The leaf, a certificate that has nothing to do with it, then the intermediate.
    pem = bundle(tmp_path / "bundle.pem", leaf.cert_path, stray.path, inter.path)
    backend = start_backend(HttpBackend)
    rsp = run_rsp(config(free_port(), backend.port, pem, leaf.key_path, root.path))
    assert served_certificates(rsp.port) == 2  # leaf and intermediate: no stray, no root
    # A client that trusts only the root verifies: the intermediate was served, after the leaf.
    raw = socket.create_connection(("127.0.0.1", rsp.port), timeout=10)
    with client_context(root.path).wrap_socket(raw, server_hostname="chain.example") as tls:
        tls.sendall(b"GET / HTTP/1.1\r\nHost: chain.example\r\nConnection: close\r\n\r\n")
        assert tls.recv(100).startswith(b"HTTP/1.1 200 ")
    assert any("serving" in line and "chain-intermediate" in line for line in rsp.stderr_lines + rsp.stdout_lines)


def test_a_chain_whose_every_path_is_weak_is_refused(tmp_path: Path, run_rsp: Callable[..., RspProcess],
                                                     start_backend: Callable[..., Any]) -> None:
    root = Authority(tmp_path, "weak-root")
    weak = Authority(tmp_path, "weak-intermediate", kind="rsa1024", parent=root)
    leaf = weak.issue("weak-leaf", ["chain.example"])
    pem = bundle(tmp_path / "weak.pem", leaf.cert_path, weak.path)
    backend = start_backend(HttpBackend)
    with pytest.raises(RspStartError) as info:
        run_rsp(config(free_port(), backend.port, pem, leaf.key_path, root.path))
    message = str(info.value)
    assert "listen[1].tls.certificates[1]" in message and "weak link" in message and "allow_weak_chain" in message
    allowed = run_rsp(config(free_port(), backend.port, pem, leaf.key_path, root.path, ", allow_weak_chain = true"))
    assert any("allow_weak_chain" in line for line in allowed.stderr_lines + allowed.stdout_lines)
    assert served_certificates(allowed.port) == 2
