"""rsp.cache.admission: what a miss stores (the decision and the entry, in one compiled call) and the entry's
byte format's refusal of fields no parsed message has."""

from __future__ import annotations

import pytest

from rsp.cache.admission import admit, stored_headers
from rsp.cache.directives import CacheControl, parse_cache_control
from rsp.cache.entry import MUST_REVALIDATE, NO_CACHE, StoredResponse, decode, encode
from rsp.pipeline.messages import Header

URL = b"http://example.com/a"
MAX = 1 << 20


def admitted(response: list[Header], request: list[Header] | None = None, status: int = 200,
             body_length: int = 10, label: bytes = b"x-cache") -> StoredResponse | None:
    return admit(URL, b"GET", request or [(b"Host", b"example.com")], CacheControl(), status, b"OK", response,
                 body_length, 100.0, 101.0, heuristic=False, cookies=False, max_object=MAX, label=label)


def test_a_fresh_response_becomes_an_entry_with_its_times_and_flags() -> None:
    entry = admitted([(b"Cache-Control", b"max-age=60, must-revalidate"), (b"ETag", b'"1"'), (b"Age", b"5"),
                      (b"Content-Length", b"10"), (b"X-Cache", b"MISS"), (b"Set-Cookie", b"a=b")],
                     label=b"x-cache")
    assert entry is None  # Set-Cookie without `cookies = true`
    entry = admitted([(b"Cache-Control", b"max-age=60, must-revalidate"), (b"ETag", b'"1"'), (b"Age", b"5"),
                      (b"Content-Length", b"10"), (b"X-Cache", b"MISS")])
    assert entry is not None
    assert (entry.url, entry.status, entry.reason, entry.body) == (URL, 200, b"OK", b"")
    assert entry.headers == [(b"Cache-Control", b"max-age=60, must-revalidate"), (b"ETag", b'"1"')]
    assert (entry.lifetime, entry.request_time, entry.response_time) == (60.0, 100.0, 101.0)
    assert entry.initial_age == 6.0  # Age 5 + the response delay of 1 s (RFC 9111 §4.2.3)
    assert entry.flags == MUST_REVALIDATE and entry.selecting == ()


def test_refusals_and_the_size_bound() -> None:
    fresh = [(b"Cache-Control", b"max-age=60")]
    assert admitted([(b"Cache-Control", b"no-store")]) is None
    assert admitted(fresh, status=206) is None
    assert admitted(fresh, body_length=MAX + 1) is None
    assert admitted(fresh, body_length=-1) is not None  # length unknown yet: body_filter enforces the bound
    assert admitted([(b"Cache-Control", b"max-age=60"), (b"Vary", b"*")]) is None


def test_vary_records_the_selecting_values_and_no_cache_is_a_flag() -> None:
    entry = admitted([(b"Cache-Control", b"max-age=60, no-cache"), (b"Vary", b"Accept-Encoding, X-Absent")],
                     request=[(b"Accept-Encoding", b"GZIP, br")])
    assert entry is not None
    assert entry.selecting == ((b"accept-encoding", b"gzip,br"), (b"x-absent", None))
    assert entry.flags == NO_CACHE


def test_fields_named_by_no_cache_or_private_are_not_stored() -> None:
    cc = parse_cache_control([b'max-age=60, private="X-User", no-cache="X-Token"'])
    kept = stored_headers([(b"X-User", b"me"), (b"x-token", b"t"), (b"ETag", b'"1"'), (b"X-Cache", b"MISS")], cc,
                          b"x-cache")
    assert kept == [(b"ETag", b'"1"')]
    assert stored_headers([(b"X-Cache", b"MISS")], CacheControl(), b"") == [(b"X-Cache", b"MISS")]


@pytest.mark.parametrize("headers", [[(b"X-A", b"one\ntwo")], [(b"X-A", b"one\x00two")], [(b"X\x00A", b"v")],
                                     [(b"X-A", b"v"), (b"X-B", b"\n")]])
def test_encode_refuses_lf_or_nul_in_a_field(headers: list[Header]) -> None:
    with pytest.raises(ValueError):
        encode(StoredResponse(URL, 200, headers, b"body"))


def test_encode_round_trips_headers_selecting_and_an_empty_head() -> None:
    for headers in ([], [(b"A", b"")], [(b"A", b"1"), (b"B", b"2: three")]):
        entry = StoredResponse(URL, 200, headers, b"\n\x00body", selecting=((b"accept", b"x"), (b"cookie", None)))
        back = decode(encode(entry))
        assert (back.headers, back.selecting, back.body) == (headers, entry.selecting, b"\n\x00body")
    with pytest.raises(ValueError):
        encode(StoredResponse(URL, 200, [], b"", selecting=((b"accept", b"a\nb"),)))


def test_each_cache_control_line_keeps_its_own_reading() -> None:
    """The parses of repeated lines are shared (a memo); each line still reads as itself."""
    for _ in range(2):
        revalidate = admitted([(b"Cache-Control", b"max-age=60, must-revalidate")])
        plain = admitted([(b"Cache-Control", b"max-age=30")])
        two_lines = admitted([(b"Cache-Control", b"max-age=30"), (b"Cache-Control", b"no-cache")])
        assert revalidate is not None and plain is not None and two_lines is not None
        assert (revalidate.lifetime, revalidate.flags) == (60.0, MUST_REVALIDATE)
        assert (plain.lifetime, plain.flags) == (30.0, 0)
        assert two_lines.flags == NO_CACHE


# Responses that exercise each field the decision reads, spelt in mixed case among fields it does not read.
_DECIDING = [
    [(b"Cache-Control", b"max-age=60")],
    [(b"CACHE-CONTROL", b"no-store")],
    [(b"Cache-control", b"private")],
    [(b"Expires", b"Thu, 01 Jan 2099 00:00:00 GMT"), (b"DATE", b"Thu, 01 Jan 2098 00:00:00 GMT")],
    [(b"expires", b"0")],
    [(b"Cache-Control", b"max-age=60"), (b"Age", b"30"), (b"Date", b"Thu, 01 Jan 1970 00:00:50 GMT")],
    [(b"Cache-Control", b"max-age=60"), (b"Set-Cookie", b"a=b")],
    [(b"Cache-Control", b"max-age=0"), (b"ETag", b'"1"')],
    [(b"Cache-Control", b"max-age=0")],
    [(b"cache-control", b"max-age=0"), (b"Last-Modified", b"Thu, 01 Jan 1970 00:00:01 GMT")],
    [(b"Cache-Control", b"max-age=60"), (b"VARY", b"Accept")],
    [(b"Cache-Control", b"max-age=60"), (b"Vary", b"*")],
    [(b"Last-Modified", b"Thu, 01 Jan 1970 00:00:01 GMT"), (b"Date", b"Thu, 01 Jan 1970 00:01:41 GMT")],
]


@pytest.mark.parametrize("deciding", _DECIDING)
def test_the_decision_reads_every_field_it_needs_in_any_spelling(deciding: list[Header]) -> None:
    """admit hands the policy functions only POLICY_FIELDS: its entry (or refusal) is the one the functions
    give on the whole field list."""
    from rsp.cache.admission import POLICY_FIELDS
    from rsp.cache.freshness import freshness_lifetime, initial_age
    from rsp.cache.storable import refusal
    from rsp.cache.vary import vary_names

    response = [(b"Server", b"x"), *deciding, (b"Content-Type", b"text/html"), (b"X-Other", b"1")]
    request = [(b"Host", b"example.com"), (b"Accept", b"text/html")]
    assert all(name.lower() in POLICY_FIELDS for name, _ in deciding)
    for heuristic in (False, True):
        got = admit(URL, b"GET", request, CacheControl(), 200, b"OK", response, 10, 100.0, 101.0,
                    heuristic=heuristic, cookies=False, max_object=MAX, label=b"")
        cc = parse_cache_control([v for n, v in response if n.lower() == b"cache-control"])
        lifetime = freshness_lifetime(200, response, cc, 101.0, heuristic)
        refused = vary_names(response) is None or refusal(b"GET", 200, request, CacheControl(), response, cc,
                                                           lifetime, cookies=False) is not None
        assert (got is None) == refused
        if got is not None:
            assert got.lifetime == lifetime
            assert got.initial_age == initial_age(response, 100.0, 101.0)
            assert got.headers == stored_headers(response, cc, b"")


def test_the_field_name_memo_is_bounded_and_keeps_each_spelling_apart() -> None:
    from rsp.cache import admission

    for i in range(admission.NAMES_MEMO_SIZE * 2 + 1):
        admission._name(b"X-Field-%d" % i)
    assert len(admission._NAMES) <= admission.NAMES_MEMO_SIZE
    assert admission._name(b"CACHE-Control").lower == b"cache-control" and admission._name(b"CACHE-Control").policy
    assert admission._name(b"Server").lower == b"server" and not admission._name(b"Server").policy
    assert admission._name(b"Content-LENGTH").lower == b"content-length" and not admission._name(b"Content-LENGTH").kept
    assert admission.lower_name(b"If-None-MATCH") == b"if-none-match" == admission.lower_name(b"if-none-match")
