"""Certificates for the TLS tests, made with `cryptography`: a CA and leaves (RSA 2048 or ECDSA P-256)."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def new_key(kind: str) -> PrivateKey:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "rsa1024":  # a weak link (issue 11: RSA under 2048 bits)
        return rsa.generate_private_key(public_exponent=65537, key_size=1024)
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@dataclass
class Issued:
    cert: x509.Certificate
    key: PrivateKey
    cert_path: Path
    key_path: Path

    @property
    def pem_path(self) -> Path:
        """Certificate and key in one file (HAProxy's `crt`)."""
        both = self.cert_path.with_suffix(".both.pem")
        if not both.exists():
            both.write_bytes(self.cert_path.read_bytes() + self.key_path.read_bytes())
        return both


def _write(directory: Path, stem: str, cert: x509.Certificate, key: PrivateKey) -> Issued:
    cert_path = directory / f"{stem}.crt"
    key_path = directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return Issued(cert, key, cert_path, key_path)


class Authority:
    """A self-signed CA that issues leaves into `directory`."""

    def __init__(self, directory: Path, name: str, kind: str = "ec", parent: Authority | None = None) -> None:
        self.directory = directory
        self.key = new_key(kind)
        now = datetime.datetime.now(datetime.UTC)
        issuer = parent.cert.subject if parent is not None else _name(name)
        signer = parent.key if parent is not None else self.key
        self.cert = (
            x509.CertificateBuilder().subject_name(_name(name)).issuer_name(issuer)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(signer, hashes.SHA256())
        )
        self.issued = _write(directory, name, self.cert, self.key)

    @property
    def path(self) -> Path:
        return self.issued.cert_path

    def issue(self, stem: str, names: list[str], *, kind: str = "ec", client: bool = False, days: int = 365,
              ips: tuple[str, ...] = ()) -> Issued:
        key = new_key(kind)
        now = datetime.datetime.now(datetime.UTC)
        alt: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
        alt += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
        builder = (
            x509.CertificateBuilder().subject_name(_name(names[0] if names else stem)).issuer_name(self.cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH if client
                                                  else ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                           critical=False)
        )
        if alt:
            builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
        return _write(self.directory, stem, builder.sign(self.key, hashes.SHA256()), key)
