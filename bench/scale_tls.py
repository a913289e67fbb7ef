"""TLS certificates on one listener, 1 / 100 / 1,000: the SNI choice per handshake, start-up and reload.

    .venv/bin/python bench/scale_tls.py                      # every figure, rsp and HAProxy
    .venv/bin/python bench/scale_tls.py --handshakes 200 --sizes 1,1000

Certificates are made cheaply: one ECDSA P-256 key shared by every leaf, each leaf `s<i>.example` signed by
one P-256 CA (given to rsp as `tls.roots`, so its served chain is built from it; HAProxy gets each leaf with
the key in one PEM, through a crt-list). Per size:

- start-up: seconds from starting the proxy until a handshake naming the last certificate is served (rsp: the
  master, its worker and every certificate's context; `workers = 1`);
- reload (rsp): seconds `rsp reload CONFIG` takes to answer, i.e. until the new worker serves (the command's
  own Python start-up included), then "reload again" with the files unchanged (the master's check remembers
  the certificates it validated); HAProxy's equivalent is a new process (its start-up), not measured apart;
- CPU s: of the proxy's process tree from its start until that first handshake was served, and of each
  reload (the `rsp reload` command's own and the master's tree's meanwhile, the new worker included): the
  machine's load stretches the seconds above, these much less;
- handshake: CPU µs of the proxy's process tree per full handshake (no resumption) + one small request, the
  SNI naming the LAST certificate, HANDSHAKES of them from a Python client in this process, per core
  (`workers = 1` against `nbthread 1`). The SNI choice is a dict lookup (rsp.tls.names), so this should
  not grow with the number of certificates; what does grow is the work done before serving.

Only 127.0.0.1 is used; every process started here is stopped by pid in `finally`.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

sys.path.insert(0, str(Path(__file__).resolve().parent))

import configs
import lib
import procstat

ROOT = Path(__file__).resolve().parent.parent
SIZES = (1, 100, 1000)
HANDSHAKES = 300  # full handshakes per measurement
CLIENT_TIMEOUT = 10.0  # seconds for one handshake + request before the bench gives up
RELOAD_TIMEOUT = 120.0
READY_SECONDS = 60.0  # from start until the first handshake is served


def name(i: int) -> str:
    return f"s{i}.example"


def _subject(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_certificates(tmp: Path, count: int) -> tuple[Path, Path, list[Path]]:
    """(CA file, the leaves' shared key, one PEM per leaf with the leaf only) for s1..s<count>.example; also
    `<leaf>.haproxy.pem` files (leaf + key) for HAProxy."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_subject("scale-ca")).issuer_name(_subject("scale-ca"))
          .public_key(ca_key.public_key()).serial_number(1)
          .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    ca_path = tmp / "ca.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    key = ec.generate_private_key(ec.SECP256R1())
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    key_path = tmp / "leaf.key"
    key_path.write_bytes(key_pem)
    leaves = []
    for i in range(1, count + 1):
        cert = (x509.CertificateBuilder().subject_name(_subject(name(i))).issuer_name(ca.subject)
                .public_key(key.public_key()).serial_number(1000 + i)
                .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=365))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(name(i))]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        pem = cert.public_bytes(serialization.Encoding.PEM)
        path = tmp / f"{name(i)}.pem"
        path.write_bytes(pem)
        (tmp / f"{name(i)}.haproxy.pem").write_bytes(pem + key_pem)
        leaves.append(path)
    return ca_path, key_path, leaves


def rsp_config(tmp: Path, port: int, backend: int, ca: Path, key: Path, leaves: list[Path],
               admin: Path) -> Path:
    items = ",\n      ".join(f'{{ cert = "{leaf}", key = "{key}" }}' for leaf in leaves)
    conf = tmp / f"rsp-{len(leaves)}.lua"
    conf.write_text(f"""\
listen = {{ {{ address = "{lib.LOOPBACK}", port = {port}, mode = "http",
  tls = {{ roots = "{ca}", certificates = {{
      {items} }} }} }} }}
backends = {{ "{lib.LOOPBACK}:{backend}" }}
http = {{ access_log = "off" }}
admin_socket = "{admin}"
workers = 1
""")
    return conf


def haproxy_config(tmp: Path, port: int, backend: int, leaves: list[Path]) -> Path:
    crt_list = tmp / f"crt-{len(leaves)}.list"
    crt_list.write_text("".join(f"{leaf.with_suffix('.haproxy.pem')}\n" for leaf in leaves))
    conf = tmp / f"haproxy-{len(leaves)}.cfg"
    timeouts = "".join(f"    {t}\n" for t in configs.HAPROXY_TIMEOUTS)
    conf.write_text(f"""\
global
    nbthread 1
    ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
    mode http
{timeouts}    http-reuse always
frontend fe
    bind {lib.LOOPBACK}:{port} ssl crt-list {crt_list} alpn http/1.1
    default_backend be
backend be
    server s1 {lib.LOOPBACK}:{backend}
""")
    return conf


def handshake_once(client: ssl.SSLContext, port: int, server_name: str) -> None:
    """One full handshake naming `server_name`, one small request, its answer read; raises if it fails."""
    with socket.create_connection((lib.LOOPBACK, port), timeout=CLIENT_TIMEOUT) as raw, \
            client.wrap_socket(raw, server_hostname=server_name) as tls:
        tls.sendall(f"GET {configs.SMALL_PATH} HTTP/1.1\r\nHost: {server_name}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
        if not data.startswith(b"HTTP/1.1 200"):
            raise lib.BenchError(f"{server_name}: unexpected answer {data[:60]!r}")


def serving(port: int, ca: Path, server_name: str) -> None:
    """Wait until a handshake for `server_name` and its request succeed (within READY_SECONDS)."""
    client = ssl.create_default_context(cafile=str(ca))
    deadline = time.monotonic() + READY_SECONDS
    while True:
        try:
            handshake_once(client, port, server_name)
            return
        except (OSError, lib.BenchError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def handshake_cost(pid: int, port: int, ca: Path, server_name: str, count: int) -> float:
    """CPU µs of `pid`'s process tree per handshake + request (the client runs in this process)."""
    client = ssl.create_default_context(cafile=str(ca))
    client.set_alpn_protocols(["http/1.1"])
    handshake_once(client, port, server_name)  # warm-up, and the certificate's name checked by the client
    before = procstat.tree_seconds([pid])[pid]
    for _ in range(count):
        handshake_once(client, port, server_name)  # a fresh SSLSocket: no session is offered, a full handshake
    after = procstat.tree_seconds([pid])[pid]
    return (after - before) / count * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    ap.add_argument("--targets", default="rsp,haproxy")
    ap.add_argument("--handshakes", type=int, default=HANDSHAKES)
    opts = ap.parse_args()
    sizes = [int(s) for s in opts.sizes.split(",")]
    targets = opts.targets.split(",")
    rows = []
    with tempfile.TemporaryDirectory(prefix="rsp-scale-tls-") as d:
        tmp = Path(d)
        tmp.chmod(0o755)
        started = time.monotonic()
        ca, key, leaves = make_certificates(tmp, max(sizes))
        print(f"{max(sizes)} certificates made in {time.monotonic() - started:.1f} s", file=sys.stderr)
        docroot = configs.write_docroot(tmp)
        servers = lib.Servers(tmp)
        try:
            backend, port = lib.free_ports(2)
            servers.start("backend", configs.nginx_backend(shutil.which("nginx") or "nginx", tmp, "backend", backend,
                                                           docroot), backend)
            for size in sizes:
                chosen = leaves[:size]
                sni = name(size)
                for target in targets:
                    if target == "rsp":
                        conf = rsp_config(tmp, port, backend, ca, key, chosen, tmp / f"admin-{size}.sock")
                        argv = [sys.executable, "-m", "rsp", str(conf)]
                    else:
                        conf = haproxy_config(tmp, port, backend, chosen)
                        argv = [shutil.which("haproxy") or "haproxy", "-db", "-f", str(conf)]
                    t0 = time.monotonic()
                    proxy = servers.start(f"{target}-{size}", argv, port, cwd=ROOT)
                    serving(port, ca, sni)  # the port accepts before the worker has read its certificates
                    startup = time.monotonic() - t0
                    startup_cpu = procstat.tree_seconds([proxy.pid])[proxy.pid]
                    reload = again = reload_cpu = again_cpu = float("nan")
                    try:
                        us = handshake_cost(proxy.pid, port, ca, sni, opts.handshakes)
                        if target == "rsp":
                            # twice: the master remembers what it validated, so the second check of unchanged
                            # files skips their chain planning (rsp.tls.server_context)
                            (reload, reload_cpu), (again, again_cpu) = (rsp_reload(conf, port, ca, sni, proxy.pid)
                                                                        for _ in range(2))
                    finally:
                        lib.stop_process(proxy.proc)
                        servers.started.remove(proxy)
                    rows.append((size, target, startup, reload, again, us, startup_cpu, reload_cpu, again_cpu))
                    print(f"  {size} {target}: start {startup:.2f} s, reload {reload:.2f} s then {again:.2f} s, "
                          f"{us:.0f} us/handshake", file=sys.stderr, flush=True)
        finally:
            servers.stop_all()
    print(f"\ncertificates on one listener: {opts.handshakes} full handshakes (ECDSA P-256, SNI = the last "
          "certificate's name) per size, CPU of the proxy's process tree; workers = 1 / nbthread 1\n")
    print("| certificates | target | start-up | reload | reload again | CPU µs per handshake | x smallest | "
          "CPU s: start-up, reload, reload again |")
    print("|--:|---|--:|--:|--:|--:|--:|--:|")
    for size, target, startup, reload, again, us, startup_cpu, reload_cpu, again_cpu in rows:
        smallest = next(r[5] for r in rows if r[1] == target)
        cells = ["—" if r != r else f"{r:.2f} s" for r in (reload, again)]
        cpu = " / ".join("—" if c != c else f"{c:.2f}" for c in (startup_cpu, reload_cpu, again_cpu))
        print(f"| {size} | {target} | {startup:.2f} s | {cells[0]} | {cells[1]} | {us:.0f} | {us / smallest:.2f}x | "
              f"{cpu} |")


def rsp_reload(conf: Path, port: int, ca: Path, sni: str, master: int) -> tuple[float, float]:
    """Seconds `rsp reload CONFIG` takes (it answers once the new worker serves), and the CPU seconds of the
    command and of the master's tree meanwhile (the new worker's included; the load on a shared machine
    stretches the first, not the second); then a handshake."""
    cpu0 = procstat.tree_seconds([master])[master]
    children0 = os.times()
    t0 = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "rsp", "reload", str(conf)], cwd=ROOT, capture_output=True,
                          text=True, timeout=RELOAD_TIMEOUT, check=False)
    took = time.monotonic() - t0
    children1 = os.times()
    cpu = procstat.tree_seconds([master])[master] - cpu0 + (children1.children_user - children0.children_user) + (
        children1.children_system - children0.children_system)
    if done.returncode != 0:
        raise lib.BenchError(f"rsp reload failed: {done.stdout} {done.stderr}")
    serving(port, ca, sni)  # still serving
    return took, cpu


if __name__ == "__main__":
    main()
