"""The fast-path expression and the hop-by-hop lines it cuts are built once per head kind, not per parser
(a parser is made per connection)."""

from __future__ import annotations

from rsp.http1.fast_path import cut_groups, fast_path, fast_re
from rsp.http1.head_fields import REQUEST_FIELDS, RESPONSE_FIELDS
from rsp.http1.limits import MAX_HEADER_COUNT
from rsp.http1.parser import RequestParser


def test_one_expression_and_one_cut_table_per_head_kind() -> None:
    for request, declared in ((True, REQUEST_FIELDS), (False, RESPONSE_FIELDS)):
        pattern, cut = fast_path(request, declared, MAX_HEADER_COUNT)
        assert fast_path(request, declared, MAX_HEADER_COUNT)[1] is cut
        assert fast_re(request, declared, MAX_HEADER_COUNT) is pattern
        assert cut == cut_groups(pattern, declared)
        assert len(cut) == len(declared.cut) and cut  # Connection and the other captured hop-by-hop fields


def test_parsers_share_them_and_still_cut_the_hop_by_hop_lines() -> None:
    first, second = RequestParser(), RequestParser()
    assert first._cut is second._cut and first._fast is second._fast
    events = second.feed(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nX-A: 1\r\n\r\n")
    head = events[0]
    assert b"Connection" not in head.forwardable and b"X-A: 1" in head.forwardable  # type: ignore[attr-defined]
