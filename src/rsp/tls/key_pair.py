"""Does a certificate's key file hold its private key, and would OpenSSL accept the chain? Without OpenSSL.

Start-up and `rsp --check` validate every certificate of a listener before any of them is served; building an
`ssl.SSLContext` per certificate only to throw it away (the check) or to keep one per certificate that is
maybe never asked for (start-up, rsp.tls.server_context builds them on first use) costs about a millisecond
each in OpenSSL 3's loaders, ten times what `cryptography` takes for the same answers:

- the key file holds a private key (PEM) whose public half is the leaf's (what `load_cert_chain` checks with
  X509_check_private_key; a key of another type is a mismatch too);
- OpenSSL's security level would accept the served chain (what `load_cert_chain` refuses with
  EE_KEY_TOO_SMALL, CA_KEY_TOO_SMALL, CA_MD_TOO_WEAK): at level 2, Debian's default, every key gives at
  least 112 bits of security (RSA/DSA 2048, EC 224) and no signature below a self-signed one uses MD5 or SHA-1.
"""

from __future__ import annotations

import re
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_private_key

from rsp.errors import CertificateError

# OpenSSL security level 2 (SSL_CTX_set_security_level(3)): 112 bits, i.e. these key sizes at least.
MIN_RSA_BITS: Final = 2048
MIN_EC_BITS: Final = 224
# Signature hashes level 2 refuses (SHA-1: under 80 bits of collision resistance; level 0 takes them).
WEAK_HASHES: Final = (hashes.MD5, hashes.SHA1)
_PRIVATE_KEY: Final = re.compile(rb"-----BEGIN ([A-Z ]*)PRIVATE KEY-----.*?-----END \1PRIVATE KEY-----", re.S)


class KeyMismatch(CertificateError):
    """The key file's private key is not the certificate's."""


def check_private_key(leaf: x509.Certificate, data: bytes, path: str) -> None:
    """The first PEM private key of `data` (the key file, or the certificate file holding both) is the
    leaf's. Raises KeyMismatch when it is another key, CertificateError when there is none to read."""
    found = _PRIVATE_KEY.search(data)
    if found is None:
        raise CertificateError(f"no PEM private key in {path}")
    try:
        # The RSA consistency check costs milliseconds per key; OpenSSL's loader does not do it either.
        key = load_pem_private_key(found.group(0), None, unsafe_skip_rsa_key_validation=True)
    except TypeError as exc:
        raise CertificateError(f"the private key in {path} is encrypted (rsp takes no passphrase)") from exc
    except ValueError as exc:
        raise CertificateError(f"cannot read the private key in {path}: {exc}") from exc
    spki = PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(Encoding.DER, spki) != leaf.public_key().public_bytes(Encoding.DER, spki):
        raise KeyMismatch(f"the key {path} does not match the certificate")


def weak_link(chain: tuple[x509.Certificate, ...]) -> str | None:
    """OpenSSL's reason for refusing `chain` (leaf first) at security level 2, None if it would load it."""
    for index, cert in enumerate(chain):
        key = cert.public_key()
        bits = key.key_size if isinstance(key, (rsa.RSAPublicKey, dsa.DSAPublicKey)) else None
        small = bits is not None and bits < MIN_RSA_BITS
        if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.key_size < MIN_EC_BITS:
            small = True
        if small:
            return "EE_KEY_TOO_SMALL" if index == 0 else "CA_KEY_TOO_SMALL"
        if cert.issuer != cert.subject and isinstance(cert.signature_hash_algorithm, WEAK_HASHES):
            return "CA_MD_TOO_WEAK"  # OpenSSL's one reason for a weak signature, leaf or not
    return None
