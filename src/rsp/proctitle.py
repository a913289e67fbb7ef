"""Process titles, as nginx gives them: `rsp: master CONFIG`, `rsp: worker 1.2`, `rsp: app NAME`.

`ps`, `top` and `pgrep -f` show the title; `/proc/PID/comm` (what `pgrep -x`, `pidof` and `top`'s short
view match) gets its first 15 bytes, so no rsp process is named plain `rsp` or `python` any more, and a
`pkill rsp` meant for the master cannot hit an app's launcher by its name alone. Signal the master through
its `pid_file` (rsp.pidfile) or `pgrep -f '^rsp: master'`.

A leaf: imports nothing of rsp. `setproctitle` rewrites the argv area (what `ps` shows) and comm; without it
(a build that lacks the package) only comm is set, from /proc/self/comm.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable
from typing import Final


def _load_setproctitle() -> Callable[[str], None] | None:
    try:
        module = importlib.import_module("setproctitle")
    except ImportError:  # the lock installs it; comm alone is the fallback
        return None
    function: Callable[[str], None] = module.setproctitle
    return function


_setproctitle: Final = _load_setproctitle()

# Linux keeps TASK_COMM_LEN (16) bytes of comm, the last one a NUL.
COMM_MAX: Final = 15
PREFIX: Final = "rsp: "
MASTER_PREFIX: Final = f"{PREFIX}master "


def master_title(config_path: str) -> str:
    return f"{MASTER_PREFIX}{config_path}"


def set_title(title: str) -> None:
    """Name this process `title` (rsp's processes only: every title starts with PREFIX)."""
    if _setproctitle is not None:
        _setproctitle(title)
        return
    with contextlib.suppress(OSError), open("/proc/self/comm", "w", encoding="utf-8") as comm:
        comm.write(title.encode()[:COMM_MAX].decode(errors="ignore"))


def title_of(pid: int) -> str:
    """The command line of `pid` as `ps` shows it ("" when the process is gone or unreadable)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            raw = fh.read()
    except OSError:
        return ""
    return raw.rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")
