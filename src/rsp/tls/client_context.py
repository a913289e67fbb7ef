"""TLS to a pool's backends: one client `ssl.SSLContext` per pool, and the name each connection sends.

With `verify` (the default) the backend's chain must lead to a CA of `ca` (else the system's store) and
its certificate must name the host (RFC 6125 §6; Python's check_hostname, which also matches an IP
address against the certificate's IP SANs). The name sent in SNI and checked is the pool's `sni`, else the
backend's configured host. A failed verification fails the connection like a refused connect: the
request gets 502 (or is retried on another backend when that is safe).
"""

from __future__ import annotations

import ipaddress
import ssl

from rsp.config.checks import Ctx
from rsp.config.model import Backend, Config, PoolTls
from rsp.tls.server_context import HTTP_ALPN


def build_backend_context(config: Config, spec: PoolTls) -> ssl.SSLContext:
    ctx = Ctx(config.path, config.lines)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # RFC 8996: nothing older
    context.set_alpn_protocols(list(HTTP_ALPN))
    if spec.verify:
        context.check_hostname = True
        context.verify_mode = ssl.CERT_REQUIRED
        try:
            if spec.ca:
                context.load_verify_locations(cafile=spec.ca)
            else:
                context.load_default_certs()
        except (OSError, ssl.SSLError) as exc:
            ctx.fail(f"{spec.key_path}.ca", f"{spec.key_path}.ca: cannot load {spec.ca}: {exc}")
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def backend_server_name(spec: PoolTls, backend: Backend) -> str:
    """What the connection to `backend` sends as SNI and checks the certificate against."""
    if spec.sni:
        return spec.sni
    try:
        ipaddress.ip_address(backend.host)
    except ValueError:
        return backend.host.lower()
    return backend.host  # an address: checked against IP SANs, not sent as SNI (RFC 6066 §3)
