"""The process keys: `workers = N` (worker processes under a master; default: one per core) and
`error_log = "PATH"` (rsp's own log lines; default stderr), `pid_file = "PATH"` (the master's pid, rsp.pidfile)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Final

from rsp.config import model
from rsp.config.checks import Ctx, as_int, as_string

PROCESS_KEYS: Final = ("workers", "error_log", "pid_file")


def default_workers() -> int:
    """One worker per core the process may run on (nginx `worker_processes auto`)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def process_settings(g: Mapping[str, Any], ctx: Ctx) -> model.ProcessSettings:
    workers = as_int(g.get("workers", min(default_workers(), model.MAX_WORKERS)), "workers", ctx,
                     minimum=1, maximum=model.MAX_WORKERS)
    error_log = as_string(g.get("error_log", ""), "error_log", ctx)
    pid_file = as_string(g.get("pid_file", ""), "pid_file", ctx)
    return model.ProcessSettings(workers=workers, error_log=error_log, pid_file=pid_file)
