"""The suite's rule that every config a test starts states its `workers` (rsp's default is one per core, so a
test that took it would run differently on another machine): the guard and the helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.http_client import http_config
from support.rsp_process import SUITE_WORKERS, RspProcess, RspStartError, legacy_config


def test_a_config_without_workers_is_refused_before_rsp_starts(tmp_path: Path) -> None:
    path = tmp_path / "rsp.lua"
    path.write_text("listenPort = 1\nbackendAddress = \"127.0.0.1\"\nbackendPort = 2\n")
    proc = RspProcess(path)
    with pytest.raises(RspStartError, match="states no `workers`"):
        proc.start()
    assert proc.proc is None  # nothing was started


def test_the_helpers_state_the_suites_workers_or_the_tests_own_after_its_lines() -> None:
    assert legacy_config(1, 2).splitlines()[-1] == f"workers = {SUITE_WORKERS}"
    assert http_config(1, [2], workers=1).splitlines()[-1] == "workers = 1"
    text = legacy_config(1, 2, extra='workers = 1\nadmin_socket = "/x"')
    assert text.count("workers") == 1 and text.splitlines()[4] == "workers = 1"  # extra keeps its line numbers
