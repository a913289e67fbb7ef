"""One CLI grammar: every command names its config with -c/--config (default $RSP_CONFIG, else
/etc/rsp/rsp.lua), `rsp CONFIG`, `rsp --check CONFIG` and `rsp reload CONFIG` keep the positional; `rsp --help`
lists the runtime commands; `show` alone lists what can be shown. Real rsp processes on loopback."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support.backends import EchoBackend
from support.rsp_process import legacy_config, rsp_command, run_cli


def rsp(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = dict(os.environ)
    full.pop("RSP_CONFIG", None)
    full.update(env or {})
    return subprocess.run(rsp_command(*args), capture_output=True, text=True, timeout=90, env=full, check=False)


def test_help_lists_the_subcommands_and_the_runtime_commands() -> None:
    usage = run_cli("--help")
    assert usage.returncode == 0
    for text in ("rsp admin", "rsp reload", "rsp apps -c CONFIG", "rsp routes -c CONFIG", "show backends [POOL]",
                 "show workers", "drain POOL BACKEND", "-c CONFIG, --config CONFIG", "-t, --check", "$RSP_CONFIG"):
        assert text in usage.stdout, text


def test_check_names_its_config_every_way(tmp_path: Path, free_port: Callable[..., int]) -> None:
    config = tmp_path / "c.lua"
    config.write_text(legacy_config(free_port(), 9))
    for args, env in ((("--check", str(config)), None), (("-t", "-c", str(config)), None),
                      (("--check", "--config", str(config)), None), (("--check",), {"RSP_CONFIG": str(config)})):
        result = rsp(*args, env=env)
        assert result.returncode == 0, (args, result.stderr)
        assert result.stdout == f"configuration file {config} test is successful\n"
    other = tmp_path / "d.lua"
    both = rsp("--check", "-c", str(config), str(other))
    assert both.returncode == 2 and "two configs given" in both.stderr


def test_without_any_config_the_default_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "none.lua"
    result = rsp("--check", env={"RSP_CONFIG": str(missing)})
    assert result.returncode == 1
    assert f"no config given and {missing} does not exist" in result.stderr


def test_admin_reload_and_show_by_config(run_rsp: Callable[..., Any], start_backend: Callable[..., Any],
                                         free_port: Callable[..., int], tmp_path: Path) -> None:
    backend = start_backend(EchoBackend)
    admin = tmp_path / "admin.sock"
    proc = run_rsp(legacy_config(free_port(), backend.port, extra=f'workers = 2\nadmin_socket = "{admin}"'))
    config = proc.config_path

    shown = rsp("admin", "-c", config, "show")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == {"show": ["backends [POOL]", "workers"]}
    wrong = rsp("admin", "-c", config, "show", "nothing")
    assert wrong.returncode == 1 and "show backends [POOL] | workers" in json.loads(wrong.stdout)["error"]
    backends = rsp("admin", "show", "backends", env={"RSP_CONFIG": config})
    assert backends.returncode == 0 and "default" in json.loads(backends.stdout)
    by_socket = rsp("--admin", str(admin), "show")
    assert json.loads(by_socket.stdout) == {"show": ["backends [POOL]", "workers"]}

    for args in (("reload", "-c", config), ("reload", config)):
        done = rsp(*args)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["ok"] is True


def test_apps_and_routes_take_dash_c(tmp_path: Path, free_port: Callable[..., int]) -> None:
    config = tmp_path / "c.lua"
    config.write_text(legacy_config(free_port(), 9))
    routes = rsp("routes", "-c", str(config), "list")
    assert routes.returncode == 1 and f"{config} has no route_store section" in routes.stderr
    apps = rsp("apps", "list", env={"RSP_CONFIG": str(config)})
    assert apps.returncode == 1 and "no running rsp with apps for" in apps.stderr
