"""`rsp cert check`'s judgement of a bundle: per-certificate facts, the chosen path, and findings.

A finding has a severity: `error` (a client will fail or flag the connection: exit status 1), `warning`
(works, but a person should act), `note` (context, such as why another path lost). Codes are stable words
for tools; docs/certs.md lists them. Pure: the moment of the check is a parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509

from rsp.certs import chain, facts
from rsp.certs.hostname import NameMatch, match_host

ERROR = "error"
WARNING = "warning"
NOTE = "note"

# Warn when the served path stops working within this many days: long enough to renew by hand, and what
# certbot's renewal window (30 days) uses.
EXPIRY_WARNING_DAYS = 30

ROLE_LEAF = "leaf"
ROLE_INTERMEDIATE = "intermediate"
ROLE_ROOT = "root"
ROLE_UNUSED = "unused"


@dataclass(frozen=True)
class Finding:
    severity: str
    code: str
    message: str
    certificate: int | None = None  # 1-based position in the bundle, when the finding is about one


@dataclass(frozen=True)
class CertificateReport:
    """What the table shows for one certificate of the bundle."""

    index: int  # 1-based position in the bundle
    certificate: x509.Certificate
    role: str
    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    validity: str  # 'ok', 'expired', 'not yet valid'
    key_type: str
    key_bits: int
    signature_algorithm: str
    signature: str  # 'ok', 'self-signed', 'bad', 'issuer not found'
    signed_by: str  # '#2', 'root "Root A"', ''
    fingerprint: str


@dataclass(frozen=True)
class CheckReport:
    source: str
    at: datetime
    policy: str
    host: str | None
    certificates: tuple[CertificateReport, ...]
    choice: chain.ChainChoice
    served: chain.Path | None  # the path a server would send: the best one, else the least bad one
    host_match: NameMatch | None
    findings: tuple[Finding, ...]

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == ERROR)

    @property
    def exit_status(self) -> int:
        """0 good, 1 problems found (2, unusable input, never reaches a report)."""
        return 1 if self.errors else 0


def find_leaf(bundle: Sequence[x509.Certificate]) -> int:
    """Index of the server's certificate: the first one that issued none of the others and is not a CA;
    failing that, the first that issued none of the others; failing that (a loop), the first."""
    issuers = {id(b) for b in bundle for a in bundle if a is not b and a.issuer == b.subject}
    bottom = [i for i, c in enumerate(bundle) if id(c) not in issuers]
    for index in bottom:
        if not facts.is_ca(bundle[index]):
            return index
    return bottom[0] if bottom else 0


def check_bundle(bundle: Sequence[x509.Certificate], roots: Sequence[x509.Certificate], *, at: datetime,
                 host: str | None = None, policy: str = chain.POLICY_DEFAULT, source: str = "") -> CheckReport:
    findings: list[Finding] = []
    leaf_index = find_leaf(bundle)
    leaf = bundle[leaf_index]
    choice = chain.choose_chain(leaf, bundle, roots, at=at, policy=policy)
    served = choice.best or (choice.paths[0] if choice.paths else None)
    position = {_der(c): i for i, c in reversed(list(enumerate(bundle)))}

    if served is None:
        kind, text = choice.no_path, choice.explanations[0]
        findings.append(Finding(ERROR, kind if kind not in (chain.NO_PATH_TOO_LONG, chain.NO_PATH_BOUND)
                                else "no-path", text))
        if leaf_index != 0:
            findings.append(Finding(ERROR, "wrong-order", f'the server\'s certificate "{facts.subject_of(leaf)}" is '
                                    f"#{leaf_index + 1}; it must come first", leaf_index + 1))
    else:
        findings.extend(_path_findings(served, position, at, policy, weak_everywhere=choice.best is None))
        findings.extend(_order_findings(bundle, served, position, leaf_index))
    findings.extend(_unused_findings(bundle, served, choice))
    match = match_host(leaf, host) if host else None
    if match is not None and host:
        findings.extend(_host_findings(match, host, leaf_index))
    certificates = tuple(_describe(i, c, bundle, roots, served, at) for i, c in enumerate(bundle))
    for report in certificates:
        if report.signature == "bad" and not any(f.code == "bad-signature" for f in findings):
            findings.append(Finding(ERROR, "bad-signature", f'#{report.index} "{report.subject}": no certificate '
                                    f'named "{report.issuer}" verifies its signature', report.index))
    findings.extend(Finding(NOTE, "other-path", text) for text in choice.explanations if served is not None)
    return CheckReport(source=source, at=at, policy=policy, host=host, certificates=certificates, choice=choice,
                       served=served, host_match=match, findings=tuple(_ordered(findings)))


def _ordered(findings: list[Finding]) -> list[Finding]:
    rank = {ERROR: 0, WARNING: 1, NOTE: 2}
    return sorted(findings, key=lambda f: rank[f.severity])  # stable: order of discovery within a severity


def _path_findings(path: chain.Path, position: dict[bytes, int], at: datetime, policy: str,
                   weak_everywhere: bool) -> list[Finding]:
    findings = []
    last = len(path.certificates) - 1
    leaf_expires = facts.not_after(path.leaf)
    for depth, certificate in enumerate(path.certificates):
        number = position.get(_der(certificate))
        index = number + 1 if number is not None else None
        where = f'#{index} "{facts.subject_of(certificate)}"' if index else f'root "{facts.subject_of(certificate)}"'
        weak_hash = facts.weak_signature(certificate) if depth < last else None
        if weak_hash == "SHA-1" and policy == chain.POLICY_CHROME_SHA1_SUNSET:
            if leaf_expires >= chain.SHA1_SUNSET:
                findings.append(Finding(ERROR, "sha1-sunset", f"{where} is signed with SHA-1 and the leaf expires "
                                        f"{leaf_expires:%Y-%m-%d}, on or after 2016-01-01: Chrome marks this "
                                        "chain insecure", index))
            else:
                findings.append(Finding(WARNING, "sha1-sunset", f"{where} is signed with SHA-1; the leaf expires "
                                        f"{leaf_expires:%Y-%m-%d}, before 2016-01-01, so Chrome accepts it",
                                        index))
        elif weak_hash is not None:
            findings.append(Finding(ERROR, "weak-signature", f"{where} is signed with {weak_hash}"
                                    + (" and no path avoids it" if weak_everywhere else ""), index))
        weak_key = facts.weak_key(certificate)
        if weak_key is not None:
            findings.append(Finding(ERROR, "weak-key", f"{where} has a {weak_key} key (under "
                                    f"{facts.MIN_RSA_BITS} bits)", index))
        if at > facts.not_after(certificate):
            findings.append(Finding(ERROR, "expired", f"{where} expired on {facts.not_after(certificate):%Y-%m-%d}",
                                    index))
        elif at < facts.not_before(certificate):
            findings.append(Finding(ERROR, "not-yet-valid", f"{where} is not valid before "
                                    f"{facts.not_before(certificate):%Y-%m-%d}", index))
        elif facts.not_after(certificate) - at < timedelta(days=EXPIRY_WARNING_DAYS):
            findings.append(Finding(WARNING, "expires-soon", f"{where} expires on "
                                    f"{facts.not_after(certificate):%Y-%m-%d}, within {EXPIRY_WARNING_DAYS} days",
                                    index))
    for problem in path.problems:
        if "expired" in problem or "not valid before" in problem:
            continue  # reported above, with the certificate's position
        findings.append(Finding(ERROR, "ca-constraints", problem))
    return findings


def _order_findings(bundle: Sequence[x509.Certificate], served: chain.Path, position: dict[bytes, int],
                    leaf_index: int) -> list[Finding]:
    """RFC 5246 §7.4.2: "each following certificate MUST directly certify the one preceding it"; TLS 1.3
    (RFC 8446 §4.4.2) relaxes it to SHOULD, but servers send the file as it is and older clients fail."""
    sent = chain.path_serving_chain(served)
    in_bundle = [position[_der(c)] for c in sent if _der(c) in position]
    if leaf_index == 0 and in_bundle == sorted(in_bundle):
        return []
    order = ", ".join(f"#{i + 1}" for i in in_bundle)
    first = f" (the server's certificate is #{leaf_index + 1})" if leaf_index != 0 else ""
    return [Finding(ERROR, "wrong-order", f"the chain must be sent leaf first, then each issuer in turn{first}: "
                    f"that is {order} of this file, in that order ({served.describe()})")]


def _unused_findings(bundle: Sequence[x509.Certificate], served: chain.Path | None,
                     choice: chain.ChainChoice) -> list[Finding]:
    on_path = {_der(c) for c in served.certificates} if served is not None else set()
    anchor = _der(served.anchor) if served is not None else b""
    on_other_paths = {_der(c) for path in choice.paths for c in path.certificates}
    findings = []
    for number, certificate in enumerate(bundle, start=1):
        der = _der(certificate)
        where = f'#{number} "{facts.subject_of(certificate)}"'
        if der == anchor and len(served.certificates if served else ()) > 1:
            findings.append(Finding(NOTE, "root-in-bundle", f"{where} is the trusted root: clients already have "
                                    "it, sending it costs bytes in every handshake", number))
        elif der not in on_path and der in on_other_paths:
            findings.append(Finding(WARNING, "unused", f"{where} is on another path, not the chosen one: a client "
                                    "may build its path through it (NSS before 3.17.4 preferred such longer, "
                                    "weaker paths); `rsp cert bundle` leaves it out", number))
        elif der not in on_path and served is not None:
            findings.append(Finding(WARNING, "unused", f"{where} is on no path to a trusted root: sent for nothing",
                                    number))
    return findings


def _host_findings(match: NameMatch, host: str, leaf_index: int) -> list[Finding]:
    findings = []
    names = ", ".join(match.names) or "(none)"
    if not match.matches:
        findings.append(Finding(ERROR, "name-mismatch", f"{host} is not among the certificate's names: {names}",
                                leaf_index + 1))
    if match.from_common_name:
        findings.append(Finding(WARNING, "cn-only", "the certificate has no DNS name in subjectAltName; the "
                                "subject CN was used, which browsers ignore (Chrome since version 58, 2017)",
                                leaf_index + 1))
    return findings


def _describe(index: int, certificate: x509.Certificate, bundle: Sequence[x509.Certificate],
              roots: Sequence[x509.Certificate], served: chain.Path | None, at: datetime) -> CertificateReport:
    der = _der(certificate)
    role = ROLE_UNUSED
    if served is not None:
        path_ders = [_der(c) for c in served.certificates]
        if der in path_ders:
            depth = path_ders.index(der)
            role = ROLE_LEAF if depth == 0 else ROLE_ROOT if depth == len(path_ders) - 1 else ROLE_INTERMEDIATE
    signature, signed_by = _signature_status(certificate, bundle, roots, served)
    problem = facts.validity_problem(certificate, at)
    validity = "ok" if problem is None else "expired" if problem.startswith("expired") else "not yet valid"
    key_type, key_bits = facts.key_description(certificate)
    return CertificateReport(
        index=index + 1, certificate=certificate, role=role, subject=facts.subject_of(certificate),
        issuer=facts.issuer_of(certificate), not_before=facts.not_before(certificate),
        not_after=facts.not_after(certificate), validity=validity, key_type=key_type, key_bits=key_bits,
        signature_algorithm=facts.signature_description(certificate), signature=signature, signed_by=signed_by,
        fingerprint=facts.fingerprint(certificate),
    )


def _signature_status(certificate: x509.Certificate, bundle: Sequence[x509.Certificate],
                      roots: Sequence[x509.Certificate], served: chain.Path | None) -> tuple[str, str]:
    """Who verifies this certificate's signature: its issuer on the served path, else a bundle member (#n) or
    a trusted root. (A cross-signed twin holds the same key, so several may verify: the path's one is named.)"""
    if certificate.subject == certificate.issuer and facts.signature_verifies(certificate, certificate):
        return "self-signed", ""
    path = list(served.certificates) if served is not None else []
    if certificate in path[:-1]:
        parent = path[path.index(certificate) + 1]
        number = next((n for n, c in enumerate(bundle, start=1) if c == parent), None)
        return "ok", f"#{number}" if number is not None else f'root "{facts.subject_of(parent)}"'
    named = False
    for number, other in enumerate(bundle, start=1):
        if other is not certificate and other.subject == certificate.issuer:
            named = True
            if facts.signature_verifies(certificate, other):
                return "ok", f"#{number}"
    for root in roots:
        if root.subject == certificate.issuer:
            named = True
            if facts.signature_verifies(certificate, root):
                return "ok", f'root "{facts.subject_of(root)}"'
    return ("bad", "") if named else ("issuer not found", "")


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.tbs_certificate_bytes + certificate.signature
