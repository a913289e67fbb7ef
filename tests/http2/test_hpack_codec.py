"""rsp's HPACK (rsp.http2.hpack_codec, rsp.http2.huffman) against RFC 7541's examples and the `hpack` package
as oracle, both directions, over sequences of blocks (the dynamic table is state shared across blocks)."""

from __future__ import annotations

import hpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rsp.errors import HpackDecodingError
from rsp.http2 import huffman
from rsp.http2.hpack_codec import HeaderDecoder, HeaderEncoder

Fields = list[tuple[bytes, bytes]]

REQUESTS: list[Fields] = [
    [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"), (b":authority", b"www.example.com")],
    [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"), (b":authority", b"www.example.com"),
     (b"cache-control", b"no-cache")],
    [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/index.html"),
     (b":authority", b"www.example.com"), (b"custom-key", b"custom-value")],
]
RESPONSES: list[Fields] = [
    [(b":status", b"302"), (b"cache-control", b"private"), (b"date", b"Mon, 21 Oct 2013 20:13:21 GMT"),
     (b"location", b"https://www.example.com")],
    [(b":status", b"307"), (b"cache-control", b"private"), (b"date", b"Mon, 21 Oct 2013 20:13:21 GMT"),
     (b"location", b"https://www.example.com")],
    [(b":status", b"200"), (b"cache-control", b"private"), (b"date", b"Mon, 21 Oct 2013 20:13:22 GMT"),
     (b"location", b"https://www.example.com"), (b"content-encoding", b"gzip"),
     (b"set-cookie", b"foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1")],
]
# RFC 7541 Appendix C.3 (requests, no Huffman), C.4 (requests, Huffman), C.6 (responses, Huffman, table 256).
C3 = ["828684410f7777772e6578616d706c652e636f6d", "828684be58086e6f2d6361636865",
      "828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565"]
C4 = ["828684418cf1e3c2e5f23a6ba0ab90f4ff", "828684be5886a8eb10649cbf",
      "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf"]
C6 = ["488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863c78f0b97c8e9ae82ae43d3",
      "4883640effc1c0bf",
      "88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f"
      "3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007"]


@pytest.mark.parametrize(("blocks", "expected", "table_size"),
                         [(C3, REQUESTS, 4096), (C4, REQUESTS, 4096), (C6, RESPONSES, 256)])
def test_rfc7541_appendix_c(blocks: list[str], expected: list[Fields], table_size: int) -> None:
    decoder = HeaderDecoder(max_table_size=table_size)
    decoder.table.set_max_size(table_size)
    for block, fields in zip(blocks, expected, strict=True):
        assert decoder.decode(bytes.fromhex(block)) == fields
    oracle = hpack.Decoder()
    oracle.header_table_size = table_size
    for block in blocks:
        oracle.decode(bytes.fromhex(block), raw=True)
    assert list(decoder.table.entries) == [tuple(e) for e in oracle.header_table.dynamic_entries]


def test_rfc7541_c6_table_evicts_to_its_size() -> None:
    decoder = HeaderDecoder(max_table_size=256)
    decoder.table.set_max_size(256)
    for block in C6:
        decoder.decode(bytes.fromhex(block))
    # C.6.3's table: three entries, 215 octets (the RFC's figure).
    assert decoder.table.size == 215
    assert [name for name, _ in decoder.table.entries] == [b"set-cookie", b"content-encoding", b"date"]


names = st.sampled_from([b":status", b"content-type", b"date", b"server", b"x-custom", b"set-cookie",
                         b"authorization", b"content-length", b"cache-control", b"vary"]) | \
    st.binary(min_size=1, max_size=20)
values = st.binary(max_size=40) | st.sampled_from([b"200", b"text/html", b"gzip", b"", b"x" * 300])
blocks = st.lists(st.lists(st.tuples(names, values), max_size=12), min_size=1, max_size=8)


@settings(max_examples=200, deadline=None)
@given(blocks, st.sampled_from([4096, 256, 0, 65536]))
def test_our_encoder_decodes_with_hpack(sequence: list[Fields], table_size: int) -> None:
    ours = HeaderEncoder()
    ours.set_max_table_size(table_size)
    oracle = hpack.Decoder()
    oracle.max_allowed_table_size = max(table_size, 4096)
    for fields in sequence:
        decoded = oracle.decode(ours.encode(fields), raw=True)
        assert [(bytes(n), bytes(v)) for n, v in decoded] == fields


@settings(max_examples=200, deadline=None)
@given(blocks, st.booleans())
def test_hpack_encoder_decodes_with_ours(sequence: list[Fields], use_huffman: bool) -> None:
    oracle = hpack.Encoder()
    ours = HeaderDecoder(max_header_list_size=1 << 20)
    for fields in sequence:
        assert ours.decode(oracle.encode(fields, huffman=use_huffman)) == fields
    assert list(ours.table.entries) == [tuple(e) for e in oracle.header_table.dynamic_entries]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_huffman_round_trip(data: bytes) -> None:
    out = bytearray()
    huffman.encode(data, out)
    assert len(out) == huffman.encoded_length(data)
    assert huffman.decode(bytes(out), 0, len(out)) == data
    assert bytes(out) == hpack.Encoder().huffman_coder.encode(data)


def test_huffman_rejects_bad_padding() -> None:
    out = bytearray()
    huffman.encode(b"a", out)  # 'a' is 5 bits: 3 bits of padding (ones)
    with pytest.raises(HpackDecodingError):
        huffman.decode(bytes([out[0] & 0xF8]), 0, 1)  # padding of zeros
    with pytest.raises(HpackDecodingError):
        huffman.decode(bytes(out) + b"\xff", 0, 2)  # 11 bits of padding (over 7)
    with pytest.raises(HpackDecodingError):
        huffman.decode(b"\xff\xff\xff\xff", 0, 4)  # EOS (30 ones) inside the string


def test_table_size_change_is_signalled_and_followed() -> None:
    encoder = HeaderEncoder()
    decoder = HeaderDecoder(max_table_size=4096)
    first = [(b"x-one", b"1"), (b"x-two", b"2")]
    assert decoder.decode(encoder.encode(first)) == first
    encoder.set_max_table_size(0)  # the peer's SETTINGS_HEADER_TABLE_SIZE went to 0 ...
    encoder.set_max_table_size(100)  # ... then to 100 before the next block: both signalled (§4.2)
    block = encoder.encode(first)
    assert block[:2] == bytes([0x20, 0x3F])  # size update 0, then 100 (5-bit prefix, continued)
    assert decoder.decode(block) == first
    assert decoder.table.max_size == 100


def test_size_update_over_the_setting_is_refused() -> None:
    decoder = HeaderDecoder(max_table_size=4096)
    with pytest.raises(HpackDecodingError):
        decoder.decode(bytes([0x3F, 0xE2, 0x1F]))  # size update to 4097 (31 + 0x62 + 31 << 7)


def test_size_update_after_a_field_is_refused() -> None:
    with pytest.raises(HpackDecodingError):
        HeaderDecoder().decode(bytes([0x82, 0x20]))


@pytest.mark.parametrize("block", [
    b"\x80",  # index 0 (§6.1)
    b"\xbf\x7f",  # index 63 + 127 with an empty dynamic table
    b"\x40\x85ab",  # string longer than the block
    b"\xff\xff\xff\xff\xff\xff\x01",  # integer with too many continuation octets
    b"\x40",  # block ends before the name
])
def test_malformed_blocks_are_refused(block: bytes) -> None:
    with pytest.raises(HpackDecodingError) as caught:
        HeaderDecoder().decode(block)
    assert caught.value.error_code == 0x9  # COMPRESSION_ERROR (RFC 9113 §4.3)


def test_hpack_bomb_stops_at_the_header_list_limit() -> None:
    """One 4000-octet entry referenced over and over: refused when the list passes the limit, before the
    references past it are read."""
    big = (b"x-bomb", b"b" * 4000)
    encoder = hpack.Encoder()
    block = encoder.encode([big]) + bytes([0xBE]) * 10_000  # index 62: the entry just added
    decoder = HeaderDecoder(max_header_list_size=16384)
    with pytest.raises(HpackDecodingError) as caught:
        decoder.decode(block)
    assert caught.value.error_code == 0xB  # ENHANCE_YOUR_CALM


def test_credentials_are_never_indexed() -> None:
    encoder = HeaderEncoder()
    block = encoder.encode([(b"authorization", b"Basic c2VjcmV0")])
    assert block[0] & 0xF0 == 0x10  # §6.2.3 literal never indexed
    assert not encoder.table.entries


def test_a_repeated_block_is_reused_only_while_the_table_is_unchanged() -> None:
    """HeaderEncoder reuses the last block for the same fields when the dynamic table did not change; the
    oracle (hpack) decodes every block, through insertions, a caller changing its list and a size change."""
    encoder = HeaderEncoder()
    oracle = hpack.Decoder()
    head = [(b":status", b"200"), (b"server", b"nginx"), (b"date", b"Sun, 06 Dec 2026 22:00:00 GMT")]
    first = encoder.encode(head)  # inserts server and date
    second = encoder.encode(head)  # indexed now: a different block, which inserts nothing
    third = encoder.encode(head)
    assert second != first and third == second and len(third) == 3
    head.append((b"x-request-id", b"1"))  # the caller's list changed: no stale block
    fourth = encoder.encode(head)
    encoder.set_max_table_size(0)  # the table empties without an insertion
    fifth = encoder.encode(head[:3])
    assert fifth[:1] == b"\x20"  # the size update first (RFC 7541 §6.3)
    for block, fields in ((first, head[:3]), (second, head[:3]), (third, head[:3]), (fourth, head),
                          (fifth, head[:3])):
        assert oracle.decode(block, raw=True) == fields


def test_a_request_id_is_a_plain_literal_that_leaves_the_table_alone() -> None:
    """x-request-id changes with every response: a literal without indexing (RFC 7541 §6.2.2), its value not
    Huffman-coded, so the dynamic table (and the encoder's per-field memo) stay as they were; the fields around
    it are reused from that memo, and the oracle decodes every block."""
    encoder = HeaderEncoder()
    oracle = hpack.Decoder()
    head = [(b":status", b"200"), (b"server", b"nginx"), (b"content-length", b"97")]
    blocks = []
    for n in range(4):
        fields = [*head, (b"x-request-id", b"%032x" % n)]
        blocks.append(encoder.encode(fields))
        assert oracle.decode(blocks[-1], raw=True) == fields
    assert list(encoder.table.entries) == [(b"server", b"nginx")]
    assert blocks[3].endswith(b"\x20" + b"%032x" % 3)  # the value's octets as they are, 32 of them
    assert blocks[3][-44] == 0x00  # §6.2.2 with a literal name (Huffman-coded: its length, 9 octets)
    assert blocks[2][:-32] == blocks[3][:-32]  # the same fields before it encode the same


def test_a_repeated_request_block_decodes_to_what_the_table_means_now() -> None:
    """HeaderDecoder keeps the fields of a block that changed nothing in the dynamic table (h2load's repeated
    requests), keyed on the block and the table's state: the same bytes after an insertion, or after a size
    update that evicts without inserting, mean what the table holds now (RFC 7541 §2.3.3), and the header list
    limit still holds for a kept block."""
    decoder = HeaderDecoder()
    indexed = b"\xbe"  # index 62: the newest dynamic entry (§2.3.3)
    assert decoder.decode(b"\x40\x03x-a\x011") == [(b"x-a", b"1")]  # §6.2.1: inserted
    first = decoder.decode(indexed)
    assert first == [(b"x-a", b"1")]
    assert decoder.decode(indexed) is first  # kept: the table did not change
    assert decoder.decode(b"\x40\x03x-b\x012") == [(b"x-b", b"2")]  # inserted: index 62 is x-b now
    assert decoder.decode(indexed) == [(b"x-b", b"2")]
    assert decoder.decode(b"\xbe\xbf") == [(b"x-b", b"2"), (b"x-a", b"1")]
    decoder.max_header_list_size = 40  # (one field of 3 + 1 + 32 fits, two do not)
    with pytest.raises(HpackDecodingError):
        decoder.decode(b"\xbe\xbf")
    decoder.max_header_list_size = 65536
    assert decoder.decode(b"\x20") == []  # §6.3: size 0 evicts both entries; nothing is inserted
    with pytest.raises(HpackDecodingError):
        decoder.decode(indexed)  # no dynamic entry left
    assert decoder.decode(b"\x3f\xe1\x1f") == []  # back to 4096, still empty
    with pytest.raises(HpackDecodingError):
        decoder.decode(indexed)
    oracle = hpack.Decoder()
    for block in (b"\x40\x03x-a\x011", indexed, indexed, b"\x40\x03x-c\x013", indexed):
        assert decoder.decode(block) == oracle.decode(block, raw=True)


def test_a_field_reuses_its_encoding_by_place_only_while_no_insertion_moved_the_indexes() -> None:
    """HeaderEncoder reuses a field's encoding from the same place in the last block while the dynamic table is
    as it was: not after a field earlier in the same block was inserted (every dynamic index moved, RFC 7541
    §2.3.3). The oracle (hpack) decodes every block."""
    encoder = HeaderEncoder()
    oracle = hpack.Decoder()
    head = [(b":status", b"200"), (b"server", b"nginx"), (b"x-a", b"1")]
    changed = [head[0], (b"x-new", b"2"), head[2]]  # x-new is inserted before x-a is encoded: x-a moves
    first_id = [head[0], head[1], (b"x-request-id", b"1"), head[2]]
    second_id = [head[0], head[1], (b"x-request-id", b"2"), head[2]]  # the same but in one place
    sequence = [head, head, changed, changed, first_id, second_id, second_id, head]
    for fields in sequence:
        assert oracle.decode(encoder.encode(fields), raw=True) == fields
