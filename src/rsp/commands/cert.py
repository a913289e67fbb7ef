"""`rsp cert check BUNDLE.pem ...` and `rsp cert bundle IN.pem ... > OUT.pem`: certificate bundles.

check: per-certificate facts, every path to a trusted root, the one a server should send, and what is wrong
(exit 0 good, 1 problems found, 2 unusable input). bundle: the chosen serving chain, in order, on stdout
(exit 1, with the reasons on stderr, when every path has a weak link). See docs/certs.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from typing import NoReturn

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from rsp.certs import chain
from rsp.certs.bundle import load_roots, read_certificates
from rsp.certs.check import check_bundle, find_leaf
from rsp.certs.render import JSON_VERSION, render_json, render_text
from rsp.certs.roots import is_root_bundle, quiet_parse_warnings, render_roots_json, render_roots_text, roots_report
from rsp.errors import CertificateError

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_UNUSABLE = 2

EPILOG = """\
Examples:
  rsp cert check site.pem                          against the system roots, now
  rsp cert check site.pem --host www.example.com --roots /etc/ssl/certs
  rsp cert check site.pem --at 2015-06-01 --policy chrome-sha1-sunset --json
  rsp cert bundle site.pem --roots roots.pem > site-chain.pem

Exit status: 0 good, 1 problems found, 2 unusable input (unreadable, not PEM, no certificate).
"""


class _UsageError(Exception):
    pass


class _Done(Exception):
    def __init__(self, status: int) -> None:
        self.status = status
        super().__init__(status)


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting: only rsp.cli ends the process."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{self.prog}: error: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            sys.stderr.write(message)
        raise _Done(status)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rsp cert", description="Check certificate bundles and build the chain to serve.",
                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="action", required=True, parser_class=_Parser)
    check = commands.add_parser("check", help="report on a bundle: each certificate, the chosen path, problems")
    check.add_argument("bundle", help="PEM file: the server's certificate, then its chain")
    check.add_argument("--host", help="the name clients connect to (checked against the leaf's names)")
    check.add_argument("--json", action="store_true", help="JSON for tools instead of a table")
    bundle = commands.add_parser("bundle", help="write the chosen serving chain (leaf, intermediates) to stdout")
    bundle.add_argument("bundle", help="PEM file with the leaf and any candidate intermediates, in any order")
    for sub in (check, bundle):
        sub.add_argument("--roots", metavar="DIR|FILE",
                         help="trusted roots: a PEM file or a directory of them (default: the system store)")
        sub.add_argument("--at", metavar="DATE", help="check validity at this date (ISO 8601, UTC; default: now)")
        sub.add_argument("--policy", choices=chain.POLICIES, default=chain.POLICY_DEFAULT,
                         help="default, or chrome-sha1-sunset: Chrome's 2015 rule on SHA-1 in the chain")
    return parser


def parse_at(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _UsageError(f"rsp cert: error: --at {text!r} is not an ISO 8601 date (2015-06-01 or "
                          "2015-06-01T12:00:00Z)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def use_colour() -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def main(argv: list[str]) -> int:
    try:
        args = build_parser().parse_args(argv)
        at = parse_at(args.at)
    except _UsageError as exc:
        print(exc, file=sys.stderr)
        return EXIT_UNUSABLE
    except _Done as done:
        return done.status
    with quiet_parse_warnings():
        return run(args, at)


def run(args: argparse.Namespace, at: datetime) -> int:
    try:
        certificates = read_certificates(args.bundle)
        roots = load_roots(args.roots)
    except CertificateError as exc:
        print(f"rsp cert {args.action}: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    if args.action == "check" and is_root_bundle(certificates):
        report_roots = roots_report(certificates, at=at, source=args.bundle)
        sys.stdout.write(render_roots_json(report_roots, JSON_VERSION) if args.json
                         else render_roots_text(report_roots))
        return EXIT_OK
    if args.action == "check":
        report = check_bundle(certificates, roots, at=at, host=args.host, policy=args.policy, source=args.bundle)
        sys.stdout.write(render_json(report) if args.json else render_text(report, colour=use_colour()))
        return report.exit_status
    return write_bundle(certificates, roots, at=at, policy=args.policy)


def write_bundle(certificates: list[x509.Certificate], roots: list[x509.Certificate], *,
                 at: datetime, policy: str) -> int:
    leaf = certificates[find_leaf(certificates)]
    choice = chain.choose_chain(leaf, certificates, roots, at=at, policy=policy)
    if choice.best is None:
        print("rsp cert bundle: no usable chain:", file=sys.stderr)
        for line in choice.explanations:
            print(f"  {line}", file=sys.stderr)
        return EXIT_PROBLEMS
    for certificate in chain.serving_chain(choice):
        sys.stdout.write(certificate.public_bytes(Encoding.PEM).decode("ascii"))
    print(f"rsp cert bundle: chose {choice.best.describe()} (the root is not written)", file=sys.stderr)
    for problem in choice.best.problems:
        print(f"rsp cert bundle: warning: {problem}", file=sys.stderr)
    for line in choice.explanations:
        print(f"rsp cert bundle: {line}", file=sys.stderr)
    return EXIT_OK
