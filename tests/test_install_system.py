"""scripts/install-system and contrib/rsp.service agree: the unit runs the link the script makes, with the
config path rsp defaults to. (The install itself needs the package index; its checked run is in the closing
note of issue 18: `scripts/install-system --prefix /tmp/x/opt/rsp --bin-dir /tmp/x/bin --pure`.)"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from rsp.commands.config_arg import DEFAULT_CONFIG

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "install-system"
UNIT = ROOT / "contrib" / "rsp.service"


def default(name: str) -> str:
    match = re.search(rf"^{name}=(\S+)$", SCRIPT.read_text(), re.MULTILINE)
    assert match, name
    return match.group(1)


def test_the_unit_runs_the_link_install_system_makes() -> None:
    link = f"{default('bin_dir')}/rsp"
    unit = UNIT.read_text()
    for key in ("ExecStartPre", "ExecStart", "ExecReload"):
        match = re.search(rf"^{key}=(\S+) ", unit, re.MULTILINE)
        assert match and match.group(1) == link, key
    assert f"ExecStart={link} {DEFAULT_CONFIG}" in unit
    assert "scripts/install-system" in unit
    assert default("prefix") == "/opt/rsp"


def test_the_script_parses_and_explains_itself() -> None:
    assert subprocess.run(["bash", "-n", str(SCRIPT)], check=False).returncode == 0
    usage = subprocess.run([str(SCRIPT), "--help"], capture_output=True, text=True, timeout=10, check=False)
    assert usage.returncode == 0 and "scripts/install-system [--prefix /opt/rsp]" in usage.stdout
    wrong = subprocess.run([str(SCRIPT), "--nonsense"], capture_output=True, text=True, timeout=10, check=False)
    assert wrong.returncode == 2 and "unknown argument --nonsense" in wrong.stderr
