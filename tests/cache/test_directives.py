"""Cache-Control and Pragma parsing (RFC 9111 §5.2, §5.4, §4.2.1, §1.2.2)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rsp.cache.directives import (
    ANY_STALE,
    DELTA_MAX,
    delta_seconds,
    parse_cache_control,
    request_cache_control,
    split_directives,
)


def cc(*values: bytes):  # type: ignore[no-untyped-def]
    return parse_cache_control(list(values))


def test_max_age_and_s_maxage_are_read() -> None:
    parsed = cc(b"public, max-age=60, s-maxage=30")
    assert (parsed.max_age, parsed.s_maxage, parsed.public) == (60, 30, True)


def test_directive_names_are_case_insensitive() -> None:
    parsed = cc(b"Max-Age=5, NO-STORE")
    assert parsed.max_age == 5 and parsed.no_store


def test_quoted_argument_is_accepted_like_a_token() -> None:
    """§5.2: recipients accept both forms."""
    assert cc(b'max-age="7"').max_age == 7


def test_several_field_lines_are_one_list() -> None:
    parsed = cc(b"no-cache", b"max-age=3")
    assert parsed.no_cache and parsed.max_age == 3


def test_unknown_directives_are_ignored() -> None:
    parsed = cc(b"community=UCI, x-foo, max-age=10")
    assert parsed.max_age == 10 and not parsed.no_store


def test_malformed_max_age_means_stale() -> None:
    """§4.2.1: invalid freshness information, treat as stale."""
    assert cc(b"max-age=abc").max_age == 0
    assert cc(b"max-age=-5").max_age == 0
    assert cc(b"max-age").max_age == 0


def test_conflicting_duplicate_max_age_means_stale() -> None:
    assert cc(b"max-age=60, max-age=120").max_age == 0
    assert cc(b"max-age=60", b"max-age=60").max_age == 60


def test_huge_delta_is_capped_at_2_pow_31() -> None:
    """§1.2.2."""
    assert delta_seconds(b"99999999999999999999") == DELTA_MAX
    assert cc(b"max-age=99999999999999999999").max_age == DELTA_MAX


def test_no_cache_and_private_with_field_names_are_qualified() -> None:
    parsed = cc(b'no-cache="Set-Cookie, X-Foo", private="X-Bar"')
    assert not parsed.no_cache and parsed.no_cache_fields == {b"set-cookie", b"x-foo"}
    assert not parsed.private and parsed.private_fields == {b"x-bar"}


def test_comma_inside_a_quoted_argument_does_not_split() -> None:
    parsed = cc(b'private="a, b", max-age=4')
    assert parsed.private_fields == {b"a", b"b"} and parsed.max_age == 4


def test_malformed_field_list_counts_as_unqualified() -> None:
    assert cc(b'no-cache="a b"').no_cache
    assert cc(b'private=""').private


def test_unqualified_no_cache_and_private() -> None:
    parsed = cc(b"no-cache, private")
    assert parsed.no_cache and parsed.private


def test_broken_syntax_is_stale_and_revalidated() -> None:
    parsed = cc(b'max-age=60, private="unterminated')
    assert parsed.max_age == 0 and parsed.no_cache and not parsed.no_store


def test_request_directives() -> None:
    parsed = cc(b"max-stale, min-fresh=5, only-if-cached")
    assert parsed.max_stale == ANY_STALE and parsed.min_fresh == 5 and parsed.only_if_cached
    assert cc(b"max-stale=10").max_stale == 10
    assert cc(b"max-stale=x").max_stale == 0


def test_response_flags() -> None:
    parsed = cc(b"must-revalidate, proxy-revalidate, immutable, no-transform")
    assert parsed.must_revalidate and parsed.proxy_revalidate and parsed.immutable and parsed.no_transform


def test_pragma_no_cache_only_without_cache_control() -> None:
    """§5.4."""
    assert request_cache_control([], [b"no-cache"]).no_cache
    assert not request_cache_control([b"max-age=5"], [b"no-cache"]).no_cache
    assert not request_cache_control([], [b"x-other"]).no_cache


@given(st.binary(max_size=80))
def test_any_bytes_parse_without_error(value: bytes) -> None:
    parsed = cc(value)
    assert parsed.max_age is None or 0 <= parsed.max_age <= DELTA_MAX


@given(st.lists(st.tuples(st.sampled_from([b"max-age", b"s-maxage", b"no-store", b"x-ext", b"private"]),
                          st.one_of(st.none(), st.integers(0, 10**6))), max_size=6))
def test_generated_lists_round_trip(pairs: list[tuple[bytes, int | None]]) -> None:
    value = b", ".join(name if arg is None else name + b"=" + str(arg).encode() for name, arg in pairs)
    split = split_directives([value])
    assert split == [(name, None if arg is None else str(arg).encode()) for name, arg in pairs]
    ages = {arg for name, arg in pairs if name == b"max-age"}
    parsed = cc(value)
    if not ages:
        assert parsed.max_age is None
    elif len(ages) == 1 and None not in ages:
        assert parsed.max_age == ages.pop()
    else:
        assert parsed.max_age == 0
