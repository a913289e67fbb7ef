"""rsp.certs.facts: signature checks for every algorithm a bundle may hold, key and signature descriptions."""

from __future__ import annotations

import datetime

import pytest
from cert_pki import cn, ec_key, issue, root, rsa_key
from cert_story import Story
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed448, ed25519, padding

from rsp.certs import facts

UTC = datetime.UTC
Signer = ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey


def signed(issuer_key: object, digest: hashes.HashAlgorithm | None, pss: bool = False) -> x509.Certificate:
    builder = (x509.CertificateBuilder().subject_name(cn("child")).issuer_name(cn("parent"))
               .public_key(ec_key("child").public_key()).serial_number(5)
               .not_valid_before(datetime.datetime(2020, 1, 1, tzinfo=UTC))
               .not_valid_after(datetime.datetime(2030, 1, 1, tzinfo=UTC)))
    if pss:
        return builder.sign(issuer_key, digest,  # type: ignore[arg-type]
                            rsa_padding=padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                                    salt_length=padding.PSS.DIGEST_LENGTH))
    return builder.sign(issuer_key, digest)  # type: ignore[arg-type]


def parent_of(key: object) -> x509.Certificate:
    return (x509.CertificateBuilder().subject_name(cn("parent")).issuer_name(cn("parent"))
            .public_key(key.public_key()).serial_number(1)  # type: ignore[attr-defined]
            .not_valid_before(datetime.datetime(2020, 1, 1, tzinfo=UTC))
            .not_valid_after(datetime.datetime(2030, 1, 1, tzinfo=UTC))
            .sign(key, None if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey)  # type: ignore[arg-type]
                  else hashes.SHA256()))


@pytest.mark.parametrize("kind", ["rsa-pkcs1", "rsa-pss", "ecdsa", "ed25519", "ed448"])
def test_every_algorithm_verifies_and_a_wrong_key_does_not(kind: str) -> None:
    keys: dict[str, tuple[object, object]] = {
        "rsa-pkcs1": (rsa_key("facts-rsa"), rsa_key("facts-rsa-other")),
        "rsa-pss": (rsa_key("facts-rsa"), rsa_key("facts-rsa-other")),
        "ecdsa": (ec_key("facts-ec"), ec_key("facts-ec-other")),
        "ed25519": (ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()),
        "ed448": (ed448.Ed448PrivateKey.generate(), ed448.Ed448PrivateKey.generate()),
    }
    key, other = keys[kind]
    digest = None if kind.startswith("ed") else hashes.SHA256()
    child = signed(key, digest, pss=kind == "rsa-pss")
    assert facts.signature_verifies(child, parent_of(key))
    assert not facts.signature_verifies(child, parent_of(other))
    if kind.startswith("ed"):
        assert facts.signature_strength(child) == facts.EDDSA_STRENGTH
        assert facts.signature_hash_name(child) is None
    else:
        assert facts.signature_strength(child) == facts.HASH_STRENGTH["sha256"]
    if kind == "rsa-pss":
        assert facts.signature_description(child) == "rsassaPss (sha256)"


def test_sha1_and_md5_signatures_verify_and_are_weak(story: Story) -> None:
    assert facts.signature_verifies(story.i1_cross.certificate, story.root_b.certificate)
    assert facts.weak_signature(story.i1_cross.certificate) == "SHA-1"
    assert facts.signature_description(story.i1_cross.certificate) == "sha1WithRSAEncryption"
    root_m = root("Root MD5", rsa_key("facts-md5-root"))
    md5 = issue("MD5 child", ec_key("facts-md5"), issuer=root_m, ca=False, digest="md5")
    assert facts.signature_verifies(md5.certificate, root_m.certificate)
    assert facts.weak_signature(md5.certificate) == "MD5"
    assert not facts.signature_verifies(md5.certificate, story.root_b.certificate)


def test_key_descriptions(story: Story) -> None:
    assert facts.key_description(story.root_b.certificate) == ("RSA", 2048)
    assert facts.key_description(story.root_a.certificate) == ("EC P-256", 256)
    ed = ed25519.Ed25519PrivateKey.generate()
    assert facts.key_description(parent_of(ed)) == ("Ed25519", 256)
    small = issue("small", rsa_key("facts-small", 1024), issuer=story.root_a, ca=False)
    assert facts.weak_key(small.certificate) == "RSA 1024"
    assert facts.weak_key(story.root_b.certificate) is None


def test_same_entity_is_subject_and_key(story: Story) -> None:
    assert facts.same_entity(story.i1.certificate, story.i1_cross.certificate)
    assert not facts.same_entity(story.i1.certificate, story.root_a.certificate)
