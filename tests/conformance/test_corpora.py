"""The three conformance corpora, loaded and run through rsp.http1's parsers (see harness.py for rules).

Run with `-s` to see the per-corpus summary table; the test asserts zero hard failures. The first tests
check the vendored copy itself: every file present and unchanged, and the counts its README states.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from conformance import corpora, harness

# What tests/conformance/corpora/README.md states, corpus -> (fixture files, cases the loaders yield).
README_COUNTS = {
    "http-desync-guardian": (10, 158),
    "llhttp/request": (13, 166),
    "llhttp/response": (9, 85),
    "http-garden": (1, 79),
}


def test_the_vendored_corpora_are_complete_and_unchanged() -> None:
    assert corpora.manifest_problems(corpora.CORPUS_DIR) == []
    corpora.verify_corpora()


def test_the_corpora_readme_states_the_counts_the_loaders_find() -> None:
    readme = (corpora.CORPUS_DIR / "README.md").read_text(encoding="utf-8")
    stated = {
        name: (int(files), int(cases))
        for name, files, cases in re.findall(r"(?m)^\| `([\w/-]+)/` \| (\d+) \| (\d+) \|", readme)
    }
    assert stated == README_COUNTS
    files = {
        "http-desync-guardian": len(list(corpora.DESYNC_DIR.glob("*.yaml"))),
        "llhttp/request": len(list((corpora.LLHTTP_DIR / "request").glob("*.md"))),
        "llhttp/response": len(list((corpora.LLHTTP_DIR / "response").glob("*.md"))),
        "http-garden": int(corpora.TROPHIES.is_file()),
    }
    cases = {
        "http-desync-guardian": len(corpora.load_desync_guardian()),
        "llhttp/request": len(corpora.load_llhttp("request")),
        "llhttp/response": len(corpora.load_llhttp("response")),
        "http-garden": len(corpora.load_trophies()),
    }
    assert {name: (files[name], cases[name]) for name in files} == README_COUNTS


@pytest.fixture
def corpus_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "corpora"
    shutil.copytree(corpora.CORPUS_DIR, copy)
    return copy


def test_a_copy_of_the_corpora_passes_the_check(corpus_copy: Path) -> None:
    assert corpora.manifest_problems(corpus_copy) == []
    corpora.check_corpora(corpus_copy)


def test_a_missing_corpus_file_fails_the_check_by_name(corpus_copy: Path) -> None:
    (corpus_copy / "http-desync-guardian" / "severe.yaml").unlink()
    with pytest.raises(corpora.CorpusError, match=r"http-desync-guardian/severe\.yaml is missing"):
        corpora.check_corpora(corpus_copy)


def test_a_truncated_corpus_file_fails_the_check(corpus_copy: Path) -> None:
    trophies = corpus_copy / "http-garden" / "TROPHIES.md"
    trophies.write_bytes(trophies.read_bytes()[:1000])
    assert corpora.manifest_problems(corpus_copy) == [
        "http-garden/TROPHIES.md differs from the copy recorded in SHA256SUMS (truncated or edited?)"
    ]


def test_a_missing_folder_or_manifest_fails_the_check(corpus_copy: Path) -> None:
    shutil.rmtree(corpus_copy / "llhttp")
    problems = corpora.manifest_problems(corpus_copy)
    assert len(problems) == 22 and all(p.startswith("llhttp/") and p.endswith(" is missing") for p in problems)
    (corpus_copy / "SHA256SUMS").unlink()
    with pytest.raises(corpora.CorpusError, match="SHA256SUMS is missing"):
        corpora.check_corpora(corpus_copy)


def test_an_unlisted_fixture_file_fails_the_check(corpus_copy: Path) -> None:
    (corpus_copy / "llhttp" / "request" / "extra.md").write_text("# extra\n", encoding="utf-8")
    assert corpora.manifest_problems(corpus_copy) == ["llhttp/request/extra.md is not listed in SHA256SUMS"]

def test_desync_guardian_loads_158_cases_with_their_tiers() -> None:
    cases = corpora.load_desync_guardian()
    assert len(cases) == 158
    tiers = {tier: sum(1 for case in cases if case.tier == tier) for tier in corpora.TIERS}
    assert tiers == {"Compliant": 28, "Acceptable": 15, "Ambiguous": 57, "Severe": 58}
    [case] = [c for c in cases if c.name == "Multiple Content-Length"]
    assert case.raw == (
        b"POST /foo/bar HTTP/1.1\r\nHost: example.com\r\nContent-Length: 1000\r\nContent-Length: 100\r\n\r\n"
        + b"x" * 1000
    )
    [chunked] = [c for c in cases if c.name == "Valid Transfer-Encoding (chunked)"]
    assert chunked.raw.endswith(b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    [http09] = [c for c in cases if c.name == "Empty version, which means HTTP/0.9"]
    assert http09.raw.startswith(b"GET /foo/bar\r\n")


def test_llhttp_normalisation_is_md_test_ts() -> None:
    text = "GET /url HTTP/1.1\nHeader1: \\f\\x41\\101\n  a\\\nb\n\n\n"
    assert corpora.normalise_llhttp(text) == b"GET /url HTTP/1.1\r\nHeader1: \x0cAA\r\n  ab\r\n\r\n"
    assert corpora.normalise_llhttp("X: \\xff\n") == "X: \xff".encode()  # UTF-8, as the span lengths show


def test_llhttp_fixtures_load_with_what_llhttp_logged() -> None:
    requests = corpora.load_llhttp("request")
    responses = corpora.load_llhttp("response")
    assert (len(requests), len(responses)) == (166, 85)
    [pipelined] = [c for c in requests if c.ident == "request/pipelining.md: Should parse multiple events"]
    assert [(m.method, m.url, m.body, m.complete) for m in pipelined.messages] == [
        ("POST", "/aaa", "AAA", True),
        ("PUT", "/bbb", "BBBB", True),
        ("PATCH", "/ccc", "CCCC", False),
    ]
    [duplicate] = [c for c in requests if c.title == "Error on duplicate `Content-Length`"]
    assert (duplicate.error_code, duplicate.error_reason) == (4, "Duplicate Content-Length")
    [upgrade] = [c for c in requests if c.title == "`upgrade` / Setting a flag and pausing"]
    assert upgrade.paused and upgrade.error_code is None
    assert sum(1 for c in requests + responses if c.lenient) == 37


def test_trophies_load_every_payload() -> None:
    trophies = corpora.load_trophies()
    assert len(trophies) == 79
    assert sum(1 for t in trophies if t.payload is None) == 3  # prose: "Any request at all."
    [first] = [t for t in trophies if t.section == "Server Bugs" and t.number == 1]
    assert first.payload is not None and first.payload.startswith(
        b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0_2e\r\n"
    )
    [two_spans] = [t for t in trophies if t.section == "Server Bugs" and t.number == 48]
    assert two_spans.payload is not None and two_spans.payload.endswith(b"id: 2\r\n\r\n")


def test_with_host_adds_host_after_each_http11_request_line() -> None:
    raw = b"GET / HTTP/1.1\r\n\r\nPOST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
    assert corpora.with_host(raw) == (
        b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\nPOST /x HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\n\r\n"
    )
    assert corpora.with_host(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n") == b"GET / HTTP/1.1\r\nhost: a\r\n\r\n"


def test_every_corpus_case_is_handled_with_no_hard_failure() -> None:
    outcomes = harness.run_all()
    table = harness.summary(outcomes)
    print("\n" + table)
    failures = [o for o in outcomes if o.verdict == "fail"]
    assert failures == [], table
    by_corpus = {corpus: [o for o in outcomes if o.corpus == corpus] for corpus in {o.corpus for o in outcomes}}
    assert {corpus: len(items) for corpus, items in by_corpus.items()} == {
        "desync-guardian": 158,
        "llhttp/request": 166,
        "llhttp/response": 85,
        "http-garden": 79,
    }
    # Every Severe case is refused, and every deliberate difference in the tables is still exercised.
    severe = {case.ident for case in corpora.load_desync_guardian() if case.tier == "Severe"}
    assert all(o.verdict == "pass" for o in outcomes if o.ident in severe)
    soft = {o.ident for o in outcomes if o.verdict == "soft"}
    assert set(harness.STRICTER) <= soft
    assert set(harness.ACCEPTED) <= soft


def test_the_harness_fails_a_severe_case_that_is_accepted() -> None:
    valid = corpora.build_desync_request("GET", "/", "HTTP/1.1", [])
    case = corpora.DesyncCase("made-up.yaml", "valid, labelled Severe", "Severe", "", "GET", "/", "HTTP/1.1", (), valid)
    outcome = harness.judge_desync(case)
    assert (outcome.verdict, outcome.detail) == ("fail", "accepted a Severe case")


def test_the_harness_fails_an_unexplained_refusal_of_a_valid_case() -> None:
    raw = corpora.build_desync_request("GET", "/", "HTTP/1.1", [("X-Test", "a\x01b")])
    case = corpora.DesyncCase("made-up.yaml", "control byte", "Compliant", "", "GET", "/", "HTTP/1.1", (), raw)
    outcome = harness.judge_desync(case)
    assert outcome.verdict == "fail"
    assert outcome.detail.startswith("refused a valid case: 400")


def test_normalisation_check_catches_a_stream_that_does_not_read_back() -> None:
    from rsp.http1.events import END_OF_MESSAGE, NO_BODY, Data, RequestHead

    head = RequestHead(b"GET", b"/", b"1.1", ((b"Host", b"a"),), True, NO_BODY)
    assert harness.normalisation_problem([head, END_OF_MESSAGE]) is None
    # A body with no framing for it: the judge reads the body bytes as a broken next request.
    problem = harness.normalisation_problem([head, Data(b"GET /smuggled HTTP/1.1\r\n\r\n"), END_OF_MESSAGE])
    assert problem is not None and "not clean HTTP" in problem
