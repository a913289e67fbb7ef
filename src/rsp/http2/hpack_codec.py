"""HPACK (RFC 7541): rsp's own header block decoder and encoder, compiled with mypyc.

    decoder = HeaderDecoder(max_table_size=4096, max_header_list_size=65536)
    fields = decoder.decode(block)                 # [(name, value), ...] as bytes; raises HpackDecodingError
    encoder = HeaderEncoder()
    block = encoder.encode([(b":status", b"200"), ...])

The `hpack` package does the same in pure Python at ~30 000 instructions per field (its per-bit-prefix
Huffman dict, a memoryview slice per field, a logging call per field); this decoder reads the block in place.
It stays the oracle: tests/http2/test_hpack_codec.py checks both directions against it.

Bounds (HPACK bombs): the header list size (§4.1's entry sizes summed, RFC 9113 §6.5.2) is checked as each
field is decoded, before it joins the list, so a block that references one large dynamic entry many times
stops at the limit; integers stop at MAX_INTEGER_OCTETS continuation octets; a dynamic table size update
above SETTINGS_HEADER_TABLE_SIZE is refused (§6.3).
"""

from __future__ import annotations

from typing import Final, cast

from rsp.errors import HpackDecodingError
from rsp.http2 import huffman
from rsp.http2.hpack_tables import (
    DEFAULT_TABLE_SIZE,
    ENTRY_OVERHEAD,
    STATIC_FIELDS,
    STATIC_NAMES,
    DynamicTable,
)
from rsp.pipeline.messages import UNIQUE_VALUE_NAMES

# An integer (§5.1) of more continuation octets than this is refused: 4 of them carry 28 bits, past any
# index, length or table size a header block of rsp's bounded size can mean.
MAX_INTEGER_OCTETS: Final = 4
# RFC 9113 §6.5.2 has no default for SETTINGS_MAX_HEADER_LIST_SIZE; rsp's listeners always set one.
DEFAULT_MAX_HEADER_LIST_SIZE: Final = 65536
ENHANCE_YOUR_CALM: Final = 0xB  # the code for a header list over the limit (as h2 answers it)

# Field representations (§6): the first octet's pattern.
_INDEXED: Final = 0x80  # §6.1, 7-bit index
_INCREMENTAL: Final = 0x40  # §6.2.1, 6-bit name index
_SIZE_UPDATE: Final = 0x20  # §6.3, 5-bit size
_SIZE_UPDATE_MASK: Final = 0xE0  # the pattern's bits (001xxxxx)
_NEVER_INDEXED: Final = 0x10  # §6.2.3, 4-bit name index
_WITHOUT_INDEXING: Final = 0x00  # §6.2.2, 4-bit name index
_HUFFMAN: Final = 0x80  # §5.2, the H bit of a string's length

# Fields the encoder never puts in the dynamic table: credentials are never indexed (§7.1.3, so an
# intermediary does not index them either); values that change with every response would only evict the
# fields that repeat.
NEVER_INDEXED_NAMES: Final = frozenset((b"authorization", b"proxy-authorization", b"set-cookie"))
UNINDEXED_NAMES: Final = frozenset((b"content-length", b"etag", b"last-modified", b"age", b"location",
                                    b"content-range", b":path", b"expires", b"x-request-id"))
# Values longer than this are sent without indexing: a large entry evicts many small ones.
MAX_INDEXED_VALUE: Final = 256
# A field sent without indexing under a static-table name encodes the same whatever the connection's state
# (§6.2.2), and responses repeat them (content-length: 1234): their encodings are kept, at most
# MAX_LITERAL_MEMO of up to MAX_MEMO_LITERAL_VALUE octets per process.
MAX_LITERAL_MEMO: Final = 1024
MAX_MEMO_LITERAL_VALUE: Final = 64
_LITERALS: Final[dict[tuple[bytes, bytes], bytes]] = {}
# Fields of rsp.pipeline.messages.UNIQUE_VALUE_NAMES (a request or trace id per response) are sent as literals
# without indexing (§6.2.2), so they never churn the dynamic table nor the encoder's memos, and their values are
# not Huffman-coded (§5.2 leaves the choice to the encoder): Huffman-coding 32 hex digits saves 10 octets for
# ~500 instructions an octet compiled, paid on every response (HAProxy's encoder never Huffman-codes at all).
# A literal name's encoding (its string, §5.2) depends on nothing but the name: at most MAX_NAME_LITERALS names
# of up to MAX_MEMO_NAME octets are kept per process.
MAX_NAME_LITERALS: Final = 256
MAX_MEMO_NAME: Final = 64
_NAME_LITERALS: Final[dict[bytes, bytes]] = {}
# Per connection, each field's whole encoding while the dynamic table has had no insertion (an insertion moves
# every dynamic index, §2.3.3): a field a backend repeats is one dict lookup. At most MAX_KNOWN_FIELDS fields,
# with values of up to MAX_INDEXED_VALUE octets.
MAX_KNOWN_FIELDS: Final = 128
# Fields not kept there: values that never repeat, and credentials (kept in no memo of rsp's).
_UNKEPT_NAMES: Final = UNIQUE_VALUE_NAMES | NEVER_INDEXED_NAMES
# Per connection, the decoded fields of header blocks that changed nothing in the dynamic table (no insertion,
# no size update): a client repeats such blocks byte for byte (h2load's every request after the first; a
# browser's requests for the same asset), and one decodes to the same fields for as long as the table holds
# the same entries (an index means whatever entry is at that place, §2.3.3). Entries only leave from the
# oldest end and only an insertion adds one, so the same insertion count and the same number of entries mean
# the same table: the memo is kept for that pair and cleared when it changes. At most MAX_BLOCK_MEMO blocks
# of up to MAX_MEMO_BLOCK octets.
MAX_BLOCK_MEMO: Final = 32
MAX_MEMO_BLOCK: Final = 256


class HeaderDecoder:
    """Decodes the header blocks of one connection direction in order (§2.2: the table is shared state).

    `max_table_size`: our SETTINGS_HEADER_TABLE_SIZE, the most a size update may ask for (§4.2).
    `max_header_list_size`: our SETTINGS_MAX_HEADER_LIST_SIZE, enforced while decoding.
    """

    __slots__ = ("_memo", "_memo_entries", "_memo_inserted", "max_header_list_size", "max_table_size", "table")

    def __init__(self, max_table_size: int = DEFAULT_TABLE_SIZE,
                 max_header_list_size: int = DEFAULT_MAX_HEADER_LIST_SIZE) -> None:
        self.table = DynamicTable(DEFAULT_TABLE_SIZE)
        self.max_table_size = max_table_size
        self.max_header_list_size = max_header_list_size
        # block -> (its fields, their header list size), valid while the table's insertion count and number
        # of entries are these two (see MAX_BLOCK_MEMO).
        self._memo: dict[bytes, tuple[list[tuple[bytes, bytes]], int]] = {}
        self._memo_inserted = 0
        self._memo_entries = 0

    def decode(self, data: bytes) -> list[tuple[bytes, bytes]]:
        """The fields of one complete header block, in order. The list may be shared with an earlier call
        for the same block (a memo): the caller only reads it."""
        table = self.table
        inserted = table.inserted
        entries = len(table.entries)
        memo = self._memo
        if inserted != self._memo_inserted or entries != self._memo_entries:
            memo.clear()
            self._memo_inserted = inserted
            self._memo_entries = entries
        known = memo.get(data)
        if known is not None:
            # The checks that depend on more than the block and the table, made again.
            if known[1] > self.max_header_list_size:
                raise HpackDecodingError(f"header list larger than {self.max_header_list_size} octets "
                                         "(RFC 9113 §6.5.2)", ENHANCE_YOUR_CALM)
            if table.max_size > self.max_table_size:
                raise HpackDecodingError("dynamic table larger than SETTINGS_HEADER_TABLE_SIZE (RFC 7541 §4.2)")
            return known[0]
        fields, list_size = self._decode(data)
        if (table.inserted == inserted and len(table.entries) == entries and len(memo) < MAX_BLOCK_MEMO
                and 0 < len(data) <= MAX_MEMO_BLOCK and data[0] & _SIZE_UPDATE_MASK != _SIZE_UPDATE):
            memo[data] = (fields, list_size)
        return fields

    def _decode(self, data: bytes) -> tuple[list[tuple[bytes, bytes]], int]:
        """The fields of one header block and their header list size (§4.1), decoded in full."""
        fields: list[tuple[bytes, bytes]] = []
        table = self.table
        limit = self.max_header_list_size
        list_size = 0
        pos = 0
        end = len(data)
        while pos < end:
            first = data[pos]
            if first & _INDEXED:
                index, pos = _integer(data, pos, end, 7)
                field = table.get(index)
                if field is None:
                    raise HpackDecodingError(f"index {index} is not in the tables (RFC 7541 §2.3.3)")
            elif first & _INCREMENTAL:
                field, pos = self._literal(data, pos, end, 6)
                table.add(field[0], field[1])
            elif first & _SIZE_UPDATE:
                # §4.2: only at the start of a block (before any field).
                if fields:
                    raise HpackDecodingError("dynamic table size update after a field (RFC 7541 §4.2)")
                size, pos = _integer(data, pos, end, 5)
                if size > self.max_table_size:
                    raise HpackDecodingError(
                        f"dynamic table size update to {size}, over {self.max_table_size} (RFC 7541 §6.3)")
                table.set_max_size(size)
                continue
            else:
                field, pos = self._literal(data, pos, end, 4)
            list_size += len(field[0]) + len(field[1]) + ENTRY_OVERHEAD
            if list_size > limit:
                raise HpackDecodingError(f"header list larger than {limit} octets (RFC 9113 §6.5.2)",
                                         ENHANCE_YOUR_CALM)
            fields.append(field)
        if table.max_size > self.max_table_size:
            # Our SETTINGS lowered the size and the peer's encoder has not said it took the change (§4.2).
            raise HpackDecodingError("dynamic table larger than SETTINGS_HEADER_TABLE_SIZE (RFC 7541 §4.2)")
        return fields, list_size

    def _literal(self, data: bytes, pos: int, end: int, prefix: int) -> tuple[tuple[bytes, bytes], int]:
        """A literal field (§6.2): an indexed or literal name, then a literal value."""
        index, pos = _integer(data, pos, end, prefix)
        if index:
            named = self.table.get(index)
            if named is None:
                raise HpackDecodingError(f"name index {index} is not in the tables (RFC 7541 §2.3.3)")
            name = named[0]
        else:
            name, pos = _string(data, pos, end)
        value, pos = _string(data, pos, end)
        return (name, value), pos


def _integer(data: bytes, pos: int, end: int, prefix: int) -> tuple[int, int]:
    """An integer with an N-bit prefix starting at data[pos] (§5.1): (value, position after it)."""
    mask = (1 << prefix) - 1
    value = data[pos] & mask
    pos += 1
    if value < mask:
        return value, pos
    shift = 0
    for _ in range(MAX_INTEGER_OCTETS):
        if pos >= end:
            raise HpackDecodingError("header block ends inside an integer (RFC 7541 §5.1)")
        octet = data[pos]
        pos += 1
        value += (octet & 0x7F) << shift
        if not octet & 0x80:
            return value, pos
        shift += 7
    raise HpackDecodingError(f"integer longer than {MAX_INTEGER_OCTETS} continuation octets (RFC 7541 §5.1)")


def _string(data: bytes, pos: int, end: int) -> tuple[bytes, int]:
    """A string literal (§5.2): (its octets, Huffman-decoded when the H bit is set; position after it)."""
    if pos >= end:
        raise HpackDecodingError("header block ends before a string (RFC 7541 §5.2)")
    coded = data[pos] & _HUFFMAN
    length, pos = _integer(data, pos, end, 7)
    stop = pos + length
    if stop > end:
        raise HpackDecodingError("string longer than the header block (RFC 7541 §5.2)")
    if coded:
        return huffman.decode(data, pos, stop), stop
    return data[pos:stop], stop


def _put_integer(out: bytearray, value: int, prefix: int, pattern: int) -> None:
    """Append `value` with an N-bit prefix, the first octet's other bits being `pattern` (§5.1)."""
    mask = (1 << prefix) - 1
    if value < mask:
        out.append(pattern | value)
        return
    out.append(pattern | mask)
    value -= mask
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _put_string(out: bytearray, value: bytes) -> None:
    """A string literal, Huffman-coded when that is shorter (§5.2)."""
    coded = huffman.encoded_length(value)
    if coded < len(value):
        _put_integer(out, coded, 7, _HUFFMAN)
        huffman.encode(value, out)
    else:
        _put_integer(out, len(value), 7, 0)
        out += value


def _name_literal(name: bytes) -> bytes:
    """A literal without indexing with a literal name (§6.2.2): its first octet and the name's string."""
    literal = _NAME_LITERALS.get(name)
    if literal is None:
        encoded = bytearray()
        encoded.append(_WITHOUT_INDEXING)
        _put_string(encoded, name)
        literal = bytes(encoded)
        if len(_NAME_LITERALS) < MAX_NAME_LITERALS and len(name) <= MAX_MEMO_NAME:
            _NAME_LITERALS[name] = literal
    return literal


class HeaderEncoder:
    """Encodes the header blocks of one connection direction in order.

    `set_max_table_size(n)`: the peer's SETTINGS_HEADER_TABLE_SIZE; the encoder uses at most that and
    signals the change at the start of its next block (§4.2, §6.3).
    """

    __slots__ = ("_fields", "_known", "_known_at", "_last_block", "_last_fields", "_last_inserted", "_last_parts",
                 "_names", "_pending_sizes", "table")

    def __init__(self) -> None:
        self.table = DynamicTable(DEFAULT_TABLE_SIZE)
        self._fields: dict[tuple[bytes, bytes], int] = {}  # field -> absolute number in the dynamic table
        self._names: dict[bytes, int] = {}  # name -> absolute number of its newest entry
        self._pending_sizes: list[int] = []  # size updates to signal at the next block's start
        # The last block that added nothing to the dynamic table, its fields, each field's encoding, and the
        # table's insertions then: the same fields with the table unchanged since encode to the same bytes (a
        # backend's repeated head), and a field equal to the one in its place there to the same encoding (a
        # head that differs in one field: a new X-Request-Id). Fields are held as objects, not unboxed, so a
        # field rsp.http2.heads took from the last head compares by identity (see heads._LastFields).
        self._last_fields: list[object] = []
        self._last_parts: list[bytes] = []
        self._last_inserted = -1
        self._last_block = b""
        # field -> its encoding, valid while table.inserted == _known_at (see MAX_KNOWN_FIELDS).
        self._known: dict[object, bytes] = {}
        self._known_at = -1

    def set_max_table_size(self, size: int) -> None:
        if size == self.table.max_size and not self._pending_sizes:
            return
        # §4.2: the smallest size reached between two blocks is signalled, then the final one.
        if self._pending_sizes:
            smallest = min(self._pending_sizes[0], size)
            self._pending_sizes = [smallest] if smallest == size else [smallest, size]
        else:
            self._pending_sizes = [size]
        self._last_inserted = -1  # (the table may lose entries without an insertion)
        self._known_at = -1
        self._evicted(self.table.set_max_size(size))

    def encode(self, fields: list[tuple[bytes, bytes]]) -> bytes:
        inserted = self.table.inserted
        pending = self._pending_sizes
        if not pending and inserted == self._last_inserted and fields == self._last_fields:
            return self._last_block
        # The block is joined from each field's encoding: appending to a list costs a fraction of a bytearray's
        # `+=` compiled (a generic in-place add, ~400 instructions).
        parts: list[bytes] = []
        if pending:
            sizes = bytearray()
            for size in pending:
                _put_integer(sizes, size, 5, _SIZE_UPDATE)
            parts.append(bytes(sizes))
            self._pending_sizes = []
        known = self._known
        if self._known_at != inserted:
            known.clear()
            self._known_at = inserted
        table = self.table
        boxed = cast(list[object], fields)
        last_fields = self._last_fields
        last_parts = self._last_parts
        # The last block's encodings hold while the table is as it was then (and nothing in this block has
        # been inserted yet: an insertion moves every dynamic index, §2.3.3).
        placed = len(last_fields) if not pending and inserted == self._last_inserted else 0
        for i in range(len(boxed)):
            field = boxed[i]
            if i < placed and field == last_fields[i]:
                parts.append(last_parts[i])
                continue
            encoded = known.get(field)
            if encoded is None:
                out = bytearray()
                name, value = cast(tuple[bytes, bytes], field)
                self._field(out, name, value)
                encoded = bytes(out)
                if table.inserted != self._known_at:
                    # This field went into the table: every index known so far moved.
                    known.clear()
                    self._known_at = table.inserted
                    placed = 0
                elif (len(known) < MAX_KNOWN_FIELDS and len(value) <= MAX_INDEXED_VALUE
                      and name not in _UNKEPT_NAMES):
                    known[field] = encoded
            parts.append(encoded)
        block = b"".join(parts)
        if self.table.inserted == inserted and not pending:
            self._last_fields = list(boxed)  # (a copy: the caller's list may change)
            self._last_parts = parts
            self._last_inserted = inserted
            self._last_block = block
        return block

    def _field(self, out: bytearray, name: bytes, value: bytes) -> None:
        field = (name, value)
        index = STATIC_FIELDS.get(field, 0)
        if not index:
            absolute = self._fields.get(field)
            if absolute is not None:
                index = self.table.absolute_to_index(absolute)
        if index:
            _put_integer(out, index, 7, _INDEXED)  # §6.1
            return
        name_index = STATIC_NAMES.get(name, 0)
        if name_index and name in UNINDEXED_NAMES:
            literal = _LITERALS.get(field)
            if literal is None:
                encoded = bytearray()
                _put_integer(encoded, name_index, 4, _WITHOUT_INDEXING)  # §6.2.2
                _put_string(encoded, value)
                literal = bytes(encoded)
                if len(_LITERALS) < MAX_LITERAL_MEMO and len(value) <= MAX_MEMO_LITERAL_VALUE:
                    _LITERALS[field] = literal
            out += literal
            return
        if not name_index:
            if name in UNIQUE_VALUE_NAMES:
                out += _name_literal(name)  # §6.2.2, never in the table: no index to look for
                _put_integer(out, len(value), 7, 0)  # not Huffman-coded (UNIQUE_VALUE_NAMES)
                out += value
                return
            absolute = self._names.get(name)
            if absolute is not None:
                name_index = self.table.absolute_to_index(absolute)
        if name in NEVER_INDEXED_NAMES:
            _put_integer(out, name_index, 4, _NEVER_INDEXED)  # §6.2.3
        elif name in UNINDEXED_NAMES or len(value) > MAX_INDEXED_VALUE:
            _put_integer(out, name_index, 4, _WITHOUT_INDEXING)  # §6.2.2
        else:
            _put_integer(out, name_index, 6, _INCREMENTAL)  # §6.2.1
            self._evicted(self.table.add(name, value))
            if self.table.entries and self.table.entries[0] == field:
                absolute = self.table.inserted - 1
                self._fields[field] = absolute
                self._names[name] = absolute
        if not name_index:
            _put_string(out, name)
        _put_string(out, value)

    def _evicted(self, fields: list[tuple[bytes, bytes]]) -> None:
        """Forget evicted entries (a map entry is dropped only if no newer copy of it lives)."""
        table = self.table
        for field in fields:
            absolute = self._fields.get(field)
            if absolute is not None and not table.absolute_to_index(absolute):
                del self._fields[field]
            absolute = self._names.get(field[0])
            if absolute is not None and not table.absolute_to_index(absolute):
                del self._names[field[0]]

