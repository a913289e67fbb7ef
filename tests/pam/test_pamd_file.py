"""Editing a pam.d file: where the line goes, idempotence, replacement, removal, and refusals."""

from __future__ import annotations

import pytest

from rsp.errors import PamError
from rsp.pam.pamd_file import install_line, parse_pamd, remove_line, render_line

LINE = render_line("/opt/rsp/src/rsp/pam/pam_unshare.py", ["log_level=info"])

# The shape of Debian's /etc/pam.d/sshd (abridged): includes, bracketed controls, comments.
SSHD = """\
# PAM configuration for the Secure Shell service

@include common-auth
account    required     pam_nologin.so
@include common-account
session [success=ok ignore=ignore module_unknown=ignore default=bad]        pam_selinux.so close
session    required     pam_loginuid.so
@include common-session
session    optional     pam_motd.so  motd=/run/motd.dynamic
-session   optional     pam_systemd.so
@include common-password
"""


def test_render_line() -> None:
    assert LINE == "session required pam_python.so /opt/rsp/src/rsp/pam/pam_unshare.py log_level=info"
    with pytest.raises(PamError, match="absolute"):
        render_line("pam_unshare.py")
    with pytest.raises(PamError, match="spaces"):
        render_line("/opt/my rsp/pam_unshare.py")


def test_the_line_goes_after_the_last_session_rule() -> None:
    text, changed = install_line(SSHD, LINE, "sshd")
    assert changed
    lines = text.splitlines()
    assert lines[lines.index("-session   optional     pam_systemd.so") + 1] == LINE
    assert lines[-1] == "@include common-password"
    assert text.replace(LINE + "\n", "") == SSHD


def test_without_session_rules_the_line_goes_at_the_end() -> None:
    text, _ = install_line("auth required pam_permit.so", LINE, "x")
    assert text == f"auth required pam_permit.so\n{LINE}\n"


def test_install_is_idempotent_and_replaces_an_older_line_in_place() -> None:
    once, _ = install_line(SSHD, LINE, "sshd")
    assert install_line(once, LINE, "sshd") == (once, False)
    newer = render_line("/usr/lib/rsp/pam/pam_unshare.py", ["exempt_users=root,alice"])
    twice, changed = install_line(once, newer, "sshd")
    assert changed
    assert twice == once.replace(LINE, newer)


def test_two_pam_unshare_lines_are_refused() -> None:
    doubled = f"{SSHD}{LINE}\n{LINE}\n"
    with pytest.raises(PamError, match="several pam_unshare lines"):
        install_line(doubled, LINE, "sshd")


def test_remove_restores_the_file_and_is_idempotent() -> None:
    installed, _ = install_line(SSHD, LINE, "sshd")
    assert remove_line(installed, "sshd") == (SSHD, 1)
    assert remove_line(SSHD, "sshd") == (SSHD, 0)


def test_other_pam_python_lines_are_not_ours() -> None:
    other = f"{SSHD}session optional pam_python.so /usr/lib/other_module.py\n"
    assert remove_line(other, "sshd") == (other, 0)
    text, _ = install_line(other, LINE, "sshd")
    assert text.count("pam_python.so") == 2


def test_bracketed_controls_parse() -> None:
    rules = parse_pamd(SSHD, "sshd").rules
    assert rules[1].control == "[success=ok ignore=ignore module_unknown=ignore default=bad]"
    assert rules[1].module == "pam_selinux.so" and rules[1].arguments == ("close",)
    assert rules[-1].type == "session" and rules[-1].module == "pam_systemd.so"


@pytest.mark.parametrize(("text", "message"), [
    ("session required pam_env.so \\\n  readenv=1\n", r"x:1: a continued line"),
    ("sesion required pam_env.so\n", r"x:1: 'sesion' is not a PAM rule type"),
    ("# ok\nsession mandatory pam_env.so\n", r"x:2: 'mandatory' is not a PAM control"),
    ("session [default=bad pam_env.so\n", r"x:1: '\[' without '\]'"),
    ("session required\n", r"x:1: a rule without a module"),
    ("@include\n", r"x:1: '@include' takes one file name"),
])
def test_a_file_rsp_does_not_understand_is_refused(text: str, message: str) -> None:
    with pytest.raises(PamError, match=message):
        install_line(text, LINE, "x")
    with pytest.raises(PamError, match=message):
        remove_line(text, "x")
