"""The one server-name table behind certificate choice and SNI routing (rsp.tls.names)."""

from __future__ import annotations

from rsp.tls.names import NameTable


def test_exact_then_one_label_wildcard_never_the_apex() -> None:
    table: NameTable[str] = NameTable()
    table.add("a.example", "exact")
    table.add("*.b.example", "wild")
    table.add("A.Example", "second")  # the first entry of a name wins
    assert table.lookup("a.example") == "exact"
    assert table.lookup("A.EXAMPLE.") == "exact"  # case and a trailing dot do not matter
    assert table.lookup("x.b.example") == "wild"
    assert table.lookup("b.example") is None  # the apex is not covered by its wildcard
    assert table.lookup("y.x.b.example") is None  # one label only
    assert table.lookup(".b.example") is None  # an empty label is no label (rsp.server_names)
    assert table.lookup("other.example") is None
