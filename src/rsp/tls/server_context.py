"""A TLS listener's contexts: one `ssl.SSLContext` per certificate, chosen by the client's SNI.

`build_tls_server(config, listener_tls, alpn)` is a pure function of the config (and the files it names):
call it again after a reload and the new certificates are served to new connections, while live ones
keep theirs. Every failure is a ConfigError naming the file, line and key of the certificate at fault.

Choice of certificate (RFC 6066 §3): the SNI name, lower-cased, matched exactly first, then as
`*.parent` (one label, like RFC 6125 §6.4.3 wildcards and like the HTTP routes); a client without SNI,
or with a name no certificate covers, gets the default certificate (the `default` name's, else the first).
The switch happens in OpenSSL's servername callback by setting `ssl_object.context`: the handshake then
continues with that context's certificate and key.

Profile: Mozilla's server-side TLS "intermediate" configuration (guideline version in
rsp.config.model.MOZILLA_GUIDELINE_VERSION): TLS 1.2 and 1.3, the TLS 1.2 cipher list of the guideline,
the client's cipher order (the guideline's `ssl_prefer_server_ciphers off`: every listed suite is strong,
and the client knows whether it has AES hardware), no compression (CRIME), no renegotiation.
Session resumption: OpenSSL's server session cache and session tickets stay on (their defaults); each
context gets the same session id context, so a session resumes on the certificate it was made with.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from cryptography import x509

from rsp.config.checks import Ctx
from rsp.config.model import Config, ListenerTls, TlsCertificate
from rsp.errors import CertificateError, ConfigError
from rsp.logs import get_logger
from rsp.tls.key_pair import KeyMismatch, check_private_key, weak_link
from rsp.tls.names import NameTable
from rsp.tls.served_chain import ChainPlan, plan_chain, read_roots

# A certificate that expires this soon gets a warning at start (issue 11; Let's Encrypt renews at 30 days).
EXPIRY_WARNING_DAYS: Final = 30
# ALPN for HTTP mode (RFC 7301): rsp speaks HTTP/1.1 only, so offering h2 would be a lie.
HTTP_ALPN: Final = ("http/1.1",)
# An HTTP listener with `http2 = true`: h2 first, so a client offering both gets HTTP/2 (RFC 9113 §3.2;
# RFC 7301 §3.2: the server picks, in its own order of preference), http/1.1 for the others.
H2_ALPN: Final = ("h2", "http/1.1")


def listener_alpn(mode: str, http2: bool) -> tuple[str, ...]:
    """What a listener offers in ALPN: an HTTP listener http/1.1 (and h2 first with `http2 = true`); a TCP
    listener relays whatever the client speaks, so it offers none."""
    if mode != "http":
        return ()
    return H2_ALPN if http2 else HTTP_ALPN
_VERSIONS: Final = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}


@dataclass(frozen=True)
class PlannedCertificate:
    """One certificate, validated (files readable, key matches, chain planned): all a context needs, and only
    that (the parsed certificates are dropped: a listener may hold thousands of these)."""
    item: TlsCertificate
    names: tuple[str, ...]
    pem: bytes | None  # the served chain (rsp.tls.served_chain.ChainPlan.pem); None: the file as it is
    not_after: datetime.datetime


class _Entry:
    """A certificate's context, built on the first handshake that names it."""

    __slots__ = ("context", "planned")

    def __init__(self, planned: PlannedCertificate) -> None:
        self.planned = planned
        self.context: ssl.SSLContext | None = None


ContextBuilder = Callable[[PlannedCertificate], ssl.SSLContext]


class TlsServer:
    """The contexts of one listener and the SNI choice between them. The default context is built at once;
    another certificate's on the first handshake naming it (in this worker): with 1,000 certificates start-up
    and reload pay for what is served, not for every context (docs/performance.md, issue 23)."""

    def __init__(self, planned: list[PlannedCertificate], default: ssl.SSLContext, build: ContextBuilder,
                 default_index: int = 0) -> None:
        self.planned = planned
        self.default = default
        self.build = build
        self.names: NameTable[_Entry] = NameTable()
        for index, cert in enumerate(planned):
            entry = _Entry(cert)
            if index == default_index:
                entry.context = default
            for name in cert.names:
                self.names.add(name, entry)
        if len(planned) > 1:  # one certificate: nothing to choose, no Python callback per handshake
            default.sni_callback = self._on_server_name

    @property
    def context(self) -> ssl.SSLContext:
        """The context new connections start with (its callback switches on SNI)."""
        return self.default

    def select(self, server_name: str | None) -> ssl.SSLContext:
        if not server_name:
            return self.default
        found = self.names.lookup(server_name)
        if found is None:
            return self.default
        if found.context is None:
            found.context = self._build(found.planned)
        return found.context

    def _build(self, planned: PlannedCertificate) -> ssl.SSLContext:
        """The start-up validated the files; one that changed since (gone, replaced by a bad one) is logged
        and its names get the default certificate until the next reload (remembered: no retry per handshake)."""
        try:
            return self.build(planned)
        except (ConfigError, OSError, ssl.SSLError) as exc:
            get_logger().error("%s: cannot load %s since start-up (%s): serving the default certificate for %s",
                               planned.item.key_path, planned.item.cert, exc, ", ".join(planned.names))
            return self.default

    def _on_server_name(self, tls: ssl.SSLObject | ssl.SSLSocket, server_name: str | None,
                        context: ssl.SSLContext) -> int | None:
        chosen = self.select(server_name)
        if chosen is not context:
            tls.context = chosen
        return None


def certificate_names(cert: x509.Certificate) -> tuple[str, ...]:
    """The DNS names of the subjectAltName extension (RFC 6125 §6.4.4: not the CN when a SAN exists)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(n.lower() for n in san.get_values_for_type(x509.DNSName))


def _load_chain(context: ssl.SSLContext, item: TlsCertificate, pem: bytes | None) -> None:
    """The planned chain (rsp.tls.served_chain) and the key; `ssl` reads a chain only from a file, so a built
    chain goes through a private temporary file (certificates only: the key is read from its own file)."""
    key = item.key or item.cert
    if pem is None:
        context.load_cert_chain(item.cert, key)
        return
    fd, path = tempfile.mkstemp(prefix="rsp-chain-", suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        context.load_cert_chain(path, key)
    finally:
        os.unlink(path)


# OpenSSL's refusals of a chain for its security level (Debian's default is level 2: RSA >= 2048 bits,
# no SHA-1 signatures).
_TOO_WEAK = ("CA_KEY_TOO_SMALL", "CA_MD_TOO_WEAK", "EE_KEY_TOO_SMALL")


def _load_chain_at_level(context: ssl.SSLContext, spec: ListenerTls, item: TlsCertificate,
                         pem: bytes | None) -> None:
    """Load the chain; with allow_weak_chain, a chain OpenSSL refuses at its security level is loaded at the
    level it needs (1: RSA 1024; 0: SHA-1 or MD5 signatures), for this certificate's context only."""
    try:
        _load_chain(context, item, pem)
        return
    except ssl.SSLError as exc:
        if not spec.allow_weak_chain or exc.reason not in _TOO_WEAK:
            raise
        failure = exc
    for level in (1, 0):
        context.set_ciphers(f"{spec.ciphers}:@SECLEVEL={level}")
        try:
            _load_chain(context, item, pem)
        except ssl.SSLError as exc:
            failure = exc
            continue
        get_logger().warning("%s: OpenSSL refused the chain at its security level (%s); allow_weak_chain: this "
                             "certificate is served at security level %d", item.key_path, failure.reason, level)
        return
    raise failure


def _unreadable(item: TlsCertificate) -> str:
    """The file of `item` that cannot be read (the key, unless the certificate went since it was planned)."""
    for path in (item.cert, item.key):
        if path and not os.access(path, os.R_OK):
            return path
    return item.key or item.cert


def _context(spec: ListenerTls, item: TlsCertificate, ctx: Ctx, alpn: tuple[str, ...],
             pem: bytes | None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    versions = sorted(_VERSIONS[p] for p in spec.protocols)
    context.minimum_version = versions[0]
    context.maximum_version = versions[-1]
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    # Python sets server preference by default; the guideline leaves the choice to the client.
    context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    try:
        context.set_ciphers(spec.ciphers)
    except ssl.SSLError:
        ctx.fail(f"{spec.key_path}.ciphers", f"{spec.key_path}.ciphers: OpenSSL accepts none of {spec.ciphers!r}")
    if alpn:
        context.set_alpn_protocols(list(alpn))
    try:
        _load_chain_at_level(context, spec, item, pem)
    except (FileNotFoundError, PermissionError) as exc:
        # SSLContext.load_cert_chain leaves `filename` unset (it said "cannot read None"): find the file.
        unread = exc.filename or _unreadable(item)
        which = "cert" if unread == item.cert else "key"
        ctx.fail(f"{item.key_path}.{which}", f"{item.key_path}.{which}: cannot read {unread}: {exc.strerror}")
    except ssl.SSLError as exc:
        # OpenSSL's words for a key of the certificate's type but another pair, and for a key of another type.
        if exc.reason in ("KEY_VALUES_MISMATCH", "NO_CERTIFICATE_ASSIGNED"):
            ctx.fail(f"{item.key_path}.key", f"{item.key_path}: the key {item.key} does not match the certificate "
                     f"{item.cert}")
        ctx.fail(f"{item.key_path}.cert", f"{item.key_path}: cannot load {item.cert} / {item.key or item.cert}: "
                 f"{exc.reason or exc}")
    if spec.client_ca:
        context.verify_mode = ssl.CERT_REQUIRED
        try:
            context.load_verify_locations(cafile=spec.client_ca)
        except (OSError, ssl.SSLError) as exc:
            ctx.fail(f"{spec.key_path}.client_ca", f"{spec.key_path}.client_ca: cannot load {spec.client_ca}: {exc}")
    return context


def _check_listener(spec: ListenerTls, ctx: Ctx) -> None:
    """What every context of the listener shares, tried once: the cipher list and the client CA file."""
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        probe.set_ciphers(spec.ciphers)
    except ssl.SSLError:
        ctx.fail(f"{spec.key_path}.ciphers", f"{spec.key_path}.ciphers: OpenSSL accepts none of {spec.ciphers!r}")
    if spec.client_ca:
        try:
            probe.load_verify_locations(cafile=spec.client_ca)
        except (OSError, ssl.SSLError) as exc:
            ctx.fail(f"{spec.key_path}.client_ca", f"{spec.key_path}.client_ca: cannot load {spec.client_ca}: {exc}")


def _check_key(spec: ListenerTls, item: TlsCertificate, plan: ChainPlan, ctx: Ctx) -> None:
    """What load_cert_chain would refuse, found without OpenSSL (rsp.tls.key_pair): the key file, the pair,
    the chain at OpenSSL's security level (allowed, with allow_weak_chain: the context then lowers it)."""
    key_file = item.key or item.cert
    try:
        with open(key_file, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        which = "key" if item.key else "cert"
        ctx.fail(f"{item.key_path}.{which}", f"{item.key_path}.{which}: cannot read {key_file}: "
                 f"{exc.strerror or exc}")
    try:
        check_private_key(plan.leaf, data, key_file)
    except KeyMismatch:
        where = "key" if item.key else "cert"  # no `key`: the certificate file holds both
        ctx.fail(f"{item.key_path}.{where}", f"{item.key_path}: the key {key_file} does not match the certificate "
                 f"{item.cert}")
    except CertificateError as exc:
        ctx.fail(f"{item.key_path}.cert", f"{item.key_path}: cannot load {item.cert} / {key_file}: {exc}")
    reason = weak_link(plan.served)
    if reason is not None and not spec.allow_weak_chain:
        ctx.fail(f"{item.key_path}.cert", f"{item.key_path}: cannot load {item.cert} / {key_file}: {reason}")


# What a certificate's validation found, by the version of what it read: a reload's check (in the master, which
# lives across reloads) skips the chain planning of a certificate whose files did not change. Only successes
# are kept; cleared when it grows past MAX_VALIDATED (certificates come and go over many reloads).
Validated = tuple[tuple[str, ...], bytes | None, datetime.datetime]
MAX_VALIDATED: Final = 20_000
_validated: dict[tuple[object, ...], Validated] = {}


def _file_version(path: str) -> str | None:
    """The file's contents' digest; None when it cannot be read (the full validation says why)."""
    try:
        with open(path, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()
    except OSError:
        return None


def _version_of(spec: ListenerTls, item: TlsCertificate, roots: str | None,
                at: datetime.datetime) -> tuple[object, ...] | None:
    """Everything a validation depends on: the three files' contents, the settings, the day (validity and
    expiry are judged by date; the system store counts as unchanged until the day changes)."""
    cert = _file_version(item.cert)
    key = _file_version(item.key) if item.key else cert
    if cert is None or key is None or roots is None:
        return None
    return (cert, key, roots, spec.allow_weak_chain, item.names, at.date())


# What a process validated, as it hands it to another: the master gives each new worker, with the config
# (rsp.master.spawn), the validations of that config's certificates, so that the worker (a fresh process whose
# memo is empty) does not plan again the chains the master's check has just planned. Keyed as the memo is, by
# the contents of the files (SHA-256): the worker computes the keys from the files it reads, so a certificate,
# key or roots file changed between the master's check and the worker's start misses and is validated again.
ValidatedCertificates = dict[tuple[object, ...], Validated]


def validated_for(config: Config, now: Callable[[], datetime.datetime] | None = None) -> ValidatedCertificates:
    """This process's validations of the certificates `config`'s listeners serve, by file version (those this
    process validated, with the files as they are now; the others are left to the receiver to validate)."""
    at = now() if now is not None else datetime.datetime.now(datetime.UTC)
    found: ValidatedCertificates = {}
    for spec in config.tls.listeners.values():
        roots_version = _file_version(spec.roots) if spec.roots else "system"
        for item in spec.certificates:
            version = _version_of(spec, item, roots_version, at)
            known = _validated.get(version) if version is not None else None
            if version is not None and known is not None:
                found[version] = known
    return found


def remember_validated(validated: ValidatedCertificates) -> None:
    """Take another process's validations (a worker the master's, rsp.master.worker) as this process's own:
    plan_tls_server then skips each certificate whose files still have the contents they were validated with."""
    for version, known in validated.items():
        if len(_validated) >= MAX_VALIDATED:
            _validated.clear()
        _validated[version] = known


def _validate(spec: ListenerTls, item: TlsCertificate, roots: list[x509.Certificate], at: datetime.datetime,
              ctx: Ctx) -> Validated:
    plan = plan_chain(spec, item, roots, at, ctx)
    names = item.names or certificate_names(plan.leaf)
    if not names:
        ctx.fail(f"{item.key_path}.names", f"{item.key_path}: {item.cert} has no DNS name in its "
                 "subjectAltName; give names = {...}")
    _check_key(spec, item, plan, ctx)
    return names, plan.pem, plan.expires


def plan_tls_server(config: Config, spec: ListenerTls,
                    now: Callable[[], datetime.datetime] | None = None) -> tuple[list[PlannedCertificate], int]:
    """Validate every certificate of the listener as start-up needs it (`rsp --check` and a reload's check stop
    here): readable files, matching keys, served chains, names, the default. Returns the certificates and the
    index of the default one. Raises ConfigError naming the file, line and key."""
    ctx = Ctx(config.path, config.lines)
    at = now() if now is not None else datetime.datetime.now(datetime.UTC)
    _check_listener(spec, ctx)
    planned: list[PlannedCertificate] = []
    roots: list[x509.Certificate] | None = None  # read on the first certificate not validated before
    roots_version = _file_version(spec.roots) if spec.roots else "system"
    for item in spec.certificates:
        version = _version_of(spec, item, roots_version, at)
        known = _validated.get(version) if version is not None else None
        if known is None:
            if roots is None:
                roots = read_roots(spec, ctx)
            known = _validate(spec, item, roots, at, ctx)
            if version is not None:
                if len(_validated) >= MAX_VALIDATED:
                    _validated.clear()
                _validated[version] = known
        names, pem, not_after = known
        if not_after <= at:
            get_logger().warning("%s: the certificate %s expired on %s", item.key_path, item.cert, not_after.date())
        elif not_after - at <= datetime.timedelta(days=EXPIRY_WARNING_DAYS):
            get_logger().warning("%s: the certificate %s expires on %s (in %d days)", item.key_path, item.cert,
                                 not_after.date(), (not_after - at).days)
        planned.append(PlannedCertificate(item, names, pem, not_after))
    default = 0
    if spec.default:
        matches = [i for i, p in enumerate(planned) if spec.default in p.names]
        if not matches:
            ctx.fail(f"{spec.key_path}.default", f"{spec.key_path}.default: no certificate is served for "
                     f"{spec.default!r}")
        default = matches[0]
    return planned, default


def build_tls_server(config: Config, spec: ListenerTls, alpn: tuple[str, ...] = HTTP_ALPN,
                     now: Callable[[], datetime.datetime] | None = None) -> TlsServer:
    """Validate the listener's certificates (plan_tls_server), build the default one's context; the others are
    built on first use (TlsServer.select)."""
    planned, default = plan_tls_server(config, spec, now)
    ctx = Ctx(config.path, config.lines)

    def build(cert: PlannedCertificate) -> ssl.SSLContext:
        return _context(spec, cert.item, ctx, alpn, cert.pem)

    # The default context answers every handshake first; it must not be shared with another name's entry
    # whose callback would then be replaced, so its SNI callback is set once, by TlsServer.
    return TlsServer(planned, build(planned[default]), build, default)
