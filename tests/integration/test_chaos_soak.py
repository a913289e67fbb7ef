"""A short chaos soak (bench/chaos_soak.py's code, tests/support/chaos_soak.py) with two workers: reloads by
SIGHUP and the admin command, a worker SIGKILLed, a backend added and removed, backends that reset, stall,
cut and dawdle, clients that abort. No idempotent request may fail while a healthy backend exists, no
worker may die but the killed one, and the master's log has no traceback. The ten-minute run is the bench's."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from support.chaos_soak import SoakSettings, report_lines, run_soak

SMOKE = SoakSettings(minutes=0.4, workers=2, clients=4, reload_every=8.0, kill_every=12.0, sample_every=5.0)


@pytest.mark.slow
def test_a_short_chaos_soak_fails_no_idempotent_request_while_a_backend_is_healthy(
        tmp_path: Path, free_port: Callable[..., int]) -> None:
    report = asyncio.run(run_soak(SMOKE, tmp_path, free_port()))
    text = "\n".join(report_lines(report))
    verdict = report.verdict
    assert verdict.served > 100 and verdict.aborted > 0, text
    assert not verdict.violations, text
    # Every event happened, and none went wrong.
    assert len(report.reloads) >= 2 and all(r[2] == "ok" for r in report.reloads), text
    assert {how for _, how, _ in report.reloads} == {"SIGHUP", "admin reload"}, text
    assert report.kills and report.expected_kill_exits == len(report.kills), text
    assert report.churn and all(c[2] == "ok" for c in report.churn), text
    assert not report.unexpected_exits and report.tracebacks == 0 and report.master_exit == 0, text
    assert not report.event_errors and report.clean, text
