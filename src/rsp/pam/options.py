"""The module arguments of pam_unshare (`key=value` words after the module path in the pam.d line).

Parsed strictly: an unknown key or a bad value is an error (the session fails with PAM_SESSION_ERR and the
reason is logged), because a typo in a security module's line must not silently turn it off.
"""

from __future__ import annotations

import string
import syslog
from collections.abc import Sequence
from typing import Final, NamedTuple

from rsp.errors import PamError

# root is exempt unless the line says otherwise: an administrator's `su -` or a rescue login should see the
# whole machine. `exempt_users=` (empty) namespaces root too.
DEFAULT_EXEMPT_USERS: Final = frozenset({"root"})

# syslog priorities by name (<syslog.h>). The module logs failures at LOG_ERR, each namespaced session at
# LOG_INFO and exempt users at LOG_DEBUG, so the default (warning) logs failures only: "sparingly".
LOG_LEVELS: Final[dict[str, int]] = {
    "err": syslog.LOG_ERR,
    "error": syslog.LOG_ERR,
    "warning": syslog.LOG_WARNING,
    "notice": syslog.LOG_NOTICE,
    "info": syslog.LOG_INFO,
    "debug": syslog.LOG_DEBUG,
}
DEFAULT_LOG_LEVEL: Final = syslog.LOG_WARNING

# Where syslog(3) writes; the `syslog_socket=` argument exists so that a test can read the lines.
DEFAULT_SYSLOG_SOCKET: Final = "/dev/log"

# The characters of a user name as useradd accepts them (Debian's default NAME_REGEX is stricter; this only
# keeps separators and spaces out of the list), and of proc(5) mount options (hidepid=invisible,subset=pid).
_USER_NAME_CHARS: Final = frozenset(string.ascii_letters + string.digits + "_.$-")
_PROC_OPTION_CHARS: Final = frozenset(string.ascii_letters + string.digits + "_=,.-")

KNOWN_KEYS: Final = ("exempt_users", "log_level", "proc_options", "syslog_socket")


class UnshareOptions(NamedTuple):
    exempt_users: frozenset[str] = DEFAULT_EXEMPT_USERS
    log_level: int = DEFAULT_LOG_LEVEL
    # Extra data for the fresh proc mount (proc(5)), e.g. "subset=pid" to hide /proc/sys and friends.
    proc_options: str = ""
    syslog_socket: str = DEFAULT_SYSLOG_SOCKET


def parse_options(words: Sequence[str]) -> UnshareOptions:
    """The module arguments (without the module path) as options; PamError names the word at fault."""
    values: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep:
            raise PamError(f"argument {word!r}: expected key=value (keys: {', '.join(KNOWN_KEYS)})")
        if key not in KNOWN_KEYS:
            raise PamError(f"unknown argument {key!r} (keys: {', '.join(KNOWN_KEYS)})")
        if key in values:
            raise PamError(f"argument {key!r} given twice")
        values[key] = value
    options = UnshareOptions()
    if "exempt_users" in values:
        options = _with_exempt_users(options, values["exempt_users"])
    if "log_level" in values:
        level = LOG_LEVELS.get(values["log_level"].lower())
        if level is None:
            raise PamError(f"log_level={values['log_level']!r}: expected one of {', '.join(LOG_LEVELS)}")
        options = options._replace(log_level=level)
    if "proc_options" in values:
        if not set(values["proc_options"]) <= _PROC_OPTION_CHARS:
            raise PamError(f"proc_options={values['proc_options']!r}: expected comma-separated proc mount options")
        options = options._replace(proc_options=values["proc_options"])
    if "syslog_socket" in values:
        if not values["syslog_socket"].startswith("/"):
            raise PamError(f"syslog_socket={values['syslog_socket']!r}: expected an absolute path")
        options = options._replace(syslog_socket=values["syslog_socket"])
    return options


def _with_exempt_users(options: UnshareOptions, value: str) -> UnshareOptions:
    names = [name for name in value.split(",") if name]
    for name in names:
        if not set(name) <= _USER_NAME_CHARS or name.startswith("-"):
            raise PamError(f"exempt_users: {name!r} is not a user name")
    return options._replace(exempt_users=frozenset(names))



def log_settings(words: Sequence[str]) -> tuple[str, int]:
    """(syslog socket, log level) from the arguments even when another argument is bad, so that the reason
    a line is refused reaches the log the line asks for; the defaults when these two are bad themselves."""
    wanted = [word for word in words if word.partition("=")[0] in ("syslog_socket", "log_level")]
    try:
        options = parse_options(wanted)
    except PamError:
        options = UnshareOptions()
    return options.syslog_socket, options.log_level
