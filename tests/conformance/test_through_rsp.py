"""The whole conformance corpus through one running rsp in HTTP mode (rules: through_rsp.py).

Every desync-guardian case (each tier), every llhttp request fixture and every HTTP Garden payload is
replayed on its own client connection; a recording backend re-parses what rsp forwarded. The test asserts
zero hard failures; run with `-s` to see the per-corpus pass / soft / fail table.
`python -m tests.conformance.through_rsp` runs the same and rewrites tests/conformance/RESULTS.md.

The classification itself is tested first, on made-up verdicts, so that each rule is shown to fail a case.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from conformance import corpora, harness, through_rsp
from conformance.replay import Verdict, replay
from conformance.through_rsp import EITHER, FORWARD, NOT_APPLICABLE, REFUSE, Case, Shards, classify


def verdict(*statuses: int, forwarded: int = 0, problems: tuple[str, ...] = (), closed: bool = True) -> Verdict:
    answered = sum(1 for status in statuses if status >= 200)
    return Verdict(not problems, problems, forwarded, answered, statuses, (), closed)


GET = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"


# -- the rules ------------------------------------------------------------------------------------------


def test_a_refused_case_passes_and_a_forwarded_one_fails() -> None:
    severe = Case("desync-guardian", "made-up: TE+CL", GET, REFUSE, 0, "Severe")
    assert classify(severe, verdict(400)).verdict == "pass"
    forwarded = classify(severe, verdict(200, forwarded=1))
    assert (forwarded.verdict, forwarded.detail) == (
        "fail",
        "must be refused, at most 0 forwarded (forwarded 1, answered 200, closed)",
    )
    # A 2xx without anything forwarded is no refusal either (a proxy that answers for the backend).
    assert classify(severe, verdict(200)).verdict == "fail"


def test_llhttp_error_cases_may_forward_the_messages_before_the_error() -> None:
    pipelined = Case("llhttp/request", "made-up: second message broken", GET + b"GET / HTTP/9\r\n\r\n", REFUSE, 1)
    assert classify(pipelined, verdict(200, 400, forwarded=1)).verdict == "pass"
    assert classify(pipelined, verdict(200, 200, forwarded=2)).verdict == "fail"


def test_llhttp_cases_rsp_accepts_by_design_are_soft() -> None:
    [ident] = [ident for ident in harness.ACCEPTED if "Invalid method" in ident]
    case = Case("llhttp/request", ident, b"MKCOLA / HTTP/1.1\r\nHost: a\r\n\r\n", REFUSE, 0)
    outcome = classify(case, verdict(200, forwarded=1))
    assert outcome.verdict == "soft" and outcome.detail.startswith("forwarded by design: any token is a method")


def test_an_unsafe_exchange_fails_whatever_the_case_expects() -> None:
    problem = "backend connection 0 received invalid HTTP: Transfer-Encoding and Content-Length together"
    for expect in (REFUSE, FORWARD, EITHER, NOT_APPLICABLE):
        case = Case("http-garden", "made-up", GET, expect, 1)
        outcome = classify(case, verdict(200, forwarded=1, problems=(problem,)))
        assert outcome.verdict == "fail" and outcome.detail.startswith(problem)


def test_a_valid_case_must_be_forwarded_and_answered() -> None:
    case = Case("desync-guardian", "made-up: plain GET", GET, FORWARD, 1, "Compliant")
    assert classify(case, verdict(200, forwarded=1, closed=False)).verdict == "pass"
    refused = classify(case, verdict(400))
    assert (refused.verdict, refused.detail) == ("fail", "refused a valid case (forwarded 0, answered 400, closed)")
    # A fixture whose body is cut completes no message, but refusing its head is still a refusal.
    cut_body = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\n"
    cut = Case("llhttp/request", "made-up: cut body", cut_body, FORWARD, 0)
    assert classify(cut, verdict(closed=False)).verdict == "pass"
    assert classify(cut, verdict(400)).verdict == "fail"
    silent = classify(case, verdict(closed=False))
    assert (silent.verdict, silent.detail) == ("fail", "expected 1 forwarded and answered (forwarded 0, answered none)")


def test_a_refusal_is_soft_only_when_documented_with_the_same_reason_and_status() -> None:
    ident = "rfc-compliant.yaml: Compliant URL"
    [case] = [c for c in through_rsp.desync_cases() if c.ident == ident]
    assert harness.STRICTER[ident] == "invalid method or request-target"
    soft = classify(case, verdict(400))
    assert soft.verdict == "soft" and soft.detail.startswith("refused by design (400 invalid method or request-target")
    # The parser refuses it with 400: any other status is not the documented refusal.
    assert classify(case, verdict(501)).verdict == "fail"
    # The same bytes under a name the tables do not list: an undocumented refusal.
    assert classify(Case(case.corpus, "made-up", case.raw, FORWARD, 1), verdict(400)).verdict == "fail"


def test_a_refusal_listed_for_the_proxy_is_soft_with_its_status(monkeypatch: pytest.MonkeyPatch) -> None:
    case = Case("llhttp/request", "made-up: CONNECT", b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", FORWARD, 1)
    assert classify(case, verdict(405)).verdict == "fail"
    monkeypatch.setitem(through_rsp.THROUGH_RSP_STRICTER, case.ident, (405, "a reverse proxy opens no tunnels"))
    soft = classify(case, verdict(405))
    assert (soft.verdict, soft.detail) == (
        "soft",
        "refused by design (405: a reverse proxy opens no tunnels) (forwarded 0, answered 405, closed)",
    )
    assert classify(case, verdict(400)).verdict == "fail"


def test_prose_payloads_are_not_applicable() -> None:
    assert classify(Case("http-garden", "made-up", None, NOT_APPLICABLE, 0), None).verdict == "n/a"


def test_every_case_has_an_expectation() -> None:
    cases = through_rsp.all_cases()
    by_corpus = {corpus: [c for c in cases if c.corpus == corpus] for corpus in dict.fromkeys(c.corpus for c in cases)}
    assert {corpus: len(items) for corpus, items in by_corpus.items()} == {
        "desync-guardian": 158,
        "llhttp/request": 166,
        "http-garden": 79,
    }
    severe = [c for c in by_corpus["desync-guardian"] if c.label == "Severe"]
    assert len(severe) == 58 and all(c.expect == REFUSE and c.allowed == 0 for c in severe)
    errors = {c.ident for c in corpora.load_llhttp("request") if c.error_code is not None and not c.lenient}
    assert len(errors) == 55 and all(c.expect == REFUSE for c in by_corpus["llhttp/request"] if c.ident in errors)
    assert sum(1 for c in cases if c.raw is None) == 3


# -- the corpus through rsp -----------------------------------------------------------------------------


@pytest.fixture
def shards() -> Iterator[Shards]:
    with Shards() as started:
        yield started


def test_the_whole_corpus_through_rsp_has_no_hard_failure(
    shards: Shards, run_rsp: Callable[..., Any], free_port: Callable[..., int]
) -> None:
    ports = [free_port() for _ in shards.backends]
    proxy = run_rsp(shards.config(ports), listeners=len(ports))
    assert sorted(proxy.ports) == sorted(ports)
    cases = through_rsp.all_cases()
    outcomes = through_rsp.replay_all(cases, shards, ports)
    table = through_rsp.summary(outcomes)
    print("\n" + table)

    assert [o.case.ident for o in outcomes] == [c.ident for c in cases]
    failures = [f"{o.case.ident}: {o.detail}" for o in outcomes if o.verdict == "fail"]
    assert failures == [], "hard failures:\n" + "\n".join(failures)
    assert all(o.verdict == "pass" for o in outcomes if o.case.label == "Severe")
    # Every documented deliberate difference that applies to requests is still exercised.
    idents = {c.ident for c in cases}
    soft = {o.case.ident for o in outcomes if o.verdict == "soft"}
    assert {ident for ident in harness.STRICTER if ident in idents} <= soft
    assert set(harness.ACCEPTED) <= soft
    assert set(through_rsp.THROUGH_RSP_STRICTER) <= soft
    # rsp is still serving after all of it.
    clean = replay("127.0.0.1", ports[0], GET, shards.backends[0], quiet=through_rsp.QUIET)
    assert clean.ok and clean.statuses == (200,), clean
