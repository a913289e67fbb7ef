"""The process-wide memo of valid Host values: the same answers as the expression, bounded."""

from __future__ import annotations

from rsp.http1 import fields


def test_valid_hosts_are_remembered_invalid_ones_never() -> None:
    fields._VALID_HOSTS.clear()
    assert fields.valid_host(b"example.com:8080")
    assert b"example.com:8080" in fields._VALID_HOSTS
    assert fields.valid_host(b"example.com:8080")  # from the memo
    for bad in (b"exa mple.com", b"a.com:80:80", b"%zz.example", b"[::1"):
        assert not fields.valid_host(bad)
        assert not fields.valid_host(bad)
        assert bad not in fields._VALID_HOSTS


def test_the_memo_is_bounded() -> None:
    fields._VALID_HOSTS.clear()
    for i in range(fields.MAX_VALID_HOSTS * 2 + 10):
        assert fields.valid_host(b"h%d.example" % i)
        assert len(fields._VALID_HOSTS) <= fields.MAX_VALID_HOSTS
