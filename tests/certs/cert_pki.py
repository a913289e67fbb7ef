"""Build certificate hierarchies in tests: roots, intermediates, leaves, with any hash, dates and names.

SHA-256 (and other SHA-2) signatures are made with cryptography. cryptography refuses to sign with SHA-1 or
MD5, so those certificates are signed by the real `openssl ca` command, from a CSR and a config this module
writes to a temporary directory (`openssl ca` takes explicit start and end dates, which `openssl x509 -req`
in OpenSSL 3.0 does not).
"""

from __future__ import annotations

import datetime
import functools
import os
import subprocess
import tempfile
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
UTC = datetime.UTC
EPOCH_2010 = datetime.datetime(2010, 1, 1, tzinfo=UTC)
FAR_FUTURE = datetime.datetime(2040, 1, 1, tzinfo=UTC)
HASHES: dict[str, hashes.HashAlgorithm] = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(),
                                           "sha512": hashes.SHA512()}


@dataclass(frozen=True)
class Issued:
    certificate: x509.Certificate
    key: PrivateKey

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def name(self) -> x509.Name:
        return self.certificate.subject


@functools.cache
def ec_key(label: str) -> ec.EllipticCurvePrivateKey:
    """A P-256 key per label (cached: the same label is the same key, which is what a cross-sign needs)."""
    del label
    return ec.generate_private_key(ec.SECP256R1())


@functools.cache
def rsa_key(label: str, bits: int = 2048) -> rsa.RSAPrivateKey:
    del label
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def cn(name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])


def pem_of(*certificates: x509.Certificate | Issued) -> bytes:
    parts = []
    for item in certificates:
        certificate = item.certificate if isinstance(item, Issued) else item
        parts.append(certificate.public_bytes(serialization.Encoding.PEM))
    return b"".join(parts)


def root(name: str, key: PrivateKey, *, not_before: datetime.datetime = EPOCH_2010,
         not_after: datetime.datetime = FAR_FUTURE) -> Issued:
    """A self-signed CA (SHA-256)."""
    return issue(name, key, issuer=None, ca=True, not_before=not_before, not_after=not_after)


def issue(name: str, key: PrivateKey, *, issuer: Issued | None, ca: bool, digest: str = "sha256",
          not_before: datetime.datetime = EPOCH_2010, not_after: datetime.datetime = FAR_FUTURE,
          dns_names: tuple[str, ...] = (), subject: x509.Name | None = None,
          subject_key_id: bytes | None = None) -> Issued:
    """A certificate for `key` named `name` (or `subject`), signed by `issuer` (None: self-signed).
    `subject_key_id` forges the subject key identifier (default: derived from the key, RFC 5280 §4.2.1.2)."""
    subject = subject if subject is not None else cn(name)
    signer_key = issuer.key if issuer is not None else key
    issuer_name = issuer.name if issuer is not None else subject
    if digest in ("sha1", "md5"):
        if issuer is None:
            raise ValueError("self-signed SHA-1/MD5 roots are not needed by these tests")
        return Issued(_openssl_sign(subject, key, issuer, ca=ca, digest=digest, not_before=not_before,
                                    not_after=not_after, dns_names=dns_names), key)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier(subject_key_id) if subject_key_id is not None else
                              x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key()),
                              critical=False))
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                          encipher_only=False, decipher_only=False), critical=True)
    if dns_names:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]),
                                        critical=False)
    return Issued(builder.sign(signer_key, HASHES[digest]), key)


def _openssl_sign(subject: x509.Name, key: PrivateKey, issuer: Issued, *, ca: bool, digest: str,
                  not_before: datetime.datetime, not_after: datetime.datetime,
                  dns_names: tuple[str, ...]) -> x509.Certificate:
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    with tempfile.TemporaryDirectory(prefix="rsp-pki-") as tmp:
        def write(name: str, data: bytes | str) -> str:
            path = os.path.join(tmp, name)
            with open(path, "wb") as file:
                file.write(data.encode() if isinstance(data, str) else data)
            return path

        extensions = ["subjectKeyIdentifier = hash", "authorityKeyIdentifier = keyid"]
        if ca:
            extensions += ["basicConstraints = critical,CA:TRUE", "keyUsage = critical,keyCertSign,cRLSign"]
        else:
            extensions += ["basicConstraints = critical,CA:FALSE"]
        if dns_names:
            extensions.append("subjectAltName = " + ",".join(f"DNS:{n}" for n in dns_names))
        write("index.txt", b"")
        write("serial", f"{x509.random_serial_number():040X}\n")  # openssl wants an even digit count
        config = write("ca.cnf", "\n".join([
            "[ca]", "default_ca = ca_section", "[ca_section]",
            f"database = {tmp}/index.txt", f"new_certs_dir = {tmp}", f"serial = {tmp}/serial",
            "policy = policy_any", "unique_subject = no", "copy_extensions = none", "email_in_dn = no",
            "[policy_any]", "commonName = supplied", "[v3]", *extensions, "",
        ]))
        csr_path = write("req.csr", csr.public_bytes(serialization.Encoding.PEM))
        ca_path = write("ca.pem", issuer.certificate.public_bytes(serialization.Encoding.PEM))
        key_path = write("ca.key", issuer.key.private_bytes(serialization.Encoding.PEM,
                                                            serialization.PrivateFormat.PKCS8,
                                                            serialization.NoEncryption()))
        out = os.path.join(tmp, "out.pem")
        subprocess.run(
            ["openssl", "ca", "-batch", "-config", config, "-in", csr_path, "-out", out, "-notext",
             "-preserveDN", "-startdate", f"{not_before:%Y%m%d%H%M%SZ}", "-enddate", f"{not_after:%Y%m%d%H%M%SZ}",
             "-md", digest, "-cert", ca_path, "-keyfile", key_path, "-extfile", config, "-extensions", "v3"],
            check=True, capture_output=True, timeout=30,
        )
        with open(out, "rb") as file:
            return x509.load_pem_x509_certificate(file.read())
