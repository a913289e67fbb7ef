"""A CheckReport for people (a table, colour optional) and for tools (JSON, shape in docs/certs.md)."""

from __future__ import annotations

import json
from typing import Any

from cryptography import x509

from rsp.certs import chain, facts
from rsp.certs.check import ERROR, NOTE, WARNING, CheckReport, Finding

# ANSI SGR colours (ECMA-48 §8.3.117); used only when the caller says the output is a terminal.
_COLOURS = {ERROR: "\x1b[31m", WARNING: "\x1b[33m", NOTE: "\x1b[2m", "ok": "\x1b[32m"}
_RESET = "\x1b[0m"
# JSON document version: bumped when a field changes meaning or goes away (additions keep it).
JSON_VERSION = 1


def _paint(text: str, kind: str, colour: bool) -> str:
    return f"{_COLOURS[kind]}{text}{_RESET}" if colour and kind in _COLOURS else text


def render_text(report: CheckReport, *, colour: bool = False) -> str:
    header = f"{report.source or 'bundle'}: checked at {report.at:%Y-%m-%d %H:%M:%S} UTC, policy {report.policy}"
    if report.host:
        header += f", host {report.host}"
    columns = ("#", "role", "subject", "issuer", "valid from", "valid until", "key", "signature", "verified")
    rows = []
    for c in report.certificates:
        verified = f"{c.signature} by {c.signed_by}" if c.signed_by else c.signature
        until = f"{c.not_after:%Y-%m-%d}" + ("" if c.validity == "ok" else f" ({c.validity})")
        rows.append((str(c.index), c.role, c.subject, c.issuer, f"{c.not_before:%Y-%m-%d}", until,
                     c.key_type if c.key_type.startswith(("EC ", "Ed")) else f"{c.key_type} {c.key_bits}",
                     c.signature_algorithm, verified))
    widths = [max(len(row[i]) for row in (columns, *rows)) for i in range(len(columns))]
    lines = [header, ""]
    lines.append("  ".join(name.ljust(width) for name, width in zip(columns, widths, strict=True)).rstrip())
    for row in rows:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    lines.append("")
    if report.served is not None:
        label = "chosen path" if report.choice.best is not None else "least bad path (every path is weak)"
        lines.append(f"{label}: {report.served.describe()}")
        sent = chain.path_serving_chain(report.served)
        lines.append("a server sends: " + ", ".join(f'"{facts.subject_of(c)}"' for c in sent)
                     + ("" if len(report.served.certificates) == 1 else " (the root is not sent)"))
    else:
        lines.append("chosen path: none")
    if report.findings:
        lines.append("")
        code_width = max(len(f.code) for f in report.findings)
        for finding in report.findings:
            severity = _paint(finding.severity.ljust(7), finding.severity, colour)
            lines.append(f"{severity}  {finding.code.ljust(code_width)}  {finding.message}")
    lines.append("")
    lines.append(_summary(report, colour))
    return "\n".join(lines) + "\n"


def _summary(report: CheckReport, colour: bool) -> str:
    errors = sum(1 for f in report.findings if f.severity == ERROR)
    warnings = sum(1 for f in report.findings if f.severity == WARNING)
    if errors:
        return _paint(f"PROBLEMS: {errors} error(s), {warnings} warning(s)", ERROR, colour)
    return _paint(f"OK: {warnings} warning(s)", "ok", colour)


def report_json(report: CheckReport) -> dict[str, Any]:
    def path_json(path: chain.Path) -> dict[str, Any]:
        return {
            "certificates": [_identity(c) for c in path.certificates],
            "weak_links": list(path.weak_links),
            "problems": list(path.problems),
            "warnings": list(path.warnings),
            "chosen": path is report.choice.best,
        }

    return {
        "version": JSON_VERSION,
        "source": report.source,
        "at": report.at.isoformat(),
        "policy": report.policy,
        "host": report.host,
        "status": "problems" if report.errors else "ok",
        "exit_status": report.exit_status,
        "certificates": [
            {
                "index": c.index, "role": c.role, "subject": c.certificate.subject.rfc4514_string(),
                "subject_name": c.subject, "issuer": c.certificate.issuer.rfc4514_string(), "issuer_name": c.issuer,
                "not_before": c.not_before.isoformat(), "not_after": c.not_after.isoformat(),
                "validity": c.validity, "key": {"type": c.key_type, "bits": c.key_bits},
                "signature_algorithm": c.signature_algorithm,
                "signature": {"status": c.signature, "by": c.signed_by},
                "sha256": c.fingerprint,
            }
            for c in report.certificates
        ],
        "chain": {
            "best": path_json(report.choice.best) if report.choice.best is not None else None,
            "served": ([_identity(c) for c in chain.path_serving_chain(report.served)]
                       if report.served is not None else []),
            "paths": [path_json(path) for path in report.choice.paths],
            "explanations": list(report.choice.explanations),
            "truncated": report.choice.truncated,
        },
        "host_match": None if report.host_match is None else {
            "matches": report.host_match.matches, "matched": report.host_match.matched,
            "names": list(report.host_match.names), "from_common_name": report.host_match.from_common_name,
        },
        "findings": [_finding_json(f) for f in report.findings],
    }


def render_json(report: CheckReport) -> str:
    return json.dumps(report_json(report), indent=2) + "\n"


def _identity(certificate: x509.Certificate) -> dict[str, str]:
    return {"subject": facts.subject_of(certificate), "sha256": facts.fingerprint(certificate)}


def _finding_json(finding: Finding) -> dict[str, Any]:
    return {"severity": finding.severity, "code": finding.code, "message": finding.message,
            "certificate": finding.certificate}
