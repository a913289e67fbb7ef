"""pam_unshare's module arguments: strict parsing, and the log settings even when another word is bad."""

from __future__ import annotations

import syslog

import pytest

from rsp.errors import PamError
from rsp.pam.options import DEFAULT_SYSLOG_SOCKET, UnshareOptions, log_settings, parse_options


def test_no_argument_gives_the_defaults() -> None:
    assert parse_options([]) == UnshareOptions()
    assert parse_options([]).exempt_users == frozenset({"root"})
    assert parse_options([]).log_level == syslog.LOG_WARNING


def test_every_argument() -> None:
    options = parse_options(["exempt_users=root,alice,svc-backup", "log_level=INFO", "proc_options=subset=pid",
                             "syslog_socket=/run/test.sock"])
    assert options == UnshareOptions(frozenset({"root", "alice", "svc-backup"}), syslog.LOG_INFO, "subset=pid",
                                     "/run/test.sock")


def test_an_empty_exempt_list_namespaces_root_too() -> None:
    assert parse_options(["exempt_users="]).exempt_users == frozenset()


@pytest.mark.parametrize(("word", "message"), [
    ("frobnicate=1", "unknown argument 'frobnicate'"),
    ("debug", "expected key=value"),
    ("log_level=loud", "log_level='loud'"),
    ("exempt_users=root,al ice", "is not a user name"),
    ("exempt_users=root;alice", "is not a user name"),
    ("proc_options=hidepid=2 x", "proc_options="),
    ("syslog_socket=dev/log", "absolute path"),
])
def test_a_bad_word_is_refused_with_the_word(word: str, message: str) -> None:
    with pytest.raises(PamError, match=message):
        parse_options([word])


def test_a_key_given_twice_is_refused() -> None:
    with pytest.raises(PamError, match="given twice"):
        parse_options(["log_level=info", "log_level=debug"])


def test_log_settings_survive_a_bad_other_argument() -> None:
    assert log_settings(["frobnicate=1", "syslog_socket=/tmp/x.sock", "log_level=debug"]) == (
        "/tmp/x.sock", syslog.LOG_DEBUG)
    assert log_settings(["log_level=loud"]) == (DEFAULT_SYSLOG_SOCKET, syslog.LOG_WARNING)
