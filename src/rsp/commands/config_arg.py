"""The one way every rsp command names its config: `-c/--config CONFIG` (as nginx's `-c`), defaulting to
$RSP_CONFIG, else /etc/rsp/rsp.lua. `rsp CONFIG`, `rsp --check CONFIG` and `rsp reload CONFIG` keep taking
it as a positional too, as nginx users type it."""

from __future__ import annotations

import argparse
import os
from typing import Final

CONFIG_ENV: Final = "RSP_CONFIG"
DEFAULT_CONFIG: Final = "/etc/rsp/rsp.lua"
CONFIG_HELP: Final = f"the Lua config file (default: ${CONFIG_ENV}, else {DEFAULT_CONFIG})"


def default_config() -> str:
    return os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", metavar="CONFIG", help=CONFIG_HELP)


def chosen_config(parser: argparse.ArgumentParser, option: str | None, positional: str | None = None) -> str:
    """The config named by -c or the positional (both: they must agree), else the default."""
    if option and positional and option != positional:
        parser.error(f"two configs given: -c {option} and {positional}")
    return option or positional or default_config()
