"""Does a certificate name a host? RFC 6125 §6.4 with the rules browsers apply.

- DNS names come from subjectAltName dNSName entries; the subject's common name is consulted only when the
  certificate has no dNSName at all (RFC 6125 §6.4.4; browsers dropped even that, rsp reports it).
- Comparison is case-insensitive over ASCII; a trailing dot on the host is ignored; a non-ASCII host is
  compared in its IDNA A-label form (§6.4.2).
- A wildcard is accepted only as the whole left-most label (`*.example.com`) and matches exactly one label
  (§6.4.3: `*.example.com` matches `www.example.com`, not `example.com` nor `a.b.example.com`). Partial
  wildcards (`w*.example.com`) are refused, as the CA/Browser Forum Baseline Requirements §7.1.4.2.1 forbid
  them; so are wildcards over fewer than two labels (`*.com`).
- An IP address host matches only iPAddress entries (RFC 2818 §3.1), never a DNS name.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID

# `*.com` would name every host under a top-level domain: a wildcard needs at least this many labels after it.
MIN_LABELS_AFTER_WILDCARD = 2


@dataclass(frozen=True)
class NameMatch:
    matches: bool
    matched: str          # the certificate's name that matched, '' when none did
    names: tuple[str, ...]  # every name considered, for the report
    from_common_name: bool  # the names came from the subject CN (no dNSName in the certificate)


def normalise_host(host: str) -> str:
    host = host.strip().rstrip(".").lower()
    try:
        host.encode("ascii")
    except UnicodeEncodeError:
        host = host.encode("idna").decode("ascii")
    return host


def certificate_names(certificate: x509.Certificate) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    """(DNS names, IP addresses, names came from the CN)."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    dns = tuple(san.get_values_for_type(x509.DNSName)) if san is not None else ()
    ips = tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress)) if san is not None else ()
    if dns:
        return dns, ips, False
    common = [a.value for a in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return tuple(v if isinstance(v, str) else v.decode("utf-8", "replace") for v in common), ips, True


def name_matches(pattern: str, host: str) -> bool:
    """One presented DNS name (maybe a wildcard) against a normalised host."""
    pattern = pattern.rstrip(".").lower()
    if pattern == host:
        return True
    if not pattern.startswith("*."):
        return False
    rest = pattern[2:]
    if "*" in rest or rest.count(".") + 1 < MIN_LABELS_AFTER_WILDCARD:
        return False
    label, dot, parent = host.partition(".")
    return bool(label) and bool(dot) and parent == rest


def match_host(certificate: x509.Certificate, host: str) -> NameMatch:
    dns, ips, from_cn = certificate_names(certificate)
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        address = None
    if address is not None:
        found = next((ip for ip in ips if ipaddress.ip_address(ip) == address), "")
        return NameMatch(bool(found), found, ips, False)
    wanted = normalise_host(host)
    found = next((name for name in dns if name_matches(name, wanted)), "")
    return NameMatch(bool(found), found, dns + ips, from_cn)
