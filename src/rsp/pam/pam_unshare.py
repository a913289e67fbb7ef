"""pam_unshare: each login's processes in a private PID namespace with its own /proc.

Loaded by Debian's libpam-python, one line in /etc/pam.d/SERVICE (`rsp pam install` writes it):

    session required pam_python.so /path/to/rsp/pam/pam_unshare.py [exempt_users=root,alice] [log_level=info]

pam_python.so runs this file in the system Python it embeds (python3.11 on Debian bookworm), which does not
see rsp's virtualenv; so this file puts the directory holding the `rsp` package on sys.path from its own
location, and everything it imports is standard library plus ctypes. pam_python calls the functions below
with the PAM handle, the flags and the line's words (argv[0] is this file's path); the same module object
serves open and close of one PAM handle, which is how close finds the session open left.

Arguments (docs/pam.md): exempt_users=NAME,... (default root; empty namespaces root too), log_level=
err|warning|notice|info|debug (default warning: failures only), proc_options= (data for the proc mount,
e.g. subset=pid), syslog_socket=PATH (default /dev/log).
"""

from __future__ import annotations

import os
import sys
import syslog
from typing import Final, Protocol

# The directory holding the `rsp` package: src/ of a checkout, or a virtualenv's site-packages. Appended,
# not prepended: a site-packages directory first on the path could shadow the system Python's own modules
# with the virtualenv's (built for another Python). The check below catches another `rsp` found earlier.
_SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _SOURCE_ROOT not in sys.path:
    sys.path.append(_SOURCE_ROOT)

import rsp  # noqa: E402 - only importable once the path above is set

if os.path.dirname(os.path.dirname(os.path.abspath(rsp.__file__ or ""))) != _SOURCE_ROOT:
    raise ImportError(f"pam_unshare: imported rsp from {rsp.__file__}, not from {_SOURCE_ROOT}")

from rsp.errors import PamError  # noqa: E402
from rsp.pam.namespace_session import (  # noqa: E402
    NamespaceSession,
    close_namespace_session,
    open_namespace_session,
)
from rsp.pam.options import log_settings, parse_options  # noqa: E402
from rsp.pam.syslog_line import SyslogSender  # noqa: E402

# Return codes, <security/_pam_types.h> (Linux-PAM ABI).
PAM_SUCCESS: Final = 0
PAM_SESSION_ERR: Final = 14
PAM_IGNORE: Final = 25


class PamHandle(Protocol):
    """The part of pam_python's handle object this module uses."""

    service: str | None

    def get_user(self, prompt: str | None) -> str | None: ...


# Sessions opened by this process, by PAM handle (pam_python passes the same handle object to open and
# close). Normally one: a login program opens one session per process.
_sessions: dict[int, NamespaceSession] = {}


def pam_sm_open_session(pamh: PamHandle, flags: int, argv: list[str]) -> int:
    log = SyslogSender(*log_settings(argv[1:]))
    where = f"pam_unshare({pamh.service or '?'}:session)"
    user = "?"
    try:
        options = parse_options(argv[1:])
        user = pamh.get_user(None) or ""
        if not user:
            raise PamError("no user name on the PAM handle")
        if user in options.exempt_users:
            log.log(syslog.LOG_DEBUG, f"{where}: user {user} is exempt")
            return PAM_SUCCESS
        if id(pamh) in _sessions:
            raise PamError("a session is already open on this PAM handle")
        session = open_namespace_session(options.proc_options)
        _sessions[id(pamh)] = session
        log.log(syslog.LOG_INFO, f"{where}: user {user}: private PID namespace, init is pid {session.helper_pid}")
        return PAM_SUCCESS
    except Exception as exc:  # an exception escaping into pam_python fails unlogged
        log.log(syslog.LOG_ERR, f"{where}: user {user}: {_describe(exc)}")
        return PAM_SESSION_ERR


def pam_sm_close_session(pamh: PamHandle, flags: int, argv: list[str]) -> int:
    session = _sessions.pop(id(pamh), None)
    if session is None:
        return PAM_SUCCESS  # an exempt user, or a session another process opened: nothing of ours to end
    try:
        close_namespace_session(session)
        return PAM_SUCCESS
    except Exception as exc:
        SyslogSender(*log_settings(argv[1:])).log(
            syslog.LOG_ERR, f"pam_unshare({pamh.service or '?'}:session): close: {_describe(exc)}")
        return PAM_SESSION_ERR


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror} ({exc.filename or 'system call'})" if exc.filename else str(exc)
    return str(exc)


# The module takes no part in authentication, accounts or passwords: PAM_IGNORE leaves those stacks' results
# to the other modules.
def pam_sm_authenticate(pamh: PamHandle, flags: int, argv: list[str]) -> int:
    return PAM_IGNORE


def pam_sm_setcred(pamh: PamHandle, flags: int, argv: list[str]) -> int:
    return PAM_IGNORE


def pam_sm_acct_mgmt(pamh: PamHandle, flags: int, argv: list[str]) -> int:
    return PAM_IGNORE


def pam_sm_chauthtok(pamh: PamHandle, flags: int, argv: list[str]) -> int:
    return PAM_IGNORE
