"""rsp.certs.bundle: PEM bundles and root stores, and the errors that name the file and the block."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cert_pki import pem_of
from cert_story import Story
from cryptography.hazmat.primitives import serialization

from rsp.certs.bundle import SYSTEM_ROOTS_FILE, load_pem_certificates, load_roots, read_certificates
from rsp.errors import CertificateError


def test_blocks_in_file_order_other_blocks_skipped(story: Story) -> None:
    key = story.leaf.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())
    data = b"leading text\n" + pem_of(story.leaf) + key + pem_of(story.i1).replace(b"\n", b"\r\n")
    certificates = load_pem_certificates(data, "site.pem")
    assert certificates == [story.leaf.certificate, story.i1.certificate]


@pytest.mark.parametrize(("data", "message"), [
    (b"", "site.pem: no PEM certificate found (expected -----BEGIN CERTIFICATE-----)"),
    (b"just text", "site.pem: no PEM certificate found (expected -----BEGIN CERTIFICATE-----)"),
    (b"-----BEGIN CERTIFICATE-----\nAAAA\n", "site.pem: PEM block 1 (CERTIFICATE) has no END line"),
    (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END PRIVATE KEY-----\n",
     "site.pem: PEM block 1 begins CERTIFICATE but ends PRIVATE KEY"),
])
def test_unusable_input_is_named(data: bytes, message: str) -> None:
    with pytest.raises(CertificateError) as raised:
        load_pem_certificates(data, "site.pem")
    assert str(raised.value) == message


def test_a_broken_block_is_named_by_number(story: Story) -> None:
    broken = b"-----BEGIN CERTIFICATE-----\nMIIBnotreallyacertificate\n-----END CERTIFICATE-----\n"
    with pytest.raises(CertificateError, match=r"^site.pem: PEM block 2 is not a valid certificate"):
        load_pem_certificates(pem_of(story.leaf) + broken, "site.pem")
    unterminated = pem_of(story.leaf) + b"-----BEGIN CERTIFICATE-----\nAAAA\n" + pem_of(story.i1)
    with pytest.raises(CertificateError, match=r"^site.pem: PEM block 2 \(CERTIFICATE\) has no END line"):
        load_pem_certificates(unterminated, "site.pem")


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(CertificateError, match=r"missing\.pem: cannot read: No such file or directory"):
        read_certificates(str(tmp_path / "missing.pem"))


def test_roots_from_a_file_and_a_hashed_directory(story: Story, tmp_path: Path) -> None:
    roots_file = tmp_path / "roots.pem"
    roots_file.write_bytes(pem_of(story.root_a, story.root_b, story.root_a))
    assert load_roots(str(roots_file)) == [story.root_a.certificate, story.root_b.certificate]

    directory = tmp_path / "certs"
    directory.mkdir()
    (directory / "root-a.pem").write_bytes(pem_of(story.root_a))
    (directory / "root-b.pem").write_bytes(pem_of(story.root_b))
    os.symlink("root-a.pem", directory / "1a2b3c4d.0")  # the c_rehash link: the same root again
    (directory / "README").write_text("not a certificate\n")
    (directory / "java").mkdir()
    assert sorted(c.subject.rfc4514_string() for c in load_roots(str(directory))) == ["CN=Old Root B", "CN=Root A"]

    (directory / "broken.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(CertificateError, match=r"broken\.pem: PEM block 1 is not a valid certificate"):
        load_roots(str(directory))


def test_empty_roots_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CertificateError, match="no PEM certificate in this directory"):
        load_roots(str(tmp_path))


def test_none_means_the_system_store() -> None:
    roots = load_roots(None)
    assert len(roots) > 50  # Debian's ca-certificates ships ~140 roots
    assert roots == load_roots(SYSTEM_ROOTS_FILE)
    assert len(load_roots(os.path.dirname(SYSTEM_ROOTS_FILE))) == len(roots)
