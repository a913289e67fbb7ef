"""The declaration of the fields that decide a head (rsp.http1.head_fields) matches what the parsers do.

- every declared captured name is captured by the fast path, every refused name sends a head to the
  general path, and an undeclared name is neither;
- every hop-by-hop field is cut or refused, for both kinds;
- the verdict functions receive the declared fields by name and no other field;
- a field that is not declared never changes a verdict, whatever its value;
- adding a field to the declaration is enough for the near memo to stop treating its line as volatile.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import rsp.http1
from rsp.errors import ProtocolError
from rsp.http1.events import Event, RequestHead, ResponseHead
from rsp.http1.fast_path import fast_re
from rsp.http1.forward import HOP_BY_HOP
from rsp.http1.head_fields import NOT_READ, REQUEST_FIELDS, RESPONSE_FIELDS, HeadFields, fields_table, group_name
from rsp.http1.limits import MAX_HEADER_COUNT
from rsp.http1.parser import RequestParser, ResponseParser

KINDS = [
    pytest.param(True, REQUEST_FIELDS, b"POST /p HTTP/1.1\r\nHost: a\r\n%s\r\n\r\n", id="request"),
    pytest.param(False, RESPONSE_FIELDS, b"HTTP/1.1 200 OK\r\n%s\r\nContent-Length: 0\r\n\r\n", id="response"),
]
# Undeclared names worth trying: the usual ones, and names that sound like they might decide something.
UNDECLARED = [b"x-request-id", b"date", b"cookie", b"accept", b"via", b"content-type", b"server", b"x-secret",
              b"content-encoding", b"range", b"if-none-match", b"authorization", b"origin", b"sec-websocket-key"]
# Values that would change a verdict if a field were read: framing, connection and upgrade words.
VALUES = [b"x", b"close", b"keep-alive", b"chunked", b"0", b"5", b"100-continue", b"websocket", b"upgrade", b"h2c",
          b"Upgrade, close", b"gzip, chunked"]


def title(name: bytes) -> bytes:
    return b"-".join(part.capitalize() for part in name.split(b"-"))


@pytest.mark.parametrize(("request_kind", "declared", "template"), KINDS)
def test_the_fast_path_captures_exactly_the_declared_fields(
    request_kind: bool, declared: HeadFields, template: bytes
) -> None:
    pattern = fast_re(request_kind, declared, MAX_HEADER_COUNT)
    template = b"GET / HTTP/1.1\r\n%s\r\n\r\n" if request_kind else b"HTTP/1.1 200 OK\r\n%s\r\n\r\n"
    for name in declared.captured:
        match = pattern.match(template % (title(name) + b": value"))
        assert match is not None and match.group(group_name(name)) == b"value", name
    for name in declared.refused:
        assert pattern.match(template % (title(name) + b": value")) is None, name
    for name in UNDECLARED:
        match = pattern.match(template % (title(name) + b": value"))
        assert match is not None, name
        assert b"value" not in [match.group(group_name(n)) for n in declared.captured], name
        assert group_name(name) not in pattern.groupindex


@pytest.mark.parametrize("declared", [REQUEST_FIELDS, RESPONSE_FIELDS])
def test_every_hop_by_hop_field_is_cut_or_refused(declared: HeadFields) -> None:
    assert set(declared.cut) | set(declared.refused) >= HOP_BY_HOP
    assert set(declared.cut) == HOP_BY_HOP.intersection(declared.captured)
    with pytest.raises(ValueError, match="hop-by-hop"):
        HeadFields(tuple(n for n in declared.captured if n != b"connection"), declared.refused)
    with pytest.raises(ValueError, match="twice"):
        HeadFields(declared.captured, (*declared.refused, declared.captured[0]))


# Parameters of the verdict functions that are not field values: the start line, the request's method,
# the section as received (passed through to the event), and the parser's settings.
NOT_FIELDS = {"method", "target", "version", "status", "reason", "headers", "raw", "forwardable", "vetted",
              "valid_host", "memos"}


def parameters(function: str) -> set[str]:
    source = (Path(rsp.http1.__file__).parent / "verdict.py").read_text()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef) and node.name == function:
            return {arg.arg for arg in node.args.args + node.args.kwonlyargs}
    raise AssertionError(f"no {function} in verdict.py")


@pytest.mark.parametrize(("function", "declared"), [("request_verdict", REQUEST_FIELDS),
                                                    ("response_verdict", RESPONSE_FIELDS)])
def test_the_verdict_reads_the_declared_fields_and_no_other(function: str, declared: HeadFields) -> None:
    read = {group_name(name) for name, key in fields_table(declared).items()
            if name in declared.captured and key != NOT_READ}
    assert parameters(function) - NOT_FIELDS == read


def verdict(request_kind: bool, raw: bytes) -> tuple[object, ...]:
    """What a head decides (everything but its field lines), from a parser without memos."""
    parser: RequestParser | ResponseParser
    if request_kind:
        parser = RequestParser(memos=False)
    else:
        parser = ResponseParser(memos=False)
        parser.expect(b"GET")
    try:
        events: list[Event] = parser.feed(raw)
    except ProtocolError as error:
        return ("error", error.status, str(error))
    head = events[0]
    if isinstance(head, RequestHead):
        return (head.method, head.target, head.version, head.keep_alive, head.body, head.upgrade,
                head.expect_continue, head.host, head.connection, head.forwardable is None, parser.paused)
    assert isinstance(head, ResponseHead)
    return (head.status, head.reason, head.version, head.keep_alive, head.body, head.connection,
            head.forwardable is None, parser.paused)


def names_in_the_parser_sources() -> set[bytes]:
    """Every lower-case name-like bytes literal of rsp.http1: any field a parser could come to read."""
    names: set[bytes] = set()
    for path in Path(rsp.http1.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, bytes):
                value = node.value
                if value and value.replace(b"-", b"").isalpha() and value.islower():
                    names.add(value)
    return names


@pytest.mark.parametrize(("request_kind", "declared", "template"), KINDS)
def test_a_field_that_is_not_declared_never_changes_a_verdict(
    request_kind: bool, declared: HeadFields, template: bytes
) -> None:
    candidates = (names_in_the_parser_sources() | HOP_BY_HOP | set(UNDECLARED)) - set(declared.captured)
    candidates -= set(declared.refused)
    assert len(candidates) > 15
    for name in sorted(candidates):
        line = title(name) + b": "
        outcomes = {verdict(request_kind, template % (line + value)) for value in VALUES}
        # A look-alike name is refused whatever its value; any other undeclared field decides nothing.
        assert len(outcomes) == 1, (name, outcomes)


def test_adding_a_field_to_the_declaration_takes_it_out_of_the_near_memo() -> None:
    """The near memo learns the request id line as volatile; declared, the same line is a decision: the
    memo stays unarmed, and the events are the same."""
    extended = RESPONSE_FIELDS.extended(captured=(b"x-request-id",))
    usual, declaring = ResponseParser(), ResponseParser(declared=extended)
    for i in range(4):
        raw = b"HTTP/1.1 200 OK\r\nDate: d\r\nX-Request-Id: %04d\r\nContent-Length: 0\r\n\r\n" % i
        got = []
        for parser in (usual, declaring):
            parser.expect(b"GET")
            events = parser.feed(raw)
            head = events[0]
            assert isinstance(head, ResponseHead)
            got.append((events, head.raw, head.forwardable))
        assert got[0] == got[1]
    assert usual._near.values and not declaring._near.values
    assert declaring._fast.groupindex["x_request_id"] > declaring._fast.groupindex["keep_alive"]
    with pytest.raises(ValueError, match="extend the default"):
        ResponseParser(declared=HeadFields(RESPONSE_FIELDS.captured[::-1], RESPONSE_FIELDS.refused))
