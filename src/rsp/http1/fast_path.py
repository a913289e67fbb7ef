"""The fast path: one compiled expression per head kind recognises the usual shape of a head.

Nearly every head has one shape: each field line written `Name: value` (one space after the colon, no
whitespace at the end of the value) and each field the parser acts on present at most once. One
compiled expression recognises that shape (start line and whole field section, every byte validated as
by FIELD_LINE_RE) and captures, in the same pass, the value of each field the head kind's declaration
(rsp.http1.head_fields) names. Anything else -- another spacing, a repeated captured field, a refused or
look-alike name, an error, an incomplete head, a limit exceeded -- does not match and takes the general
path, which is the reference: the fast path only ever produces the events the general path would
(tests/http1/test_fast_path.py checks both on generated heads), and it never raises.

Per captured name, `(?(F)()VALUE|(?P<name>VALUE))`: the first line fills the value group F; a repeated
line fills the empty "again" group instead; a refused name fills the `refused` group; and conditionals at
the end of the expression fail the whole match when an "again" or the refused group is set. The
repetition of lines sits in an atomic group: it takes as many lines as match, each by the first
alternative that matches, and the engine never comes back to read a special line as an ordinary one
(nothing inside the group can fail after the repetition). Lines whose first letter starts no special name
skip the alternatives (first branch). A special name's branch accepts exactly the values an ordinary line
accepts, so the alternatives never change which heads match, only what is captured. A canonical value is
not empty (an empty value takes the general path). Cheaper than the general path's findall and
per-field lookups by about a third of a parse (see docs/performance.md).

Groups are named; the parsers read the numbers from `pattern.groupindex` (REQUEST_GROUP, RESPONSE_GROUP).
"""

from __future__ import annotations

import re
from typing import Final

from rsp.http1 import fields
from rsp.http1.fields import TCHAR
from rsp.http1.grammar import CRLF, NAME_SEPARATOR, TARGET_CHARS
from rsp.http1.head_fields import REQUEST_FIELDS, RESPONSE_FIELDS, HeadFields, group_name
from rsp.http1.limits import MAX_HEADER_COUNT

CANONICAL_VALUE: Final = rb"[\x21-\x7e\x80-\xff][\t\x20-\x7e\x80-\xff]*+(?<![ \t])"
_CANONICAL_LINE: Final = rb"[%s]++: %s\r\n" % (TCHAR, CANONICAL_VALUE)

REQUEST_START: Final = rb"(?P<method>[%s]++) (?P<target>[%s]++) HTTP/1\.(?P<minor>[01])\r\n" % (TCHAR, TARGET_CHARS)
RESPONSE_START: Final = (
    rb"HTTP/1\.(?P<minor>[01]) (?P<code>[1-5][0-9][0-9])(?: (?P<reason>[\t\x20-\x7e\x80-\xff]*+))?\r\n"
)
SECTION: Final = "section"  # the field section, as `raw`
REFUSED: Final = "refused"  # set when a refused or look-alike name appears


def again_name(field: bytes) -> str:
    """The name of the empty group a repeated captured field fills."""
    return "again_" + group_name(field)


def _lookalike(parts: list[bytes]) -> bytes:
    """An expression for the spellings with at least one "_" of the name whose "-"-separated parts (as
    expressions) these are."""
    if len(parts) == 2:
        return parts[0] + b"_" + parts[1]
    return parts[0] + b"(?:_" + b"[-_]".join(parts[1:]) + b"|-" + _lookalike(parts[1:]) + b")"


def _spellings(declared: HeadFields) -> list[bytes]:
    """The refused names as expressions: each refused name, and the spellings of the look-alike targets
    with "_" (rsp.http1.fields.LOOKALIKE_TARGETS; with "-" too when refused). Targets that differ only in
    their last part share one expression (`x[-_]forwarded[-_](?:for|proto|host)`): one branch to try."""
    spellings = [re.escape(name) for name in declared.refused if name not in fields.LOOKALIKE_TARGETS]
    families: dict[tuple[tuple[bytes, ...], bool], list[bytes]] = {}
    for name in fields.LOOKALIKE_TARGETS:
        *first, last = name.split(b"-")
        families.setdefault((tuple(first), name in declared.refused), []).append(last)
    for (leading, refused), lasts in families.items():
        last = re.escape(lasts[0]) if len(lasts) == 1 else b"(?:%s)" % b"|".join(re.escape(x) for x in lasts)
        parts = [re.escape(part) for part in leading] + [last]
        spellings.append(b"[-_]".join(parts) if refused else _lookalike(parts))
    return spellings


def fast_head_re(start: bytes, declared: HeadFields, max_count: int) -> re.Pattern[bytes]:
    """The fast-path expression for heads whose start line `start` matches (its groups come first), with at
    most `max_count` field lines: then the section, per captured name its "again" flag and its value,
    then the refused flag."""
    group = re.compile(start).groups + 1  # the section
    branches = []
    flags = []
    initials = {name[:1] for name in declared.refused + fields.LOOKALIKE_TARGETS}
    for name in declared.captured:
        flags.append(group + 1)
        group += 2
        value = CANONICAL_VALUE
        branches.append(rb"(?i:%s): (?(%d)(?P<%s>)%s|(?P<%s>%s))\r\n" % (
            re.escape(name), group, again_name(name).encode(), value, group_name(name).encode(), value))
        initials.add(name[:1])
    # The refused branch comes last: the captured lines, far more common, are tried first.
    group += 1
    flags.append(group)
    refused_group = group
    branches.append(rb"(?P<%s>(?i:%s)):[^\r]*+\r\n" % (REFUSED.encode(), b"|".join(_spellings(declared))))
    guard = b"".join(sorted(initials | {initial.upper() for initial in initials}))
    line = rb"(?=[^%s])%s|%s|%s" % (guard, _CANONICAL_LINE, b"|".join(branches), _CANONICAL_LINE)
    fail_if_flagged = b"".join(rb"(?(%d)(?!))" % flag for flag in flags)
    # The repetition sits in an atomic group, not in a possessive `{0,n}+`: CPython 3.11.7 raises SystemError
    # ("The span of capturing group is wrong") for a possessive repeat of groups that capture.
    pattern = re.compile(
        rb"%s(?P<%s>(?>(?:%s){0,%d}))\r\n%s" % (start, SECTION.encode(), line, max_count, fail_if_flagged)
    )
    # The conditionals refer to groups by number (a conditional cannot name a group defined after it).
    assert pattern.groupindex[REFUSED] == refused_group
    assert all(pattern.groupindex[group_name(name)] == pattern.groupindex[again_name(name)] + 1
               for name in declared.captured)
    return pattern


def cut_groups(pattern: re.Pattern[bytes], declared: HeadFields) -> tuple[tuple[int, int], ...]:
    """The hop-by-hop lines the fast path cuts out of `forwardable`: (value group, length of `Name: `)."""
    return tuple((pattern.groupindex[group_name(name)], len(name) + len(NAME_SEPARATOR)) for name in declared.cut)


FastPath = tuple[re.Pattern[bytes], tuple[tuple[int, int], ...]]
# The expression and its cut groups per head kind, built once: a parser is made per connection, and its cut
# groups, derived from the expression's group names, cost as much to recompute as the rest of the parser's
# set-up (docs/performance.md, "New connections"). Keyed by the declaration's identity (HeadFields has no
# __eq__), never by a pattern: hashing an re.Pattern hashes its whole compiled program.
_FAST_PATHS: Final[dict[tuple[bool, HeadFields, int], FastPath]] = {}


def fast_path(request: bool, declared: HeadFields, max_count: int) -> FastPath:
    """The (cached) fast-path expression of one head kind, the field count limit part of it, and the
    hop-by-hop lines it cuts (cut_groups)."""
    key = (request, declared, max_count)
    found = _FAST_PATHS.get(key)
    if found is None:
        pattern = fast_head_re(REQUEST_START if request else RESPONSE_START, declared, max_count)
        found = (pattern, cut_groups(pattern, declared))
        _FAST_PATHS[key] = found
    return found


def fast_re(request: bool, declared: HeadFields, max_count: int) -> re.Pattern[bytes]:
    """The (cached) fast-path expression of one head kind; the field count limit is part of it."""
    return fast_path(request, declared, max_count)[0]


def value_indexes(pattern: re.Pattern[bytes]) -> dict[str, int]:
    """Index in `match.groups()` of each named group."""
    return {name: number - 1 for name, number in pattern.groupindex.items()}


# Where each value sits in `match.groups()` of the default expressions. A parser built with an extended
# declaration (HeadFields.extended) keeps these numbers: its extra groups come after them.
REQUEST_GROUP: Final = value_indexes(fast_re(True, REQUEST_FIELDS, MAX_HEADER_COUNT))
RESPONSE_GROUP: Final = value_indexes(fast_re(False, RESPONSE_FIELDS, MAX_HEADER_COUNT))


_CONNECTION_PREFIX: Final = len(b"Connection") + len(NAME_SEPARATOR)


def forwardable_section(raw: bytes, offset: int, match: re.Match[bytes], connection: bytes | None,
                        connection_group: int, only_connection: bool, groups: tuple[tuple[int, int], ...]) -> bytes:
    """`raw` (which starts at `offset` in the matched buffer) without its hop-by-hop lines: when
    `only_connection` (no other cut field was captured), at most the Connection line (value group
    `connection_group`), the usual case, cut in place; else every line `groups` (cut_groups) hold."""
    if not only_connection:
        return without_lines(raw, offset, match, groups)
    if connection is None:
        return raw
    cut = match.start(connection_group) - _CONNECTION_PREFIX - offset
    return raw[:cut] + raw[cut + _CONNECTION_PREFIX + len(connection) + len(CRLF) :]


def without_lines(raw: bytes, offset: int, match: re.Match[bytes], groups: tuple[tuple[int, int], ...]) -> bytes:
    """`raw` (which starts at `offset` in the matched buffer) without the lines whose value `groups` hold."""
    spans = []
    for group, prefix in groups:
        start = match.start(group)
        if start >= 0:
            spans.append((start - prefix - offset, match.end(group) + len(CRLF) - offset))
    spans.sort()
    pieces = []
    previous = 0
    for start, end in spans:
        pieces.append(raw[previous:start])
        previous = end
    pieces.append(raw[previous:])
    return b"".join(pieces)
