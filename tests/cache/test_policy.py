"""Storability (RFC 9111 §3, §3.5), Vary (§4.1), conditionals (RFC 9110 §13; RFC 9111 §4.3.1, §4.3.2),
freshening (§3.2, §4.3.4, §4.3.5) and invalidation (§4.4)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rsp.cache import storable
from rsp.cache.conditional import (
    ANY,
    not_modified,
    not_modified_headers,
    origin_only,
    parse_entity_tags,
    validators,
)
from rsp.cache.directives import parse_cache_control
from rsp.cache.entry import StoredResponse
from rsp.cache.freshen import freshened, head_contradicts, merge_headers, selects
from rsp.cache.invalidation import invalidated
from rsp.cache.vary import matches, normalise, selecting, variant_key, vary_names

Headers = list[tuple[bytes, bytes]]
NOW = 1_800_000_000.0


def refusal(response: Headers, request: Headers = (), *, method: bytes = b"GET", status: int = 200,  # type: ignore[assignment]
            lifetime: float = 60.0, cookies: bool = False) -> str | None:
    req_cc = parse_cache_control([v for k, v in request if k == b"cache-control"])
    resp_cc = parse_cache_control([v for k, v in response if k == b"cache-control"])
    return storable.refusal(method, status, list(request), req_cc, response, resp_cc, lifetime, cookies=cookies)


# ---- storability -------------------------------------------------------------------------------------------

def test_plain_200_with_max_age_is_stored() -> None:
    assert refusal([(b"cache-control", b"max-age=60")]) is None


def test_only_get_is_stored() -> None:
    assert refusal([(b"cache-control", b"max-age=60")], method=b"HEAD") == storable.NOT_GET
    assert refusal([(b"cache-control", b"max-age=60")], method=b"POST") == storable.NOT_GET


def test_no_store_in_request_or_response() -> None:
    assert refusal([(b"cache-control", b"max-age=60, no-store")]) == storable.NO_STORE
    assert refusal([(b"cache-control", b"max-age=60")], [(b"cache-control", b"no-store")]) == storable.NO_STORE


def test_private_is_not_stored_but_qualified_private_is() -> None:
    assert refusal([(b"cache-control", b"private, max-age=60")]) == storable.PRIVATE
    assert refusal([(b"cache-control", b'private="x-user", max-age=60')]) is None


def test_authorization_needs_public_s_maxage_or_must_revalidate() -> None:
    """§3.5."""
    auth = [(b"authorization", b"Basic eDp5")]
    assert refusal([(b"cache-control", b"max-age=60")], auth) == storable.AUTHORIZATION
    for allowed in (b"public, max-age=60", b"s-maxage=60", b"must-revalidate, max-age=60"):
        assert refusal([(b"cache-control", allowed)], auth) is None


def test_set_cookie_only_when_configured() -> None:
    response = [(b"cache-control", b"max-age=60"), (b"set-cookie", b"a=b")]
    assert refusal(response) == storable.SET_COOKIE
    assert refusal(response, cookies=True) is None


def test_request_cookie_needs_explicit_freshness_unless_configured() -> None:
    """rsp's choice (like Varnish): a response to a request with Cookie is stored only when the origin gave
    it an explicit lifetime or public."""
    cookie = [(b"cookie", b"session=1")]
    validated = [(b"last-modified", b"Sun, 06 Nov 1994 08:49:37 GMT")]
    assert refusal(validated, cookie, lifetime=0) == storable.COOKIE
    assert refusal(validated, cookie, lifetime=0, cookies=True) is None
    assert refusal([(b"cache-control", b"max-age=60")], cookie) is None
    assert refusal([(b"cache-control", b"public"), *validated], cookie, lifetime=0) is None


def test_vary_star_is_not_stored() -> None:
    assert refusal([(b"cache-control", b"max-age=60"), (b"vary", b"Accept, *")]) == storable.VARY_STAR


def test_status_cacheable_by_default_or_explicit() -> None:
    """RFC 9110 §15.1; 206 and 304 never."""
    etag = [(b"etag", b'"v1"')]
    assert refusal(etag, status=404, lifetime=0) is None
    assert refusal(etag, status=302, lifetime=0) == storable.STATUS
    assert refusal([(b"cache-control", b"max-age=5")], status=302) is None
    assert refusal([(b"expires", b"0"), *etag], status=500, lifetime=0) is None
    assert refusal([(b"cache-control", b"max-age=5")], status=206) == storable.STATUS
    assert refusal([(b"cache-control", b"max-age=5")], status=304) == storable.STATUS
    assert refusal([(b"cache-control", b"public"), *etag], status=302, lifetime=0) is None


def test_stale_response_without_validator_is_not_stored() -> None:
    assert refusal([], lifetime=0) == storable.USELESS
    assert refusal([(b"last-modified", b"Sun, 06 Nov 1994 08:49:37 GMT")], lifetime=0) is None


# ---- Vary ----------------------------------------------------------------------------------------------------

def test_vary_names_lowercase_deduplicated_star_is_none() -> None:
    assert vary_names([(b"Vary", b"Accept-Encoding, accept-encoding"), (b"vary", b"Accept")]) == (
        b"accept-encoding", b"accept")
    assert vary_names([(b"vary", b"*")]) is None
    assert vary_names([]) == ()


def test_normalisation_combines_lines_and_trims() -> None:
    assert normalise([(b"Accept", b"a,  b"), (b"accept", b"c")], b"accept") == b"a,b,c"
    assert normalise([(b"Accept-Encoding", b"GZIP, br")], b"accept-encoding") == b"gzip,br"
    assert normalise([], b"accept") is None


def test_absent_matches_only_absent() -> None:
    stored = selecting([], (b"accept-language",))
    assert matches(stored, [])
    assert not matches(stored, [(b"accept-language", b"")])  # present but empty is not absent
    assert not matches(stored, [(b"accept-language", b"fr")])


def test_equivalent_values_match_and_share_a_variant() -> None:
    a = selecting([(b"accept-encoding", b"gzip, br")], (b"accept-encoding",))
    b = selecting([(b"Accept-Encoding", b"GZIP,br")], (b"accept-encoding",))
    assert a == b and variant_key(a) == variant_key(b)
    assert matches(a, [(b"accept-encoding", b"gzip,  BR")])
    assert not matches(a, [(b"accept-encoding", b"br, gzip")])


@given(st.lists(st.tuples(st.sampled_from([b"a", b"b"]), st.binary(max_size=5)), max_size=4),
       st.lists(st.tuples(st.sampled_from([b"a", b"b"]), st.binary(max_size=5)), max_size=4))
def test_variant_keys_equal_exactly_when_selecting_values_equal(x: Headers, y: Headers) -> None:
    names = (b"a", b"b")
    sx, sy = selecting(x, names), selecting(y, names)
    assert (variant_key(sx) == variant_key(sy)) == (sx == sy)
    assert matches(sx, y) == (sx == sy)


# ---- conditionals ----------------------------------------------------------------------------------------------

STORED: Headers = [(b"etag", b'W/"v1"'), (b"last-modified", b"Sun, 06 Nov 1994 08:49:37 GMT"),
                   (b"content-type", b"text/plain"), (b"cache-control", b"max-age=60")]


def test_entity_tag_lists() -> None:
    assert parse_entity_tags(b"*") == ANY
    assert parse_entity_tags(b'"a", W/"b,c"') == [(False, b'"a"'), (True, b'"b,c"')]
    assert parse_entity_tags(b"a") is None
    assert parse_entity_tags(b'"a" "b"') is None


def test_if_none_match_uses_weak_comparison() -> None:
    """RFC 9110 §13.1.2."""
    assert not_modified(b"GET", [(b"if-none-match", b'"v1"')], STORED, NOW)
    assert not_modified(b"HEAD", [(b"if-none-match", b'"x", W/"v1"')], STORED, NOW)
    assert not not_modified(b"GET", [(b"if-none-match", b'"v2"')], STORED, NOW)
    assert not_modified(b"GET", [(b"if-none-match", b"*")], STORED, NOW)
    assert not not_modified(b"GET", [(b"if-none-match", b"garbage")], STORED, NOW)


def test_if_none_match_takes_precedence_over_if_modified_since() -> None:
    """RFC 9110 §13.2.2 step 3 before 4."""
    request = [(b"if-none-match", b'"v2"'), (b"if-modified-since", b"Mon, 07 Nov 1994 08:49:37 GMT")]
    assert not not_modified(b"GET", request, STORED, NOW)


def test_if_modified_since() -> None:
    assert not_modified(b"GET", [(b"if-modified-since", b"Sun, 06 Nov 1994 08:49:37 GMT")], STORED, NOW)
    assert not not_modified(b"GET", [(b"if-modified-since", b"Sat, 05 Nov 1994 08:49:37 GMT")], STORED, NOW)
    assert not not_modified(b"GET", [(b"if-modified-since", b"yesterday")], STORED, NOW)
    assert not not_modified(b"POST", [(b"if-none-match", b"*")], STORED, NOW)


def test_if_modified_since_without_last_modified_uses_date_then_receipt() -> None:
    """RFC 9111 §4.3.2."""
    dated = [(b"date", b"Sun, 06 Nov 1994 08:49:37 GMT")]
    assert not_modified(b"GET", [(b"if-modified-since", b"Sun, 06 Nov 1994 08:49:37 GMT")], dated, NOW)
    assert not not_modified(b"GET", [(b"if-modified-since", b"Sun, 06 Nov 1994 08:49:37 GMT")], [], NOW)


def test_origin_only_preconditions() -> None:
    for name in (b"if-match", b"if-unmodified-since", b"if-range"):
        assert origin_only([(name, b"x")])
    assert not origin_only([(b"if-none-match", b"*")])


def test_304_fields_from_the_stored_response() -> None:
    """RFC 9110 §15.4.5."""
    assert not_modified_headers(STORED) == [(b"etag", b'W/"v1"'), (b"cache-control", b"max-age=60")]
    no_etag = [h for h in STORED if h[0] != b"etag"]
    assert (b"last-modified", b"Sun, 06 Nov 1994 08:49:37 GMT") in not_modified_headers(no_etag)


def test_validators_from_etag_and_last_modified() -> None:
    """RFC 9111 §4.3.1."""
    assert validators(STORED) == [(b"if-none-match", b'W/"v1"'),
                                  (b"if-modified-since", b"Sun, 06 Nov 1994 08:49:37 GMT")]
    assert validators([(b"content-type", b"x")]) == []


# ---- freshening ------------------------------------------------------------------------------------------------

def test_304_replaces_fields_but_content_length() -> None:
    """§3.2."""
    stored = [(b"content-type", b"text/plain"), (b"cache-control", b"max-age=1"), (b"x-a", b"1"),
              (b"x-a", b"2"), (b"content-length", b"5")]
    merged = merge_headers(stored, [(b"Cache-Control", b"max-age=60"), (b"X-A", b"3"), (b"x-new", b"n"),
                                    (b"content-length", b"0"), (b"age", b"4")])
    assert merged == [(b"content-type", b"text/plain"), (b"Cache-Control", b"max-age=60"), (b"X-A", b"3"),
                      (b"content-length", b"5"), (b"x-new", b"n")]


def test_304_selects_by_strong_etag_then_last_modified() -> None:
    """§4.3.4."""
    stored = [(b"etag", b'"v1"'), (b"last-modified", b"Sun, 06 Nov 1994 08:49:37 GMT")]
    assert selects(stored, [(b"etag", b'"v1"')])
    assert not selects(stored, [(b"etag", b'"v2"')])
    assert selects(stored, [(b"last-modified", b"Sun, 06 Nov 1994 08:49:37 GMT")])
    assert not selects(stored, [(b"last-modified", b"Mon, 07 Nov 1994 08:49:37 GMT")])
    assert selects(stored, [])


def test_a_freshened_entry_takes_the_newer_lifetime_and_times() -> None:
    """§3.2 and §4.2.3: the 304's max-age replaces the stored one; the entry's times are the new exchange's."""
    entry = StoredResponse(b"http://a/x", 200, [(b"cache-control", b"max-age=1"), (b"x-cache", b"MISS")], b"body",
                           request_time=100.0, response_time=101.0, lifetime=1.0)
    fresh, storable = freshened(entry, [(b"cache-control", b"max-age=60"), (b"x-cache", b"HIT")], 200.0, 201.0,
                                None, False, b"x-cache")
    assert storable
    assert (fresh.lifetime, fresh.request_time, fresh.response_time, fresh.body) == (60.0, 200.0, 201.0, b"body")
    assert (b"x-cache", b"HIT") not in fresh.headers  # the cache's own label is never taken from a backend
    # A filter's TTL wins over the merged fields' lifetime.
    overridden, _ = freshened(entry, [(b"cache-control", b"max-age=60")], 200.0, 201.0, 5.0, False, b"x-cache")
    assert overridden.lifetime == 5.0


def test_a_newer_no_store_or_private_removes_the_entry() -> None:
    entry = StoredResponse(b"http://a/x", 200, [(b"cache-control", b"max-age=1")], b"body")
    assert not freshened(entry, [(b"cache-control", b"no-store")], 0.0, 1.0, None, False, b"x-cache")[1]
    assert not freshened(entry, [(b"cache-control", b"private")], 0.0, 1.0, None, False, b"x-cache")[1]


def test_head_contradicting_the_stored_response() -> None:
    """§4.3.5."""
    stored = [(b"etag", b'"v1"')]
    assert not head_contradicts(stored, 5, [(b"etag", b'"v1"'), (b"content-length", b"5")])
    assert head_contradicts(stored, 5, [(b"etag", b'"v2"')])
    assert head_contradicts(stored, 5, [(b"content-length", b"6")])


# ---- invalidation ------------------------------------------------------------------------------------------------

def test_unsafe_method_invalidates_target_and_same_origin_locations() -> None:
    """§4.4."""
    keys = invalidated(b"POST", 201, b"https", b"Example.com", b"/items",
                       [(b"location", b"/items/7"), (b"content-location", b"https://example.com/items?new=1")])
    assert keys == [b"https://example.com/items", b"https://example.com/items/7",
                    b"https://example.com/items?new=1"]


def test_other_origin_locations_are_not_invalidated() -> None:
    keys = invalidated(b"DELETE", 200, b"http", b"a.example", b"/x",
                       [(b"location", b"http://b.example/x"), (b"content-location", b"https://a.example/x")])
    assert keys == [b"http://a.example/x"]


def test_safe_methods_and_errors_invalidate_nothing() -> None:
    assert invalidated(b"GET", 200, b"http", b"a", b"/", []) == []
    assert invalidated(b"POST", 500, b"http", b"a", b"/", []) == []
    assert invalidated(b"POST", 404, b"http", b"a", b"/", []) == []
    assert invalidated(b"PUT", 302, b"http", b"a", b"/", []) == [b"http://a/"]


def test_relative_location_is_resolved_against_the_target() -> None:
    assert invalidated(b"PATCH", 204, b"http", b"a", b"/dir/x", [(b"location", b"y")]) == [
        b"http://a/dir/x", b"http://a/dir/y"]
