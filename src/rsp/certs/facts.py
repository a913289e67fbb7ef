"""Facts about one certificate, or one issuer-subject link: names, key, signature, strength, verification.

Signatures are verified with the issuer's public key over the to-be-signed bytes, with the hash and padding
the certificate names (RFC 5280 §4.1.1.2-3). `cryptography`'s `verify_directly_issued_by` would be shorter,
but it refuses SHA-1 and MD5 signatures, and those are exactly the links this checker must find and name.
"""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.x509.oid import NameOID

# RSA keys shorter than this are weak: NIST SP 800-131A disallowed 1024-bit RSA after 2013, and the
# CA/Browser Forum Baseline Requirements §6.1.5 require 2048 bits.
MIN_RSA_BITS = 2048

# Signature hashes that make a link weak: MD5 (collisions forged a CA in 2008) and SHA-1 (sunset by the
# browsers in 2015-2017, collision shown in 2017).
WEAK_HASHES = frozenset({"md5", "sha1"})

# How strong a link's signature is, to break ties between equally short paths (higher is stronger).
# EdDSA signatures carry no separate hash: they rank with the SHA-512 family.
HASH_STRENGTH = {"md5": 0, "sha1": 1, "sha224": 2, "sha256": 3, "sha384": 4, "sha512": 5}
EDDSA_STRENGTH = 5
UNKNOWN_STRENGTH = 0


def display_name(name: x509.Name) -> str:
    """The common name if there is one (what people recognise), else the RFC 4514 string."""
    common = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if common:
        value = common[0].value
        return value if isinstance(value, str) else value.decode("utf-8", "replace")
    return name.rfc4514_string() or "(empty name)"


def subject_of(certificate: x509.Certificate) -> str:
    return display_name(certificate.subject)


def issuer_of(certificate: x509.Certificate) -> str:
    return display_name(certificate.issuer)


def fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 of the DER encoding, hex: how `openssl x509 -fingerprint -sha256` names a certificate."""
    return certificate.fingerprint(hashes.SHA256()).hex()


def public_key_der(certificate: x509.Certificate) -> bytes:
    """The SubjectPublicKeyInfo bytes: two certificates with these equal hold the same key."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def same_entity(a: x509.Certificate, b: x509.Certificate) -> bool:
    """Same subject and same key: the same CA, whoever signed each (a cross-signed pair, a re-issued root)."""
    return a.subject == b.subject and public_key_der(a) == public_key_der(b)


def key_description(certificate: x509.Certificate) -> tuple[str, int]:
    """('RSA', 2048), ('EC P-256', 256), ('Ed25519', 256), ... : the key type and size in bits."""
    key = certificate.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        curve = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}.get(key.curve.name, key.curve.name)
        return f"EC {curve}", key.curve.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size
    return type(key).__name__, 0


def signature_hash_name(certificate: x509.Certificate) -> str | None:
    """'sha256', 'sha1', 'md5', ...; None for EdDSA (no separate hash) or an algorithm cryptography lacks."""
    try:
        algorithm = certificate.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return None
    return algorithm.name if algorithm is not None else None


def signature_description(certificate: x509.Certificate) -> str:
    """The signature algorithm's name as RFC 4055/5758 spell it: sha256WithRSAEncryption, ecdsa-with-SHA256."""
    oid = certificate.signature_algorithm_oid
    return oid._name if oid._name != "Unknown OID" else oid.dotted_string


def signature_strength(certificate: x509.Certificate) -> int:
    name = signature_hash_name(certificate)
    if name is None:
        key_oid = certificate.signature_algorithm_oid.dotted_string
        # 1.3.101.112 Ed25519, 1.3.101.113 Ed448 (RFC 8410 §3).
        return EDDSA_STRENGTH if key_oid in ("1.3.101.112", "1.3.101.113") else UNKNOWN_STRENGTH
    return HASH_STRENGTH.get(name, UNKNOWN_STRENGTH)


def weak_signature(certificate: x509.Certificate) -> str | None:
    """'SHA-1' or 'MD5' when the certificate's own signature uses a weak hash, else None."""
    name = signature_hash_name(certificate)
    if name in WEAK_HASHES:
        return "SHA-1" if name == "sha1" else "MD5"
    return None


def weak_key(certificate: x509.Certificate) -> str | None:
    """'RSA 1024' when the certificate holds an RSA key under MIN_RSA_BITS, else None."""
    kind, bits = key_description(certificate)
    if kind == "RSA" and bits < MIN_RSA_BITS:
        return f"RSA {bits}"
    return None


def signature_verifies(child: x509.Certificate, parent: x509.Certificate) -> bool:
    """True when `parent`'s key verifies `child`'s signature (any hash, MD5 and SHA-1 included)."""
    key = parent.public_key()
    data = child.tbs_certificate_bytes
    signature = child.signature
    try:
        algorithm = child.signature_hash_algorithm
        if isinstance(key, rsa.RSAPublicKey):
            if algorithm is None:
                return False
            parameters = child.signature_algorithm_parameters
            # cryptography gives no parameters for md5WithRSAEncryption; PKCS#1 v1.5 is what that OID means.
            pad = parameters if isinstance(parameters, padding.PSS | padding.PKCS1v15) else padding.PKCS1v15()
            key.verify(signature, data, pad, algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            if algorithm is None:
                return False
            key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(signature, data)
        elif isinstance(key, dsa.DSAPublicKey):
            if algorithm is None:
                return False
            key.verify(signature, data, algorithm)
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
        return False
    return True


def is_ca(certificate: x509.Certificate) -> bool:
    """basicConstraints cA=TRUE (RFC 5280 §4.2.1.9). A v1 certificate without extensions is not a CA here."""
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    return constraints.ca


def path_length_limit(certificate: x509.Certificate) -> int | None:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length
    except x509.ExtensionNotFound:
        return None


def may_sign_certificates(certificate: x509.Certificate) -> bool:
    """keyUsage allows keyCertSign, or there is no keyUsage (RFC 5280 §4.2.1.3)."""
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return usage.key_cert_sign


def is_self_signed(certificate: x509.Certificate) -> bool:
    return certificate.subject == certificate.issuer and signature_verifies(certificate, certificate)


def subject_key_id(certificate: x509.Certificate) -> bytes | None:
    try:
        return certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return None


def authority_key_id(certificate: x509.Certificate) -> bytes | None:
    try:
        return certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    except x509.ExtensionNotFound:
        return None


def not_before(certificate: x509.Certificate) -> datetime:
    return certificate.not_valid_before_utc


def not_after(certificate: x509.Certificate) -> datetime:
    return certificate.not_valid_after_utc


def validity_problem(certificate: x509.Certificate, at: datetime) -> str | None:
    """'expired on ...' or 'not valid before ...' at `at` (an aware datetime; naive means UTC), else None."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    if at > not_after(certificate):
        return f"expired on {not_after(certificate):%Y-%m-%d %H:%M:%S} UTC"
    if at < not_before(certificate):
        return f"not valid before {not_before(certificate):%Y-%m-%d %H:%M:%S} UTC"
    return None
