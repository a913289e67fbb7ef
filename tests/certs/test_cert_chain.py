"""rsp.certs.chain: every path found, the short strong one chosen, the others explained, bounds kept."""

from __future__ import annotations

import datetime
import itertools

import pytest
from cert_pki import Issued, cn, ec_key, issue, root, rsa_key
from cert_story import AT, Story
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from rsp.certs import facts
from rsp.certs.chain import (
    MAX_PATH_LENGTH,
    MAX_PATHS,
    MAX_SIGNATURE_CHECKS,
    POLICY_CHROME_SHA1_SUNSET,
    choose_chain,
    path_serving_chain,
    serving_chain,
)
from rsp.errors import CertificateError

UTC = datetime.UTC


def subjects(certificates: tuple[x509.Certificate, ...]) -> list[str]:
    return [c.subject.rfc4514_string() for c in certificates]


def test_nss_case_same_length_picks_the_sha256_path_over_the_sha1_cross_sign(story: Story) -> None:
    # The bundle lists the weak cross-signed intermediate first, as the uploaded bundles did.
    bundle = [story.leaf.certificate, story.i1_cross.certificate, story.i1.certificate]
    choice = choose_chain(story.leaf.certificate, bundle, [story.root_b.certificate, story.root_a.certificate],
                          at=AT)
    assert choice.best is not None
    assert choice.best.certificates == (story.leaf.certificate, story.i1.certificate, story.root_a.certificate)
    assert choice.best.weak_links == () and choice.best.problems == ()
    assert serving_chain(choice) == (story.leaf.certificate, story.i1.certificate)
    assert len(choice.paths) == 2 and choice.paths[0] is choice.best
    weak = choice.paths[1]
    assert weak.certificates == (story.leaf.certificate, story.i1_cross.certificate, story.root_b.certificate)
    assert weak.weak_links == ('SHA-1 signature on "Intermediate 1" (signed by "Old Root B")',)
    assert choice.explanations == (
        'another path of the same length through the SHA-1 cross-signed "Intermediate 1" to "Old Root B" was '
        'rejected: SHA-1 signature on "Intermediate 1" (signed by "Old Root B")',)


def test_nss_case_longer_path_through_a_cross_signed_root_is_rejected(story: Story) -> None:
    bundle = [story.leaf.certificate, story.a_cross.certificate, story.i1_cross.certificate, story.i1.certificate]
    roots = [story.root_a.certificate, story.root_b.certificate]
    choice = choose_chain(story.leaf.certificate, bundle, roots, at=AT)
    assert choice.best is not None
    assert subjects(choice.best.certificates) == ["CN=www.example.test", "CN=Intermediate 1", "CN=Root A"]
    found = sorted(tuple(subjects(p.certificates)) for p in choice.paths)
    assert found == [
        ("CN=www.example.test", "CN=Intermediate 1", "CN=Old Root B"),
        ("CN=www.example.test", "CN=Intermediate 1", "CN=Root A"),
        ("CN=www.example.test", "CN=Intermediate 1", "CN=Root A", "CN=Old Root B"),
    ]
    assert [len(p.certificates) for p in choice.paths] == [3, 3, 4]
    assert ('a longer path through the SHA-1 cross-signed "Root A" to "Old Root B" was rejected: SHA-1 signature '
            'on "Root A" (signed by "Old Root B")') in choice.explanations


def test_choice_does_not_depend_on_bundle_or_root_order(story: Story) -> None:
    pool = [story.leaf.certificate, story.a_cross.certificate, story.i1_cross.certificate, story.i1.certificate]
    roots = [story.root_a.certificate, story.root_b.certificate]
    bests = set()
    for order in itertools.permutations(pool):
        for root_order in (roots, roots[::-1]):
            choice = choose_chain(story.leaf.certificate, list(order), root_order, at=AT)
            assert choice.best is not None
            bests.add(choice.best.certificates)
    assert bests == {(story.leaf.certificate, story.i1.certificate, story.root_a.certificate)}


def test_every_path_weak_means_no_best_and_serving_chain_refuses(story: Story) -> None:
    bundle = [story.leaf.certificate, story.i1_cross.certificate, story.i1.certificate]
    choice = choose_chain(story.leaf.certificate, bundle, [story.root_b.certificate], at=AT)
    assert choice.best is None
    assert len(choice.paths) == 1 and choice.paths[0].weak
    assert choice.explanations == (
        'the path through the SHA-1 cross-signed "Intermediate 1" to "Old Root B" has weak links: SHA-1 signature '
        'on "Intermediate 1" (signed by "Old Root B")',)
    with pytest.raises(CertificateError, match="no usable certificate chain: the path through"):
        serving_chain(choice)
    assert path_serving_chain(choice.paths[0]) == (story.leaf.certificate, story.i1_cross.certificate)


def test_chrome_policy_lets_a_sha1_link_pass_for_a_leaf_expiring_before_2016(story: Story) -> None:
    early = issue("early.example.test", ec_key("early"), issuer=story.i1, ca=False,
                  not_after=datetime.datetime(2015, 12, 31, tzinfo=UTC))
    pool = [story.i1_cross.certificate]
    default = choose_chain(early.certificate, pool, [story.root_b.certificate], at=AT)
    assert default.best is None
    chrome = choose_chain(early.certificate, pool, [story.root_b.certificate], at=AT,
                          policy=POLICY_CHROME_SHA1_SUNSET)
    assert chrome.best is not None and chrome.best.weak_links == ()
    assert chrome.best.warnings == (
        'SHA-1 signature on "Intermediate 1" (leaf expires before 2016-01-01: allowed by Chrome)',)
    # The 2017 leaf under the same policy: the SHA-1 link is weak, and the message says why.
    late = choose_chain(story.leaf.certificate, pool, [story.root_b.certificate], at=AT,
                        policy=POLICY_CHROME_SHA1_SUNSET)
    assert late.best is None
    assert "on or after 2016-01-01 (Chrome's SHA-1 sunset)" in late.paths[0].weak_links[0]


def test_unknown_policy_is_an_error(story: Story) -> None:
    with pytest.raises(CertificateError, match="unknown policy 'strict'"):
        choose_chain(story.leaf.certificate, [], [story.root_a.certificate], at=AT, policy="strict")


def test_md5_link_and_rsa_1024_key_are_weak() -> None:
    root_c = root("Root C", rsa_key("root-c"))
    md5_intermediate = issue("MD5 CA", rsa_key("md5-ca"), issuer=root_c, ca=True, digest="md5")
    leaf = issue("md5.example.test", ec_key("md5-leaf"), issuer=md5_intermediate, ca=False)
    choice = choose_chain(leaf.certificate, [md5_intermediate.certificate], [root_c.certificate], at=AT)
    assert choice.best is None
    assert choice.paths[0].weak_links == ('MD5 signature on "MD5 CA" (signed by "Root C")',)

    small = issue("Small CA", rsa_key("small", 1024), issuer=root_c, ca=True)
    leaf2 = issue("small.example.test", ec_key("small-leaf"), issuer=small, ca=False)
    choice2 = choose_chain(leaf2.certificate, [small.certificate], [root_c.certificate], at=AT)
    assert choice2.best is None
    assert choice2.paths[0].weak_links == ('RSA 1024 key in "Small CA" (under 2048 bits)',)


def test_a_sha1_signed_trust_anchor_is_not_a_weak_link(story: Story) -> None:
    # The cross-signed Root A is trusted as such: its own SHA-1 signature is never checked by a client.
    choice = choose_chain(story.leaf.certificate, [story.i1.certificate], [story.a_cross.certificate], at=AT)
    assert choice.best is not None and choice.best.weak_links == ()
    assert choice.best.anchor == story.a_cross.certificate


def test_signature_not_name_decides_the_parent(story: Story) -> None:
    impostor = issue("Intermediate 1", ec_key("impostor"), issuer=story.root_a, ca=True)
    choice = choose_chain(story.leaf.certificate, [impostor.certificate, story.i1.certificate],
                          [story.root_a.certificate], at=AT)
    assert choice.best is not None and choice.best.intermediates == (story.i1.certificate,)
    assert len(choice.paths) == 1
    alone = choose_chain(story.leaf.certificate, [impostor.certificate], [story.root_a.certificate], at=AT)
    assert alone.best is None and alone.paths == ()
    assert alone.explanations == ('no path to a trusted root: the certificate named "Intermediate 1" does not '
                                  'verify the signature on "www.example.test" (a different key under the same name)',)


def test_missing_intermediate_and_untrusted_root_are_explained(story: Story) -> None:
    missing = choose_chain(story.leaf.certificate, [], [story.root_a.certificate], at=AT)
    assert missing.best is None and missing.paths == ()
    assert missing.explanations == ('no path to a trusted root: no certificate for "Intermediate 1", the issuer of '
                                    '"www.example.test", in the bundle or the roots (a missing intermediate)',)
    untrusted = choose_chain(story.leaf.certificate, [story.i1.certificate, story.root_a.certificate],
                             [story.root_b.certificate], at=AT)
    assert untrusted.explanations == (
        'no path to a trusted root: it ends at "Root A", which is not a trusted root',)


def test_expired_intermediate_loses_to_a_valid_longer_path() -> None:
    root_d = root("Root D", ec_key("root-d"))
    root_e = root("Root E", ec_key("root-e"))
    expired = issue("CA X", ec_key("ca-x"), issuer=root_d, ca=True,
                    not_after=datetime.datetime(2015, 1, 1, tzinfo=UTC))
    bridge = issue("Bridge", ec_key("bridge"), issuer=root_e, ca=True)
    x_by_bridge = issue("CA X", ec_key("ca-x"), issuer=bridge, ca=True)
    leaf = issue("x.example.test", ec_key("x-leaf"), issuer=expired, ca=False)
    pool = [expired.certificate, x_by_bridge.certificate, bridge.certificate]
    choice = choose_chain(leaf.certificate, pool, [root_d.certificate, root_e.certificate], at=AT)
    assert choice.best is not None
    assert subjects(choice.best.certificates) == ["CN=x.example.test", "CN=CA X", "CN=Bridge", "CN=Root E"]
    assert choice.paths[1].problems == ('"CA X" expired on 2015-01-01 00:00:00 UTC',)
    assert choice.explanations == ('a shorter path through the cross-signed "CA X" to "Root D" was rejected: '
                                   '"CA X" expired on '
                                   '2015-01-01 00:00:00 UTC',)
    # Judged before the expiry, the short path wins: `at` is the only clock.
    earlier = choose_chain(leaf.certificate, pool, [root_d.certificate, root_e.certificate],
                           at=datetime.datetime(2014, 6, 1, tzinfo=UTC))
    assert earlier.best is not None and len(earlier.best.certificates) == 3


def test_ties_go_to_the_stronger_signature_then_the_later_expiry() -> None:
    root_f = root("Root F", ec_key("root-f"))
    root_g = root("Root G", ec_key("root-g"))
    by_f = issue("CA Y", ec_key("ca-y"), issuer=root_f, ca=True, digest="sha256")
    by_g = issue("CA Y", ec_key("ca-y"), issuer=root_g, ca=True, digest="sha384")
    leaf = issue("y.example.test", ec_key("y-leaf"), issuer=by_f, ca=False)
    choice = choose_chain(leaf.certificate, [by_f.certificate, by_g.certificate],
                          [root_f.certificate, root_g.certificate], at=AT)
    assert choice.best is not None and choice.best.anchor == root_g.certificate
    assert choice.explanations[0].endswith("its signatures are weaker than the chosen path's")

    soon = issue("CA Y", ec_key("ca-y"), issuer=root_g, ca=True, not_after=datetime.datetime(2020, 1, 1, tzinfo=UTC))
    later = choose_chain(leaf.certificate, [soon.certificate, by_f.certificate],
                         [root_f.certificate, root_g.certificate], at=AT)
    assert later.best is not None and later.best.anchor == root_f.certificate
    assert later.explanations[0].endswith("it stops working on 2020-01-01, the chosen path on 2040-01-01")


def test_a_leaf_that_is_itself_a_trusted_root() -> None:
    self_signed = root("self.example.test", ec_key("self"))
    choice = choose_chain(self_signed.certificate, [self_signed.certificate], [self_signed.certificate], at=AT)
    assert choice.best is not None and choice.best.certificates == (self_signed.certificate,)
    assert serving_chain(choice) == (self_signed.certificate,)


def test_mutual_cross_signs_never_loop() -> None:
    root_h = root("Root H", ec_key("root-h"))
    root_k = root("Root K", ec_key("root-k"))
    h_by_k = issue("Root H", ec_key("root-h"), issuer=root_k, ca=True)
    k_by_h = issue("Root K", ec_key("root-k"), issuer=root_h, ca=True)
    ca = issue("CA Z", ec_key("ca-z"), issuer=root_h, ca=True)
    leaf = issue("z.example.test", ec_key("z-leaf"), issuer=ca, ca=False)
    pool = [h_by_k.certificate, k_by_h.certificate, ca.certificate]
    untrusted = choose_chain(leaf.certificate, pool, [], at=AT)
    assert untrusted.paths == () and untrusted.best is None
    trusted_k = choose_chain(leaf.certificate, pool, [root_k.certificate], at=AT)
    assert trusted_k.best is not None
    assert subjects(trusted_k.best.certificates) == ["CN=z.example.test", "CN=CA Z", "CN=Root H", "CN=Root K"]
    assert len(trusted_k.paths) == 1


def test_depth_is_bounded() -> None:
    top = root("Deep Root", ec_key("deep-root"))
    issuer = top
    pool = []
    for level in range(MAX_PATH_LENGTH):
        issuer = issue(f"Level {level}", ec_key(f"level-{level}"), issuer=issuer, ca=True)
        pool.append(issuer.certificate)
    leaf = issue("deep.example.test", ec_key("deep-leaf"), issuer=issuer, ca=False)
    choice = choose_chain(leaf.certificate, pool, [top.certificate], at=AT)
    assert choice.paths == ()
    assert choice.explanations == (f"no path to a trusted root within {MAX_PATH_LENGTH} certificates",)
    shorter = choose_chain(leaf.certificate, pool, [pool[2]], at=AT)  # Level 2 trusted: 7 certificates
    assert shorter.best is not None and len(shorter.best.certificates) == MAX_PATH_LENGTH - 1


def test_path_count_is_bounded_and_reported() -> None:
    top = root("Wide Root", ec_key("wide-root"))
    twins = [issue("Twin CA", ec_key("twin"), issuer=top, ca=True).certificate for _ in range(MAX_PATHS + 6)]
    leaf = issue("wide.example.test", ec_key("wide-leaf"), issuer=Issued(twins[0], ec_key("twin")), ca=False)
    choice = choose_chain(leaf.certificate, twins, [top.certificate], at=AT)
    assert choice.truncated
    assert len(choice.paths) == MAX_PATHS
    assert choice.best is not None
    assert choice.explanations[-1].startswith("the search stopped at a bound")


def test_aki_mismatch_is_a_hint_not_a_requirement(story: Story) -> None:
    # A CA certificate whose subject key identifier does not match what the leaf's AKI names is still used
    # when its key verifies the signature.
    odd = x509.CertificateBuilder().subject_name(cn("Intermediate 1")).issuer_name(story.root_a.name) \
        .public_key(ec_key("i1").public_key()).serial_number(7) \
        .not_valid_before(datetime.datetime(2010, 1, 1, tzinfo=UTC)) \
        .not_valid_after(datetime.datetime(2040, 1, 1, tzinfo=UTC)) \
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True) \
        .add_extension(x509.SubjectKeyIdentifier(b"\x01" * 20), critical=False) \
        .sign(story.root_a.key, hashes.SHA256())
    choice = choose_chain(story.leaf.certificate, [odd], [story.root_a.certificate], at=AT)
    assert choice.best is not None and choice.best.intermediates == (odd,)


def test_intermediate_that_is_not_a_ca_is_a_problem(story: Story) -> None:
    not_ca = issue("Intermediate 1", ec_key("i1"), issuer=story.root_a, ca=False)
    choice = choose_chain(story.leaf.certificate, [not_ca.certificate], [story.root_a.certificate], at=AT)
    assert choice.best is not None
    assert choice.best.problems == ('"Intermediate 1" is used as an intermediate but is not a CA (basicConstraints)',)


def test_signature_checks_are_bounded_in_search_and_diagnosis(story: Story, monkeypatch: pytest.MonkeyPatch) -> None:
    impostor = ec_key("impostor-pool")
    honest = [issue("Intermediate 1", impostor, issuer=story.root_a, ca=True).certificate
              for _ in range(MAX_SIGNATURE_CHECKS + 20)]
    # Impostors that also forge the key identifier the leaf's AKI names: the hint cannot help any more.
    wanted = story.leaf.certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert wanted.key_identifier is not None
    forged = [issue("Intermediate 1", impostor, issuer=story.root_a, ca=True,
                    subject_key_id=wanted.key_identifier).certificate for _ in range(MAX_SIGNATURE_CHECKS + 20)]
    calls = 0
    real = facts.signature_verifies

    def counting(child: x509.Certificate, parent: x509.Certificate) -> bool:
        nonlocal calls
        calls += 1
        return real(child, parent)

    monkeypatch.setattr(facts, "signature_verifies", counting)
    # The real intermediate comes last; the AKI/SKI hint puts it first among the honest impostors.
    hinted = choose_chain(story.leaf.certificate, [*honest, story.i1.certificate], [story.root_a.certificate], at=AT)
    assert hinted.best is not None and hinted.best.intermediates == (story.i1.certificate,)
    assert calls == MAX_SIGNATURE_CHECKS and hinted.truncated  # every path is still sought, within the bound
    calls = 0
    choice = choose_chain(story.leaf.certificate, [*forged, story.i1.certificate], [story.root_a.certificate],
                          at=AT)
    assert calls == MAX_SIGNATURE_CHECKS
    assert choice.truncated and choice.paths == () and choice.no_path == "search-bound"
    assert choice.explanations[0] == (f"no path to a trusted root found within {MAX_SIGNATURE_CHECKS} signature "
                                      'checks (too many certificates are named "Intermediate 1")')


def test_no_path_kind(story: Story) -> None:
    assert choose_chain(story.leaf.certificate, [], [story.root_a.certificate], at=AT).no_path == \
        "missing-intermediate"
    found = choose_chain(story.leaf.certificate, [story.i1.certificate], [story.root_a.certificate], at=AT)
    assert found.no_path == ""


def test_many_same_named_copies_are_bounded_and_the_short_path_survives() -> None:
    """Five copies (same subject, key and issuer) at each of six levels: 5**6 partial paths. The search stops
    at MAX_VISITS, and the short path through a trusted root is found first, bounds or not."""
    copies = 5
    levels = 6
    keys = [ec_key(f"copies-{level}") for level in range(levels + 1)]
    top = root("Copies Top", keys[levels])
    pool: list[x509.Certificate] = []
    above = top
    for level in range(levels - 1, -1, -1):
        made = [issue(f"Copies {level}", keys[level], issuer=above, ca=True) for _ in range(copies)]
        pool.extend(m.certificate for m in made)
        above = made[0]
    leaf = issue("copies.example.test", ec_key("copies-leaf"), issuer=above, ca=False)
    short_root = root("Short Root", ec_key("short-root"))
    shortcut = issue("Copies 0", keys[0], issuer=short_root, ca=True)
    choice = choose_chain(leaf.certificate, [*pool, shortcut.certificate], [short_root.certificate], at=AT)
    assert choice.truncated
    assert choice.best is not None
    assert choice.best.certificates == (leaf.certificate, shortcut.certificate, short_root.certificate)
    assert "partial paths" in choice.explanations[-1]
    # Without the shortcut and with the top untrusted, nothing is found, and the walk still ends.
    untrusted = choose_chain(leaf.certificate, pool, [short_root.certificate], at=AT)
    assert untrusted.truncated and untrusted.paths == ()
