"""Typed readers for config values: each checks one value and, when it is wrong, raises a ConfigError that
names the file, the Lua line of the entry and its key path (through `Ctx.fail`).

Every config section's parser (rsp.config.lua_loader and the `*_section` modules beside it) reads its
values through these, so that every key in every section fails the same way.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any, NoReturn

from rsp.config.key_lines import line_of
from rsp.errors import ConfigError


class Ctx:
    """Where we are in the file, to build errors that name file, line and key."""

    def __init__(self, path: str, lines: Mapping[str, int], source: str = "") -> None:
        self.path = path
        self.lines = lines
        self.source = source  # the file's text (the Lua section finds the handlers written in it)

    def fail(self, key: str, message: str) -> NoReturn:
        raise ConfigError(message, path=self.path, line=line_of(self.lines, key), key=key)



def split_host_port(text: str, key: str, ctx: Ctx) -> tuple[str, int]:
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text:
        ctx.fail(key, f"{key} must look like 'host:port' or '[v6addr]:port', got {text!r}")
    return as_host(host, key, ctx), as_port(port_text, key, ctx)



def fields(value: Any, key: str, ctx: Ctx, allowed: set[str]) -> dict[str, Any]:
    table = as_table(value, key, ctx)
    for k in table:
        if k not in allowed:
            ctx.fail(f"{key}.{k}", f"unknown key '{k}' in {key} (known keys: {', '.join(sorted(allowed))})")
    return {str(k): v for k, v in table.items()}


def as_table(value: Any, key: str, ctx: Ctx) -> dict[Any, Any]:
    if not isinstance(value, dict):
        ctx.fail(key, f"{key} must be a table")
    return value


def as_list(value: Any, key: str, ctx: Ctx) -> list[Any]:
    table = as_table(value, key, ctx)
    if not table:
        return []
    if set(table) != set(range(1, len(table) + 1)):
        ctx.fail(key, f"{key} must be a list (a table with keys 1..n)")
    return [table[i] for i in range(1, len(table) + 1)]


def as_str_or_num(value: Any, key: str, ctx: Ctx) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        ctx.fail(key, f"{key} must be a string or number")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def as_string(value: Any, key: str, ctx: Ctx) -> str:
    if not isinstance(value, str):
        ctx.fail(key, f"{key} must be a string")
    return value


def as_bool(value: Any, key: str, ctx: Ctx) -> bool:
    if not isinstance(value, bool):
        ctx.fail(key, f"{key} must be true or false")
    return value


def as_int(value: Any, key: str, ctx: Ctx, *, minimum: int | None = None, maximum: int | None = None) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        ctx.fail(key, f"{key} must be an integer")
    if minimum is not None and value < minimum:
        ctx.fail(key, f"{key} must be at least {minimum}")
    if maximum is not None and value > maximum:
        ctx.fail(key, f"{key} must be at most {maximum}")
    return value


def as_seconds(value: Any, key: str, ctx: Ctx, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        ctx.fail(key, f"{key} must be a number of seconds")
    if value < 0 or (value == 0 and not allow_zero):
        ctx.fail(key, f"{key} must be {'at least 0' if allow_zero else 'above 0'} seconds")
    return float(value)


def as_choice(value: Any, choices: tuple[str, ...], key: str, ctx: Ctx) -> str:
    text = as_string(value, key, ctx)
    if text not in choices:
        ctx.fail(key, f"{key} must be one of {', '.join(choices)}, got {text!r}")
    return text


def as_cidrs(value: Any, key: str, ctx: Ctx) -> tuple[str, ...]:
    """A list of IP addresses and CIDRs (`10.0.0.0/8`; host bits allowed), kept as written: who is trusted
    (http.trusted_proxies), who may PURGE (a cache's purge)."""
    out = []
    for i, item in enumerate(as_list(value, key, ctx), start=1):
        text = as_string(item, f"{key}[{i}]", ctx)
        try:
            ipaddress.ip_network(text, strict=False)
        except ValueError:
            ctx.fail(f"{key}[{i}]", f"{key}[{i}] is not an address or CIDR: {text!r}")
        out.append(text)
    return tuple(out)


def as_port(text: str, key: str, ctx: Ctx) -> int:
    if not text.isdigit():
        ctx.fail(key, f"{key} must be a port number, got {text!r}")
    port = int(text)
    if not 1 <= port <= 65535:
        ctx.fail(key, f"{key} must be between 1 and 65535, got {port}")
    return port


def as_host(text: str, key: str, ctx: Ctx) -> str:
    """An IP address or a host name (resolved when connecting)."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if not text:
        ctx.fail(key, f"{key} must not be empty")
    try:
        ipaddress.ip_address(text)
    except ValueError:
        if not all(part and (part.isalnum() or "-" in part or "_" in part) for part in text.split(".")):
            ctx.fail(key, f"{key} is neither an IP address nor a host name: {text!r}")
    return text
