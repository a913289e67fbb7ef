"""A bundle of roots (a trust store such as Debian's /etc/ssl/certs/ca-certificates.crt) given to
`rsp cert check` in place of a server's chain: recognised and reported as what it is.

A trust store is a list of self-signed CA certificates with no leaf: checking it as a server's chain would
call the first root a leaf and every other one "sent for nothing". Instead: how many roots, which are
expired or not yet valid, and how to use the file (`--roots FILE`). Real stores hold roots cryptography warns
about (a serial number of 0 or below, against RFC 5280 §4.1.2.2); those warnings are silenced for the
whole command (`quiet_parse_warnings`), since the certificates still parse and are reported.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning

from rsp.certs import facts

# A bundle of this many self-signed CA certificates, and nothing else, is a trust store (one self-signed
# certificate alone is more likely a self-signed server certificate: it is checked as a chain).
MIN_ROOTS: Final = 2

JSON_KIND: Final = "roots"


@contextlib.contextmanager
def quiet_parse_warnings() -> Iterator[None]:
    """cryptography parses extensions and serials lazily, so its deprecation warnings come at first use,
    anywhere in the check: silence them for the whole command (they printed a source path to the user)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        yield


def is_root_bundle(certificates: Sequence[x509.Certificate]) -> bool:
    return len(certificates) >= MIN_ROOTS and all(facts.is_ca(c) and facts.is_self_signed(c) for c in certificates)


@dataclass(frozen=True)
class RootEntry:
    index: int  # 1-based, in file order
    subject: str
    not_after: datetime
    validity: str  # "ok" | "expired" | "not yet valid"


@dataclass(frozen=True)
class RootsReport:
    source: str
    at: datetime
    roots: tuple[RootEntry, ...]

    @property
    def invalid(self) -> tuple[RootEntry, ...]:
        return tuple(r for r in self.roots if r.validity != "ok")


def roots_report(certificates: Sequence[x509.Certificate], *, at: datetime, source: str) -> RootsReport:
    entries = []
    for index, certificate in enumerate(certificates, start=1):
        after = facts.not_after(certificate)
        validity = "expired" if after < at else "not yet valid" if facts.not_before(certificate) > at else "ok"
        entries.append(RootEntry(index, facts.subject_of(certificate), after, validity))
    return RootsReport(source, at, tuple(entries))


def render_roots_text(report: RootsReport) -> str:
    lines = [f"{report.source}: a bundle of {len(report.roots)} root certificates (a trust store), not a server's "
             f"chain: every certificate is a self-signed CA; checked at {report.at:%Y-%m-%d %H:%M:%S} UTC",
             f"  use it as the roots of a check: rsp cert check SITE.pem --roots {report.source}"]
    for entry in report.invalid:
        lines.append(f"  note: #{entry.index} \"{entry.subject}\" is {entry.validity} "
                     f"(until {entry.not_after:%Y-%m-%d}): it verifies nothing now")
    lines.append(f"OK: {len(report.roots)} root(s), {len(report.roots) - len(report.invalid)} valid now")
    return "\n".join(lines) + "\n"


def render_roots_json(report: RootsReport, version: int) -> str:
    document = {
        "version": version, "kind": JSON_KIND, "source": report.source, "at": report.at.isoformat(),
        "status": "ok", "exit_status": 0, "roots": len(report.roots),
        "not_valid_now": [{"index": e.index, "subject": e.subject, "not_after": e.not_after.isoformat(),
                           "validity": e.validity} for e in report.invalid],
    }
    return json.dumps(document, indent=2) + "\n"
