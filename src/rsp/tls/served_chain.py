"""Which chain a TLS listener serves for one configured certificate (issue 11, item 4).

The listener's `cert` file is a bundle as users upload it: the leaf first, then whatever chain they
pasted, in any order, maybe with a cross-signed alternative or a stray certificate. rsp builds every path
from the leaf to a trusted root (rsp.certs.chain.choose_chain; roots from the listener's `roots`, else
the system's) and serves the shortest one with no weak link, leaf first, root left out (RFC 8446 §4.4.2).

- a best path exists: it is served, whatever the file's order (a difference is logged);
- every path has a weak link (MD5/SHA-1 below the anchor, RSA under 2048 bits): start-up fails with the
  explanation, unless `allow_weak_chain = true`, which serves the best of the weak paths with a warning;
- no path at all (a private CA that is not among the roots, a self-signed certificate): the file is served
  as given, with a warning that says where the walk to a root stopped; a private CA is not an error.
The expiry warning (EXPIRY_WARNING_DAYS) looks at the served path's earliest end of validity.
"""

from __future__ import annotations

import datetime
import warnings
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.utils import CryptographyDeprecationWarning

from rsp.certs.bundle import load_pem_certificates, load_roots
from rsp.certs.chain import choose_chain, path_serving_chain, serving_chain
from rsp.config.checks import Ctx
from rsp.config.model import ListenerTls, TlsCertificate
from rsp.errors import CertificateError
from rsp.logs import get_logger


@dataclass(frozen=True)
class ChainPlan:
    leaf: x509.Certificate
    pem: bytes | None  # the chain to serve, PEM, leaf first; None: serve the file as it is
    expires: datetime.datetime  # the earliest end of validity among what is served
    served: tuple[x509.Certificate, ...] = ()  # what is served, leaf first (for the security-level check)


def read_roots(spec: ListenerTls, ctx: Ctx) -> list[x509.Certificate]:
    """The listener's trust anchors for chain building; none (and no error) when the system has no store."""
    try:
        with warnings.catch_warnings():
            # The system store holds roots with encoding quirks (a non-positive serial number) that cryptography
            # warns about on every load: not the operator's problem, and not a reason to distrust the root.
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            return load_roots(spec.roots or None)
    except CertificateError as exc:
        if spec.roots:
            ctx.fail(f"{spec.key_path}.roots", f"{spec.key_path}.roots: {exc}")
        get_logger().warning("%s: no system trust store (%s): certificates are served as given", spec.key_path, exc)
        return []


def plan_chain(spec: ListenerTls, item: TlsCertificate, roots: list[x509.Certificate], at: datetime.datetime,
               ctx: Ctx) -> ChainPlan:
    try:
        with open(item.cert, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        ctx.fail(f"{item.key_path}.cert", f"{item.key_path}: cannot read {item.cert}: {exc.strerror or exc}")
    try:
        given = load_pem_certificates(data, item.cert)
    except CertificateError as exc:
        ctx.fail(f"{item.key_path}.cert", f"{item.key_path}: {exc}")
    leaf = given[0]
    log = get_logger()
    choice = choose_chain(leaf, given[1:], roots, at=at)
    if choice.best is not None:
        chain = serving_chain(choice)
        if [c.public_bytes(Encoding.DER) for c in chain] != [c.public_bytes(Encoding.DER) for c in given]:
            log.info("%s: serving %s (built from %s%s)", item.key_path, choice.best.describe(), item.cert,
                     "; " + "; ".join(choice.explanations) if choice.explanations else "")
        return ChainPlan(leaf, _pem(chain), choice.best.expires, tuple(chain))
    if choice.paths:
        why = "; ".join(choice.explanations)
        if not spec.allow_weak_chain:
            ctx.fail(f"{item.key_path}.cert", f"{item.key_path}: every chain from {item.cert} to a trusted root has a "
                     f"weak link ({why}); set {spec.key_path}.allow_weak_chain = true to serve it anyway")
        weakest_best = choice.paths[0]
        log.warning("%s: serving a chain with weak links because allow_weak_chain is set: %s (%s)", item.key_path,
                    weakest_best.describe(), why)
        weak_chain = path_serving_chain(weakest_best)
        return ChainPlan(leaf, _pem(weak_chain), weakest_best.expires, tuple(weak_chain))
    log.warning("%s: %s; serving %s as given", item.key_path, "; ".join(choice.explanations), item.cert)
    return ChainPlan(leaf, None, min(c.not_valid_after_utc for c in given), tuple(given))


def _pem(chain: tuple[x509.Certificate, ...]) -> bytes:
    return b"".join(c.public_bytes(Encoding.PEM) for c in chain)
