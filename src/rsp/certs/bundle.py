"""Reading certificates: a PEM bundle (leaf and chain as users upload them) and a set of trusted roots.

Only `CERTIFICATE` blocks count (RFC 7468 §5); other blocks in a bundle (a private key in a combined file,
parameters) are skipped, since many servers take combined files. A certificate block that does not parse is
an error naming the file and the block's number, so a user can find the pasted line that broke it.
"""

from __future__ import annotations

import os
import re

from cryptography import x509

from rsp.errors import CertificateError

# Debian's and Ubuntu's bundle of the system's trusted roots (package ca-certificates); what `None` means.
SYSTEM_ROOTS_FILE = "/etc/ssl/certs/ca-certificates.crt"

# A roots directory larger than this is not a roots directory (the system store has ~150 files, and each
# appears twice: the named file and its hash link); the bound keeps a mistyped `--roots /` finite.
MAX_ROOT_FILES = 5000

# RFC 7468 §2: "-----BEGIN label-----" ... "-----END label-----". Any label, so that the other blocks of a
# combined file can be skipped and a BEGIN without its END be reported.
_PEM_BLOCK = re.compile(
    rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END ([A-Z0-9 ]+)-----", re.DOTALL,
)
_BEGIN = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")


def load_pem_certificates(data: bytes, source: str) -> list[x509.Certificate]:
    """Every CERTIFICATE block of `data`, in file order. Raises CertificateError naming `source`.

    Errors: no certificate block at all, a block whose END label differs from its BEGIN, a BEGIN without
    an END, or a block that is not a certificate (bad base64, bad DER). Blocks are numbered from 1 among
    the file's PEM blocks of any label, as a reader counts them.
    """
    certificates: list[x509.Certificate] = []
    position = 0
    number = 0
    for match in _PEM_BLOCK.finditer(data):
        number += 1
        stray = _BEGIN.search(data, position, match.start())
        if stray is not None:
            raise CertificateError(f"{source}: PEM block {number} ({stray.group(1).decode()}) has no END line")
        position = match.end()
        label, end_label = match.group(1), match.group(3)
        if label != end_label:
            raise CertificateError(
                f"{source}: PEM block {number} begins {label.decode()} but ends {end_label.decode()}")
        if label != b"CERTIFICATE":
            continue
        try:
            certificates.append(x509.load_pem_x509_certificate(match.group(0)))
        except ValueError as exc:
            raise CertificateError(f"{source}: PEM block {number} is not a valid certificate: {exc}") from None
    stray = _BEGIN.search(data, position)
    if stray is not None:
        raise CertificateError(f"{source}: PEM block {number + 1} ({stray.group(1).decode()}) has no END line")
    if not certificates:
        raise CertificateError(f"{source}: no PEM certificate found (expected -----BEGIN CERTIFICATE-----)")
    return certificates


def read_certificates(path: str) -> list[x509.Certificate]:
    """The certificates of the PEM file at `path`; an unreadable file is a CertificateError."""
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as exc:
        raise CertificateError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return load_pem_certificates(data, path)


def load_roots(path: str | None) -> list[x509.Certificate]:
    """Trusted roots from a PEM file, a directory of PEM files (a hashed directory like /etc/ssl/certs), or,
    for None, the system store. Duplicates (a file and its hash link, a root in two files) appear once.

    In a directory, files without a certificate block (README, a CRL, a subdirectory) are skipped; a file
    that has a broken certificate block is still an error, because a root silently missing would make
    the check's answer wrong.
    """
    if path is None:
        path = SYSTEM_ROOTS_FILE
    if not os.path.isdir(path):
        return _unique(read_certificates(path))
    try:
        names = sorted(os.listdir(path))
    except OSError as exc:
        raise CertificateError(f"{path}: cannot list: {exc.strerror or exc}") from None
    if len(names) > MAX_ROOT_FILES:
        raise CertificateError(f"{path}: {len(names)} files, more than {MAX_ROOT_FILES}: not a roots directory")
    roots: list[x509.Certificate] = []
    for name in names:
        file_path = os.path.join(path, name)
        if not os.path.isfile(file_path):
            continue
        try:
            with open(file_path, "rb") as file:
                data = file.read()
        except OSError as exc:
            raise CertificateError(f"{file_path}: cannot read: {exc.strerror or exc}") from None
        if b"-----BEGIN CERTIFICATE-----" in data:
            roots.extend(load_pem_certificates(data, file_path))
    if not roots:
        raise CertificateError(f"{path}: no PEM certificate in this directory")
    return _unique(roots)


def _unique(certificates: list[x509.Certificate]) -> list[x509.Certificate]:
    """First occurrence of each certificate (by its DER bytes), order kept."""
    seen: set[bytes] = set()
    unique: list[x509.Certificate] = []
    for certificate in certificates:
        der = certificate.tbs_certificate_bytes + certificate.signature
        if der not in seen:
            seen.add(der)
            unique.append(certificate)
    return unique
