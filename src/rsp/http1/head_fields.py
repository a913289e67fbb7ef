"""The declaration of what decides a head's verdict, one per head kind: the key of every head cache.

A head's verdict (framing, keep-alive, Connection options, Host, upgrade, 100-continue, and whether its
field lines may be forwarded as received) is built from a few field values only. This module names them,
and everything that has to agree on them is derived from these two declarations:

- the fast path's expression (rsp.http1.fast_path) captures the values of the `captured` fields, in the
  declared order, and does not match a head with a `refused` field (or with any field it cannot vouch
  for: a look-alike name, a repeated captured field);
- the general path (request_parser, response_parser) reads the captured fields only, through the table
  `fields_table()` builds from the declaration;
- the verdict functions (rsp.http1.verdict) receive the captured values by declared name, nothing else;
- the near memo (rsp.http1.memo) never lets a captured line be one whose value changes between heads;
- the Connection options that leave `forwardable` valid (`vetted`) are those naming a field that is cut
  (captured and hop-by-hop) or cannot be present (refused).

So a feature that makes a verdict depend on another header has to declare it here (the verdict function
cannot see it otherwise), and then the fast path captures it and no memo treats it as a value that may
change: tests/http1/test_head_fields.py checks the declaration against what the parsers do.
"""

from __future__ import annotations

from typing import Final, final

from rsp.http1 import fields
from rsp.http1.forward import HOP_BY_HOP


@final
class HeadFields:
    """The fields that decide one kind of head (lower-case names).

    captured: the values the verdict reads (and the hop-by-hop fields the fast path leaves out of
        `forwardable`), in the order of the fast path's groups.
    refused: fields whose presence sends a head to the general path: hop-by-hop fields the fast path
        does not cut, fields forwarding rewrites, and "close" (the field `Connection: close` names).
    Derived: `cut`, the captured hop-by-hop fields; `vetted`, the Connection options that leave
    `forwardable` valid; `never_volatile`, the names whose lines the near memo may never take as changing.
    """

    __slots__ = ("captured", "cut", "never_volatile", "refused", "vetted")

    def __init__(self, captured: tuple[bytes, ...], refused: tuple[bytes, ...]) -> None:
        if len(set(captured + refused)) != len(captured) + len(refused):
            raise ValueError("a field is declared twice")
        missing = HOP_BY_HOP.difference(captured, refused)
        if missing:
            # A hop-by-hop line the fast path neither cuts nor refuses would be forwarded verbatim.
            raise ValueError(f"hop-by-hop fields neither captured nor refused: {sorted(missing)}")
        self.captured: Final = captured
        self.refused: Final = refused
        self.cut: Final = tuple(name for name in captured if name in HOP_BY_HOP)
        self.vetted: Final = frozenset(self.cut + refused)
        self.never_volatile: Final = frozenset(captured)

    def extended(self, captured: tuple[bytes, ...] = (), refused: tuple[bytes, ...] = ()) -> HeadFields:
        """This declaration with more fields (appended: the groups of the declared ones keep their numbers)."""
        return HeadFields(self.captured + captured, self.refused + refused)


def group_name(field: bytes) -> str:
    """The name of the fast path's group that holds a captured field's value."""
    return field.decode("ascii").replace("-", "_")


# Requests: Host routes; Content-Length and Transfer-Encoding frame; Connection, Upgrade and Expect decide
# keep-alive, the protocol switch and 100-continue; Keep-Alive is captured to be cut. Forwarding rebuilds
# X-Forwarded-* and Forwarded, so a request carrying one is not forwarded verbatim.
REQUEST_FIELDS: Final = HeadFields(
    captured=(b"host", b"content-length", b"transfer-encoding", b"connection", b"keep-alive", b"upgrade", b"expect"),
    refused=(
        b"te", b"trailer", b"proxy-connection", b"close", b"forwarded", b"x-forwarded-for", b"x-forwarded-proto",
        b"x-forwarded-host",
    ),
)
# Responses: framing and keep-alive; Upgrade only matters for a 101, which is never remembered.
RESPONSE_FIELDS: Final = HeadFields(
    captured=(b"content-length", b"transfer-encoding", b"connection", b"keep-alive"),
    refused=(b"te", b"trailer", b"proxy-connection", b"upgrade", b"close"),
)

# -- the general path's table --------------------------------------------------------------------------
# What the general path does with a field line, by lower-case name. b"" is the marker FIELD_LINE_RE gives a
# line outside the grammar.
BAD: Final = 0
HOST: Final = 1
CONTENT_LENGTH: Final = 2
TRANSFER_ENCODING: Final = 3
CONNECTION: Final = 4
UPGRADE: Final = 5
EXPECT: Final = 6
LOOKALIKE: Final = 7
NOT_READ: Final = 8  # captured for the fast path only (cut from forwardable), no value the verdict reads
_KEYS: Final = {
    b"host": HOST,
    b"content-length": CONTENT_LENGTH,
    b"transfer-encoding": TRANSFER_ENCODING,
    b"connection": CONNECTION,
    b"upgrade": UPGRADE,
    b"expect": EXPECT,
}


def fields_table(declared: HeadFields) -> dict[bytes, int]:
    """The general path's table for one head kind: its captured fields, look-alike names and bad lines.

    Names that become one of the look-alike targets once "-" and "_" are confused: CGI, WSGI, PHP and Rails
    all map both to "_" (Transfer_Encoding and Transfer-Encoding are the same HTTP_TRANSFER_ENCODING), which
    splits framing between rsp and such a backend, or lets a client's X_Forwarded_For stand beside the
    X-Forwarded-For rsp writes. nginx drops names with "_" by default for these reasons; rsp refuses the
    ones that collide. Being a dictionary entry, the check costs nothing per field.
    """
    table = {b"": BAD}
    for name in fields.LOOKALIKE_TARGETS:
        table.update((variant, LOOKALIKE) for variant in fields.separator_variants(name))
    table.update((name, _KEYS.get(name, NOT_READ)) for name in declared.captured)
    return table
