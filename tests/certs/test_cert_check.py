"""rsp.certs.check: every verdict of `rsp cert check`, asserted on hierarchies built here."""

from __future__ import annotations

import datetime

from cert_pki import ec_key, issue, root, rsa_key
from cert_story import AT, HOST, Story
from cryptography import x509

from rsp.certs.chain import POLICY_CHROME_SHA1_SUNSET
from rsp.certs.check import ERROR, NOTE, WARNING, CheckReport, check_bundle, find_leaf

UTC = datetime.UTC


def codes(report: CheckReport, severity: str | None = None) -> list[str]:
    return [f.code for f in report.findings if severity is None or f.severity == severity]


def messages(report: CheckReport, code: str) -> list[str]:
    return [f.message for f in report.findings if f.code == code]


def good(story: Story) -> list[x509.Certificate]:
    return [story.leaf.certificate, story.i1.certificate]


def test_a_good_bundle(story: Story) -> None:
    report = check_bundle(good(story), [story.root_a.certificate], at=AT, host=HOST, source="site.pem")
    assert report.findings == ()
    assert report.exit_status == 0
    assert [(c.index, c.role, c.subject, c.signature, c.signed_by, c.validity) for c in report.certificates] == [
        (1, "leaf", HOST, "ok", "#2", "ok"),
        (2, "intermediate", "Intermediate 1", "ok", 'root "Root A"', "ok"),
    ]
    first = report.certificates[0]
    assert (first.key_type, first.key_bits, first.signature_algorithm) == ("EC P-256", 256, "ecdsa-with-SHA256")
    assert report.served is not None and report.served is report.choice.best


def test_the_nss_bundle_passes_with_the_weak_cross_sign_flagged_as_unused(story: Story) -> None:
    bundle = [story.leaf.certificate, story.i1_cross.certificate, story.i1.certificate]
    report = check_bundle(bundle, [story.root_a.certificate, story.root_b.certificate], at=AT, host=HOST)
    assert report.exit_status == 0
    assert codes(report) == ["unused", "other-path"]
    assert messages(report, "unused")[0].startswith('#2 "Intermediate 1" is on another path, not the chosen one')
    assert "SHA-1 cross-signed" in messages(report, "other-path")[0]
    assert [c.role for c in report.certificates] == ["leaf", "unused", "intermediate"]
    assert report.certificates[1].signature_algorithm == "sha1WithRSAEncryption"
    assert report.certificates[1].signed_by == 'root "Old Root B"'
    # Both #2 and #3 hold the key that signed the leaf: the one on the chosen path is named.
    assert report.certificates[0].signed_by == "#3"


def test_wrong_order(story: Story) -> None:
    report = check_bundle([story.i1.certificate, story.leaf.certificate], [story.root_a.certificate], at=AT)
    assert codes(report) == ["wrong-order"]
    assert messages(report, "wrong-order") == [
        "the chain must be sent leaf first, then each issuer in turn (the server's certificate is #2): that is "
        '#2, #1 of this file, in that order ("www.example.test" <- "Intermediate 1" <- "Root A")']
    assert report.exit_status == 1
    assert find_leaf([story.i1.certificate, story.leaf.certificate]) == 1


def test_missing_intermediate(story: Story) -> None:
    report = check_bundle([story.leaf.certificate], [story.root_a.certificate], at=AT)
    assert codes(report, ERROR) == ["missing-intermediate"]
    assert report.served is None and report.exit_status == 1
    assert report.certificates[0].signature == "issuer not found"


def test_wrong_order_is_reported_even_without_a_path(story: Story) -> None:
    report = check_bundle([story.i1.certificate, story.leaf.certificate], [story.root_b.certificate], at=AT)
    assert codes(report) == ["missing-intermediate", "wrong-order"]
    assert messages(report, "wrong-order") == ['the server\'s certificate "www.example.test" is #2; it must come first']


def test_untrusted_root(story: Story) -> None:
    report = check_bundle([*good(story), story.root_a.certificate], [story.root_b.certificate], at=AT)
    assert codes(report, ERROR) == ["untrusted-root"]


def test_root_in_bundle_is_a_note(story: Story) -> None:
    report = check_bundle([*good(story), story.root_a.certificate], [story.root_a.certificate], at=AT)
    assert codes(report) == ["root-in-bundle"] and report.exit_status == 0
    assert report.findings[0].severity == NOTE and report.findings[0].certificate == 3
    assert report.certificates[2].role == "root" and report.certificates[2].signature == "self-signed"


def test_expired_and_not_yet_valid_links(story: Story) -> None:
    expired = check_bundle(good(story), [story.root_a.certificate], at=datetime.datetime(2017, 6, 1, tzinfo=UTC))
    assert codes(expired) == ["expired"]
    assert messages(expired, "expired") == ['#1 "www.example.test" expired on 2017-03-01']
    assert expired.certificates[0].validity == "expired"
    early = check_bundle(good(story), [story.root_a.certificate], at=datetime.datetime(2015, 1, 1, tzinfo=UTC))
    assert codes(early) == ["not-yet-valid"]
    assert early.findings[0].certificate == 1


def test_expires_soon_is_a_warning(story: Story) -> None:
    report = check_bundle(good(story), [story.root_a.certificate], at=datetime.datetime(2017, 2, 15, tzinfo=UTC))
    assert [(f.severity, f.code) for f in report.findings] == [(WARNING, "expires-soon")]
    assert report.exit_status == 0


def test_name_mismatch_and_wildcard(story: Story) -> None:
    roots = [story.root_a.certificate]
    assert check_bundle(good(story), roots, at=AT, host="api.example.test").findings == ()  # *.example.test
    report = check_bundle(good(story), roots, at=AT, host="a.b.example.test")
    assert codes(report) == ["name-mismatch"]
    assert messages(report, "name-mismatch") == [
        "a.b.example.test is not among the certificate's names: www.example.test, *.example.test"]


def test_common_name_only_certificate_warns(story: Story) -> None:
    leaf = issue("legacy.example.test", ec_key("legacy"), issuer=story.i1, ca=False)
    report = check_bundle([leaf.certificate, story.i1.certificate], [story.root_a.certificate], at=AT,
                          host="legacy.example.test")
    assert codes(report) == ["cn-only"]


def test_weak_signature_when_no_path_avoids_it(story: Story) -> None:
    bundle = [story.leaf.certificate, story.i1_cross.certificate]
    report = check_bundle(bundle, [story.root_b.certificate], at=AT)
    assert codes(report, ERROR) == ["weak-signature"]
    assert messages(report, "weak-signature") == ['#2 "Intermediate 1" is signed with SHA-1 and no path avoids it']
    assert report.choice.best is None and report.served is not None


def test_md5_and_rsa_1024(story: Story) -> None:
    root_m = root("Root M", rsa_key("root-m"))
    md5_ca = issue("MD5 CA", rsa_key("md5-ca-check"), issuer=root_m, ca=True, digest="md5")
    leaf = issue("m.example.test", ec_key("m-leaf"), issuer=md5_ca, ca=False)
    report = check_bundle([leaf.certificate, md5_ca.certificate], [root_m.certificate], at=AT)
    assert messages(report, "weak-signature") == ['#2 "MD5 CA" is signed with MD5 and no path avoids it']
    assert report.certificates[1].signature_algorithm == "md5WithRSAEncryption"

    small_leaf = issue("s.example.test", rsa_key("s-leaf", 1024), issuer=story.i1, ca=False)
    small = check_bundle([small_leaf.certificate, story.i1.certificate], [story.root_a.certificate], at=AT)
    assert messages(small, "weak-key") == ['#1 "s.example.test" has a RSA 1024 key (under 2048 bits)']
    assert (small.certificates[0].key_type, small.certificates[0].key_bits) == ("RSA", 1024)


def test_chrome_sha1_sunset_error_and_warning(story: Story) -> None:
    roots = [story.root_b.certificate]
    late = check_bundle([story.leaf.certificate, story.i1_cross.certificate], roots, at=AT,
                        policy=POLICY_CHROME_SHA1_SUNSET)
    assert [(f.severity, f.code) for f in late.findings if f.code == "sha1-sunset"] == [(ERROR, "sha1-sunset")]
    assert "expires 2017-03-01, on or after 2016-01-01: Chrome marks this chain insecure" in late.findings[0].message
    assert late.exit_status == 1

    early_leaf = issue("early.example.test", ec_key("early-check"), issuer=story.i1, ca=False,
                       not_after=datetime.datetime(2015, 12, 31, tzinfo=UTC))
    early = check_bundle([early_leaf.certificate, story.i1_cross.certificate], roots, at=AT,
                         policy=POLICY_CHROME_SHA1_SUNSET)
    assert [(f.severity, f.code) for f in early.findings] == [(WARNING, "sha1-sunset")]
    assert early.exit_status == 0


def test_bad_signature_under_a_known_name(story: Story) -> None:
    impostor = issue("Intermediate 1", ec_key("impostor-check"), issuer=story.root_a, ca=True)
    report = check_bundle([story.leaf.certificate, impostor.certificate], [story.root_a.certificate], at=AT)
    assert codes(report, ERROR) == ["bad-signature"]
    assert report.certificates[0].signature == "bad"


def test_intermediate_that_is_not_a_ca(story: Story) -> None:
    not_ca = issue("Intermediate 1", ec_key("i1"), issuer=story.root_a, ca=False)
    report = check_bundle([story.leaf.certificate, not_ca.certificate], [story.root_a.certificate], at=AT)
    assert codes(report) == ["ca-constraints"]


def test_unrelated_certificate_is_unused(story: Story) -> None:
    stray = root("Stray", ec_key("stray"))
    report = check_bundle([*good(story), stray.certificate], [story.root_a.certificate], at=AT)
    assert codes(report) == ["unused"]
    assert messages(report, "unused") == ['#3 "Stray" is on no path to a trusted root: sent for nothing']
