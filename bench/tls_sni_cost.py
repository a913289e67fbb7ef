"""The SNI choice's own cost: full TLS handshakes in memory against rsp's TlsServer with 1, 100 and 1,000
certificates, no sockets, so the figure is the server side's CPU per handshake and nothing else.

    .venv/bin/python bench/tls_sni_cost.py [--handshakes 200]

Certificates as bench/scale_tls.py makes them (one ECDSA P-256 key, leaves s<i>.example under one CA); the
client names the last certificate. Server and client run in this process over memory BIOs; the server side's
time is measured around its own `do_handshake` calls only (best of REPEATS rounds, sizes interleaved), so the
client's work is not counted. With one certificate rsp sets no SNI callback; with more, its callback looks
the name up (rsp.tls.names.NameTable: two dict lookups) and switches the connection's context.
"""

from __future__ import annotations

import argparse
import datetime
import ssl
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import scale_tls
from rsp.config.lua_loader import load_config
from rsp.tls.server_context import TlsServer, build_tls_server

SIZES = (1, 100, 1000)
REPEATS = 3


def server_seconds(server: TlsServer, client: ssl.SSLContext, name: str) -> float:
    """Seconds the server side spends in one full handshake with a client that names `name`."""
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    tls_client = client.wrap_bio(c_in, c_out, server_hostname=name)
    tls_server = server.context.wrap_bio(s_in, s_out, server_side=True)
    spent = 0.0
    client_done = server_done = False
    for _ in range(10):  # a TLS 1.3 handshake takes two or three flights each way
        if not client_done:
            try:
                tls_client.do_handshake()
                client_done = True
            except ssl.SSLWantReadError:
                pass
        s_in.write(c_out.read())
        if not server_done:
            started = time.perf_counter()
            try:
                tls_server.do_handshake()
                server_done = True
            except ssl.SSLWantReadError:
                pass
            spent += time.perf_counter() - started
        c_in.write(s_out.read())
        if client_done and server_done:
            return spent
    raise RuntimeError("handshake did not finish")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--handshakes", type=int, default=200)
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="rsp-sni-cost-") as d:
        tmp = Path(d)
        ca, key, leaves = scale_tls.make_certificates(tmp, max(SIZES))
        servers = {}
        for size in SIZES:
            conf = scale_tls.rsp_config(tmp, 1, 2, ca, key, leaves[:size], tmp / "admin.sock")
            config = load_config(str(conf))
            started = time.perf_counter()
            servers[size] = build_tls_server(config, config.tls.listeners[config.listeners[0].key],
                                             now=lambda: datetime.datetime.now(datetime.UTC))
            print(f"  {size} certificates: contexts built in {time.perf_counter() - started:.2f} s",
                  file=sys.stderr)
        client = ssl.create_default_context(cafile=str(ca))
        best = {size: float("inf") for size in SIZES}
        for _ in range(REPEATS):
            for size in SIZES:  # interleaved: a noisy moment hurts every size alike
                total = sum(server_seconds(servers[size], client, scale_tls.name(size))
                            for _ in range(opts.handshakes))
                best[size] = min(best[size], total / opts.handshakes)
    print(f"\nserver side of a full TLS 1.3 handshake (ECDSA P-256), best of {REPEATS} x {opts.handshakes}\n")
    print("| certificates | µs per handshake | x one certificate |")
    print("|--:|--:|--:|")
    for size in SIZES:
        print(f"| {size} | {best[size] * 1e6:.0f} | {best[size] / best[SIZES[0]]:.2f}x |")


if __name__ == "__main__":
    main()
