"""A worker takes the master's certificate validations with the config (rsp.master.spawn's memfd,
rsp.tls.server_context.validated_for / remember_validated): it does not plan again a certificate the master
validated, and still plans one whose file changed since, keyed by the files' contents. The worker's side runs
in a fresh process (as an exec'd worker is: no memo of its own), on real certificate files."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rsp.admin.socket_server import admin_request
from rsp.config.lua_loader import parse_config
from rsp.config.model import Config
from rsp.master.spawn import config_memfd, read_start
from rsp.tls.server_context import plan_tls_server, validated_for
from support.http_backends import HttpBackend
from support.rsp_process import RspProcess, free_port, run_cli

from .conftest import CertSet, copied, pair, three_certs, tls_get

# The worker's side: read the memfd as rsp.master.worker does, then build the listener's server (what the
# worker's start does), counting the chain plannings (plan_chain, called once per certificate validated).
WORKER_SIDE = """
import json, sys
from rsp.master.spawn import read_start
from rsp.tls import server_context

planned = []
real_plan_chain = server_context.plan_chain

def counting_plan_chain(spec, item, roots, at, ctx):
    planned.append(item.key_path)
    return real_plan_chain(spec, item, roots, at, ctx)

server_context.plan_chain = counting_plan_chain
start = read_start(int(sys.argv[1]))
server_context.remember_validated(start.tls_validated)
server = server_context.build_tls_server(start.config, start.config.tls.listeners["listen[1]"])
served = sorted(name for cert in server.planned for name in cert.names)
print(json.dumps({"planned": planned, "served": served}))
"""


def worker_side(config: Config, handed: bool) -> dict[str, Any]:
    """Run WORKER_SIDE in a new interpreter on the memfd the master would give a new worker."""
    fd = config_memfd(config, validated_for(config) if handed else None)
    try:
        done = subprocess.run([sys.executable, "-c", WORKER_SIDE, str(fd)], pass_fds=(fd,), capture_output=True,
                              text=True, timeout=60, env=dict(os.environ), check=False)
    finally:
        os.close(fd)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def fresh_config(certs: CertSet, tmp_path: Path, stem: str) -> tuple[Config, tuple[Path, Path]]:
    """Three certificates, the first of bytes no other test validated (in this process's memo)."""
    a = copied(certs.ca.issue(stem, ["a.example"]), tmp_path)
    return parse_config(three_certs(a, pair(certs.b), pair(certs.fallback)), "site.lua"), a


def test_a_worker_given_the_masters_validations_plans_nothing_again(certs: CertSet, tmp_path: Path) -> None:
    config, _ = fresh_config(certs, tmp_path, "handed")
    plan_tls_server(config, config.tls.listeners["listen[1]"])  # the master's check (rsp.preflight)
    alone = worker_side(config, handed=False)
    handed = worker_side(config, handed=True)
    every = ["listen[1].tls.certificates[1]", "listen[1].tls.certificates[2]", "listen[1].tls.certificates[3]"]
    assert alone["planned"] == every  # without the handover a fresh process validates every certificate
    assert handed["planned"] == []
    assert handed["served"] == alone["served"] == ["*.b.example", "a.example", "b.example", "default.example"]


def test_a_file_changed_after_the_masters_check_is_validated_again(certs: CertSet, tmp_path: Path) -> None:
    config, a = fresh_config(certs, tmp_path, "changed")
    plan_tls_server(config, config.tls.listeners["listen[1]"])
    replacement = certs.ca.issue("changed-again", ["a.example", "new.a.example"])
    fd = config_memfd(config, validated_for(config))  # the handover is made before the files change
    try:
        shutil.copy(replacement.cert_path, a[0])
        shutil.copy(replacement.key_path, a[1])
        done = subprocess.run([sys.executable, "-c", WORKER_SIDE, str(fd)], pass_fds=(fd,), capture_output=True,
                              text=True, timeout=60, env=dict(os.environ), check=False)
    finally:
        os.close(fd)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["planned"] == ["listen[1].tls.certificates[1]"]  # only the changed one
    assert "new.a.example" in result["served"]  # what the file holds now, not what the master saw


def test_the_handover_holds_only_this_configs_certificates_as_their_files_are(certs: CertSet,
                                                                             tmp_path: Path) -> None:
    config, a = fresh_config(certs, tmp_path, "subset")
    assert len(validated_for(config)) < 3  # the fresh certificate was not validated in this process yet
    plan_tls_server(config, config.tls.listeners["listen[1]"])
    assert len(validated_for(config)) == 3
    fd = config_memfd(config, validated_for(config))
    try:
        assert len(read_start(fd).tls_validated) == 3
    finally:
        os.close(fd)
    shutil.copy(certs.fallback.key_path, a[1])  # the key changed: its validation no longer applies
    assert len(validated_for(config)) == 2


def test_no_worker_plans_what_the_master_planned_at_start_and_reload(
        run_rsp: Callable[..., RspProcess], start_backend: Callable[..., Any], certs: CertSet,
        tmp_path: Path) -> None:
    """End to end: each chain planning of the tests' certificates warns that it is served as given (no trust
    store holds their CA). The master plans at start, and at a reload the certificate whose files changed;
    no worker plans any, and each serves the files as they are."""
    backend = start_backend(HttpBackend)
    a = copied(certs.ca.issue("reloaded", ["a.example"]), tmp_path)
    sock = tmp_path / "admin.sock"
    text = three_certs(a, pair(certs.b), pair(certs.fallback), port=free_port(), backend_port=backend.port)
    rsp = run_rsp(f'{text}admin_socket = "{sock}"\n')
    assert tls_get(rsp.port, certs.ca.path, "a.example").served_name == "a.example"
    planned = [line for line in rsp.stderr_lines if f"serving {a[0]} as given" in line]
    assert len(planned) == 1 and not re.search(r"\] worker \d", planned[0]), planned
    mark = len(rsp.stderr_lines)
    replacement = certs.ca.issue("reloaded-again", ["a.example", "new.a.example"])
    shutil.copy(replacement.cert_path, a[0])
    shutil.copy(replacement.key_path, a[1])
    reply = json.loads(admin_request(str(sock), "reload", timeout=60.0))
    assert reply.get("ok") is True, reply
    assert tls_get(rsp.port, certs.ca.path, "new.a.example").served_name == "a.example"
    planned = [line for line in rsp.stderr_lines[mark:] if f"serving {a[0]} as given" in line]
    assert len(planned) == 1 and not re.search(r"\] worker \d", planned[0]), planned


def test_a_bad_certificate_at_start_reads_like_the_check_and_starts_no_worker(certs: CertSet,
                                                                              tmp_path: Path) -> None:
    """The master validates the certificates before it starts a worker: one line naming file, line and key,
    the same as `rsp --check` (a worker's failure would read `workers of generation 1 did not start`)."""
    config = tmp_path / "site.lua"
    config.write_text(three_certs(pair(certs.a), (certs.b.cert_path, certs.a.key_path), pair(certs.fallback),
                                  port=free_port()))
    start = run_cli(str(config))
    check = run_cli("--check", str(config))
    assert start.returncode == 1 and check.returncode == 1
    assert start.stderr_lines[-1] == check.stderr_lines[-1], (start.stderr, check.stderr)
    assert start.stderr_lines[-1].startswith(f"rsp: {config}:5: listen[1].tls.certificates[2].key: ")
    assert not re.search(r"\] worker \d|did not start", start.stderr), start.stderr
