"""Unit tests of HTTP mode's session on fakes (tests/support/fake_session.py): no sockets, a fake clock."""
