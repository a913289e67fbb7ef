"""`rsp reload` and the other subcommands import only their own module (rsp.cli imports what running a master
needs inside the functions that run it): a reload's command does not load the master, the pools, TLS and
`cryptography` before it asks (issue 23: ~0.2 s of CPU per reload). A fresh interpreter per check. (The
imports rsp.cli makes late, to run a master, run in every test that starts rsp.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

# Modules a client that only talks to the admin socket has no use for.
HEAVY = ("rsp.master.master", "rsp.proxy.pools", "rsp.tls.server_context", "rsp.admin.commands", "cryptography")


def loaded_after(code: str) -> set[str]:
    probe = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ), check=True)
    return set(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.parametrize("subcommand", ["reload", "admin"])
def test_a_subcommand_does_not_import_the_master(subcommand: str) -> None:
    loaded = loaded_after(f"import rsp.cli\nimport rsp.commands.{subcommand}")
    assert not [name for name in HEAVY if name in loaded]

