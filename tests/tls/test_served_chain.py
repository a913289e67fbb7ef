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
workers = 2
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


def sha1_cross_sign(tmp_path: Path, subject_of: Authority, signer: Authority) -> Path:
    """A certificate with `subject_of`'s name and key, signed by `signer` with SHA-1: the openssl CLI does
    it where cryptography refuses to sign with SHA-1."""
    from cryptography.hazmat.primitives import serialization

    key = tmp_path / "cross.key"
    key.write_bytes(subject_of.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
    signer_key = tmp_path / "signer.key"
    signer_key.write_bytes(signer.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
    ext = tmp_path / "ca.ext"
    ext.write_text("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n")
    csr = tmp_path / "cross.csr"
    out = tmp_path / "cross.crt"
    subject = "/CN=" + subject_of.cert.subject.rfc4514_string().removeprefix("CN=")
    subprocess.run(["openssl", "req", "-new", "-key", str(key), "-subj", subject, "-out", str(csr)], check=True,
                   capture_output=True, timeout=20)
    subprocess.run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(signer.path), "-CAkey", str(signer_key),
                    "-CAcreateserial", "-sha1", "-days", "300", "-extfile", str(ext), "-out", str(out)],
                   check=True, capture_output=True, timeout=20)
    return out


def test_the_strong_path_is_served_over_a_sha1_cross_signed_one(tmp_path: Path, run_rsp: Callable[..., RspProcess],
                                                                 start_backend: Callable[..., Any]) -> None:
    """The issue's NSS story: a bundle holding the SHA-1 cross-signed intermediate first and the SHA-2 one
    second; both roots trusted. rsp serves the SHA-2 path only."""
    new_root = Authority(tmp_path, "New Root")
    old_root = Authority(tmp_path, "Old Root", kind="rsa")
    issuing = Authority(tmp_path, "Issuing CA", parent=new_root)  # SHA-256, under the new root
    cross = sha1_cross_sign(tmp_path, issuing, old_root)  # same name and key, SHA-1, under the old root
    leaf = issuing.issue("nss-leaf", ["chain.example"])
    pem = bundle(tmp_path / "nss.pem", leaf.cert_path, cross, issuing.path)
    roots = bundle(tmp_path / "roots.pem", old_root.path, new_root.path)
    backend = start_backend(HttpBackend)
    rsp = run_rsp(config(free_port(), backend.port, pem, leaf.key_path, roots))
    out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{rsp.port}", "-servername", "chain.example",
                          "-showcerts"], input=b"", capture_output=True, timeout=20)
    text = out.stdout.decode(errors="replace")
    assert text.count("-----BEGIN CERTIFICATE-----") == 2, text
    assert "New Root" in text and "Old Root" not in text, text  # the served intermediate's issuer
    # The operator is told which path was left out and why.
    logged = " ".join(rsp.stderr_lines + rsp.stdout_lines)
    assert "cross-signed" in logged and "Old Root" in logged and "rejected" in logged, logged
