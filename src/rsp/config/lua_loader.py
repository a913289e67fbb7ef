"""Load a Lua config file into the immutable `Config` model.

Two forms are accepted. The original rsp globals (`listenPort`, `backendAddress`, `backendPort`, strings or
numbers) describe one listener and a pool of one backend. The richer form has `listen`, `backends` and `pools`.
Every error names the file, the Lua line of the entry at fault (rsp.config.key_lines) and its key path;
unknown keys are errors so that typos never pass silently.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any, NoReturn

from rsp.config import model
from rsp.config.key_lines import key_lines, line_of
from rsp.errors import ConfigError
from rsp.lua.runtime import LuaChunkError, run_config_chunk

DEFAULT_POOL = "default"
LEGACY_KEYS = ("listenPort", "backendAddress", "backendPort", "listenAddress")
# The original rsp listened on every interface.
DEFAULT_LISTEN_ADDRESS = "0.0.0.0"
TOP_LEVEL_KEYS = frozenset(
    {*LEGACY_KEYS, "listen", "backends", "pools", "timeouts", "buffer", "admin_socket", "log_level", "routes",
     "http"}
)
LOG_LEVELS = ("debug", "info", "warning", "error")


class _Ctx:
    """Where we are in the file, to build errors that name file, line and key."""

    def __init__(self, path: str, lines: Mapping[str, int]) -> None:
        self.path = path
        self.lines = lines

    def fail(self, key: str, message: str) -> NoReturn:
        raise ConfigError(message, path=self.path, line=line_of(self.lines, key), key=key)


def load_config(path: str) -> model.Config:
    """Read, run and validate the Lua config at `path`."""
    try:
        with open(path, encoding="utf-8") as fh:
            source = fh.read()
    except OSError as exc:
        raise ConfigError(f"cannot open {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text: {exc.reason}", path=path) from exc
    return parse_config(source, path)


def parse_config(source: str, path: str) -> model.Config:
    try:
        chunk = run_config_chunk(source, path)
    except LuaChunkError as exc:
        # Lua's message already reads "path:line: what"; keep it as it is.
        raise ConfigError(exc.message) from exc
    # The runtime knows the line of every global (where its statement ends); the source text knows the line
    # of each entry, and of each global's name.
    lines = {**chunk.lines, **key_lines(source)}
    return build_config(chunk.globals, _Ctx(path, lines))


def build_config(g: Mapping[str, Any], ctx: _Ctx) -> model.Config:
    for key in g:
        if key not in TOP_LEVEL_KEYS:
            ctx.fail(key, f"unknown key '{key}' (known keys: {', '.join(sorted(TOP_LEVEL_KEYS))})")

    pools: dict[str, model.Pool] = {}
    listeners: list[model.Listener] = []
    timeouts = _timeouts(g.get("timeouts"), ctx)

    legacy = [k for k in ("listenPort", "backendAddress", "backendPort") if k in g]
    if legacy:
        if "listen" in g:
            ctx.fail("listen", "use either listenPort/backendAddress/backendPort or listen, not both")
        for key in ("listenPort", "backendAddress", "backendPort"):
            if key not in g:
                ctx.fail(key, f"{key} is missing (the original form needs listenPort, backendAddress and backendPort)")
        port = _port(_str_or_num(g["listenPort"], "listenPort", ctx), "listenPort", ctx)
        host = _host(_str_or_num(g.get("listenAddress", DEFAULT_LISTEN_ADDRESS), "listenAddress", ctx),
                     "listenAddress", ctx)
        b_host = _host(_str_or_num(g["backendAddress"], "backendAddress", ctx), "backendAddress", ctx)
        b_port = _port(_str_or_num(g["backendPort"], "backendPort", ctx), "backendPort", ctx)
        if "backends" in g or "pools" in g:
            ctx.fail("backendAddress", "use either backendAddress/backendPort or backends/pools, not both")
        pools[DEFAULT_POOL] = model.Pool(
            DEFAULT_POOL, (model.Backend(b_host, b_port, key="backendAddress"),), connect_timeout=timeouts.connect
        )
        listeners.append(model.Listener(host, port, DEFAULT_POOL, key="listenPort"))
    elif "listenAddress" in g:
        ctx.fail("listenAddress", "listenAddress needs listenPort (or use the listen list)")

    if "backends" in g:
        backends = _backends(g["backends"], "backends", ctx)
        pools[DEFAULT_POOL] = model.Pool(DEFAULT_POOL, backends, connect_timeout=timeouts.connect)
    if "pools" in g:
        for name, spec in _table(g["pools"], "pools", ctx).items():
            if not isinstance(name, str):
                ctx.fail("pools", f"pool names must be strings, got {name!r}")
            if name in pools:
                ctx.fail(f"pools.{name}", f"pool '{name}' is defined twice")
            pools[name] = _pool(name, spec, f"pools.{name}", ctx, timeouts)

    if "listen" in g:
        for i, item in enumerate(_list(g["listen"], "listen", ctx), start=1):
            listeners.append(_listener(item, f"listen[{i}]", ctx))
    if not listeners:
        ctx.fail("listen", "no listener: set listenPort (with backendAddress and backendPort) or a listen list")
    if not pools:
        ctx.fail("backends", "no backend: set backendAddress/backendPort, backends or pools")
    seen: set[tuple[str, int]] = set()
    for i, lst in enumerate(listeners, start=1):
        if lst.pool not in pools:
            ctx.fail(f"listen[{i}].pool", f"listener {lst.address} names pool '{lst.pool}', which is not defined")
        if (lst.host, lst.port) in seen:
            ctx.fail(f"listen[{i}]", f"listener {lst.address} is listed twice")
        seen.add((lst.host, lst.port))

    buffer = _fields(g.get("buffer", {}), "buffer", ctx, {"high_water", "low_water"})
    high = _int(buffer.get("high_water", model.DEFAULT_HIGH_WATER), "buffer.high_water", ctx, minimum=1024)
    low = _int(buffer.get("low_water", min(model.DEFAULT_LOW_WATER, high // 4)), "buffer.low_water", ctx,
               minimum=0)
    if low >= high:
        ctx.fail("buffer.low_water", "buffer.low_water must be below buffer.high_water")
    admin = _string(g.get("admin_socket", ""), "admin_socket", ctx)
    level = _string(g.get("log_level", "info"), "log_level", ctx)
    if level not in LOG_LEVELS:
        ctx.fail("log_level", f"log_level must be one of {', '.join(LOG_LEVELS)}")
    routes = tuple(_route(item, f"routes[{i}]", ctx)
                   for i, item in enumerate(_list(g.get("routes", {}), "routes", ctx), start=1))
    for i, route in enumerate(routes, start=1):
        if route.pool not in pools:
            ctx.fail(f"routes[{i}].pool", f"routes[{i}] names pool '{route.pool}', which is not defined")
    return model.Config(
        routes=routes,
        http=_http(g.get("http", {}), "http", ctx),
        path=ctx.path,
        listeners=tuple(listeners),
        pools=pools,
        timeouts=timeouts,
        high_water=high,
        low_water=low,
        admin_socket=admin,
        log_level=level,
        lines=dict(ctx.lines),
    )


# ---- pieces ---------------------------------------------------------------------------------------------


def _timeouts(value: Any, ctx: _Ctx) -> model.Timeouts:
    t = _fields(value if value is not None else {}, "timeouts", ctx, {"connect", "idle", "drain"})
    return model.Timeouts(
        connect=_seconds(t.get("connect", model.DEFAULT_CONNECT_TIMEOUT), "timeouts.connect", ctx),
        idle=_seconds(t.get("idle", model.DEFAULT_IDLE_TIMEOUT), "timeouts.idle", ctx),
        drain=_seconds(t.get("drain", model.DEFAULT_DRAIN_TIMEOUT), "timeouts.drain", ctx, allow_zero=True),
    )


def _route(item: Any, key: str, ctx: _Ctx) -> model.Route:
    f = _fields(item, key, ctx, {"host", "path", "methods", "pool"})
    if "pool" not in f:
        ctx.fail(f"{key}.pool", f"{key}.pool is missing")
    host = _string(f.get("host", ""), f"{key}.host", ctx).lower()
    if host and ("*" in host[1:] or (host.startswith("*") and not host.startswith("*."))):
        ctx.fail(f"{key}.host", f"{key}.host: a wildcard must be a leading '*.' as in '*.example.com'")
    path = _string(f.get("path", ""), f"{key}.path", ctx)
    if path and not path.startswith("/"):
        ctx.fail(f"{key}.path", f"{key}.path must start with '/'")
    methods = frozenset(_string(m, f"{key}.methods", ctx).upper()
                        for m in _list(f.get("methods", {}), f"{key}.methods", ctx))
    return model.Route(pool=_string(f["pool"], f"{key}.pool", ctx), host=host, path_prefix=path, methods=methods)


def _http(value: Any, key: str, ctx: _Ctx) -> model.HttpSettings:
    allowed = {"header_timeout", "body_timeout", "response_timeout", "keepalive_timeout", "max_body_size",
               "trusted_proxies", "forwarded", "via", "access_log", "access_log_path", "pool_max_idle",
               "pool_idle_timeout", "pool_max_requests"}
    f = _fields(value, key, ctx, allowed)
    d = model.HttpSettings()
    proxies = []
    for i, cidr in enumerate(_list(f.get("trusted_proxies", {}), f"{key}.trusted_proxies", ctx), start=1):
        text = _string(cidr, f"{key}.trusted_proxies[{i}]", ctx)
        try:
            ipaddress.ip_network(text, strict=False)
        except ValueError:
            ctx.fail(f"{key}.trusted_proxies[{i}]", f"{key}.trusted_proxies[{i}] is not an address or CIDR: {text!r}")
        proxies.append(text)
    return model.HttpSettings(
        header_timeout=_seconds(f.get("header_timeout", d.header_timeout), f"{key}.header_timeout", ctx),
        body_timeout=_seconds(f.get("body_timeout", d.body_timeout), f"{key}.body_timeout", ctx),
        response_timeout=_seconds(f.get("response_timeout", d.response_timeout), f"{key}.response_timeout", ctx),
        keepalive_timeout=_seconds(f.get("keepalive_timeout", d.keepalive_timeout), f"{key}.keepalive_timeout", ctx),
        max_body_size=_int(f.get("max_body_size", d.max_body_size), f"{key}.max_body_size", ctx, minimum=0),
        trusted_proxies=tuple(proxies),
        forwarded=_bool(f.get("forwarded", d.forwarded), f"{key}.forwarded", ctx),
        via=_bool(f.get("via", d.via), f"{key}.via", ctx),
        access_log=_choice(f.get("access_log", d.access_log), model.ACCESS_LOG_FORMATS, f"{key}.access_log", ctx),
        access_log_path=_string(f.get("access_log_path", ""), f"{key}.access_log_path", ctx),
        pool_max_idle=_int(f.get("pool_max_idle", d.pool_max_idle), f"{key}.pool_max_idle", ctx, minimum=0),
        pool_idle_timeout=_seconds(f.get("pool_idle_timeout", d.pool_idle_timeout), f"{key}.pool_idle_timeout", ctx),
        pool_max_requests=_int(f.get("pool_max_requests", d.pool_max_requests), f"{key}.pool_max_requests", ctx,
                               minimum=1),
    )


def _listener(item: Any, key: str, ctx: _Ctx) -> model.Listener:
    f = _fields(item, key, ctx, {"address", "port", "pool", "mode"})
    if "port" not in f:
        ctx.fail(f"{key}.port", f"{key}.port is missing")
    port = _port(_str_or_num(f["port"], f"{key}.port", ctx), f"{key}.port", ctx)
    host = _host(_str_or_num(f.get("address", DEFAULT_LISTEN_ADDRESS), f"{key}.address", ctx), f"{key}.address", ctx)
    mode = _choice(f.get("mode", "tcp"), model.MODES, f"{key}.mode", ctx)
    pool = _string(f.get("pool", DEFAULT_POOL), f"{key}.pool", ctx)
    return model.Listener(host, port, pool, mode, key=key)


def _pool(name: str, spec: Any, key: str, ctx: _Ctx, timeouts: model.Timeouts) -> model.Pool:
    allowed = {"backends", "algorithm", "hash_key", "hash_name", "health", "connect_timeout", "retries",
               "passive_failures", "passive_cooldown"}
    f = _fields(spec, key, ctx, allowed)
    if "backends" not in f:
        ctx.fail(f"{key}.backends", f"{key}.backends is missing")
    hash_key = _choice(f.get("hash_key", "source"), model.HASH_KEYS, f"{key}.hash_key", ctx)
    hash_name = _string(f.get("hash_name", ""), f"{key}.hash_name", ctx)
    if hash_key in ("header", "cookie") and not hash_name:
        ctx.fail(f"{key}.hash_name", f"{key}.hash_name is needed when hash_key is '{hash_key}'")
    return model.Pool(
        name=name,
        backends=_backends(f["backends"], f"{key}.backends", ctx),
        algorithm=_choice(f.get("algorithm", "roundrobin"), model.ALGORITHMS, f"{key}.algorithm", ctx),
        hash_key=hash_key,
        hash_name=hash_name,
        health=_health(f.get("health", {}), f"{key}.health", ctx),
        connect_timeout=_seconds(f.get("connect_timeout", timeouts.connect), f"{key}.connect_timeout", ctx),
        retries=_int(f.get("retries", model.DEFAULT_RETRIES), f"{key}.retries", ctx, minimum=0),
        passive_failures=_int(f.get("passive_failures", model.DEFAULT_PASSIVE_FAILURES),
                              f"{key}.passive_failures", ctx, minimum=0),
        passive_cooldown=_seconds(f.get("passive_cooldown", model.DEFAULT_PASSIVE_COOLDOWN),
                                  f"{key}.passive_cooldown", ctx),
    )


def _health(spec: Any, key: str, ctx: _Ctx) -> model.HealthCheck:
    allowed = {"kind", "interval", "timeout", "rise", "fall", "method", "path", "expect_status", "host"}
    f = _fields(spec, key, ctx, allowed)
    kind = _choice(f.get("kind", "none"), model.CHECK_KINDS, f"{key}.kind", ctx)
    path = _string(f.get("path", "/"), f"{key}.path", ctx)
    if not path.startswith("/") or any(c.isspace() for c in path):
        ctx.fail(f"{key}.path", f"{key}.path must be an origin-form path like '/health'")
    method = _string(f.get("method", "GET"), f"{key}.method", ctx)
    if not method.isalpha() or not method.isupper():
        ctx.fail(f"{key}.method", f"{key}.method must be an HTTP method like 'GET' or 'HEAD'")
    return model.HealthCheck(
        kind=kind,
        interval=_seconds(f.get("interval", model.DEFAULT_CHECK_INTERVAL), f"{key}.interval", ctx),
        timeout=_seconds(f.get("timeout", model.DEFAULT_CHECK_TIMEOUT), f"{key}.timeout", ctx),
        rise=_int(f.get("rise", model.DEFAULT_RISE), f"{key}.rise", ctx, minimum=1),
        fall=_int(f.get("fall", model.DEFAULT_FALL), f"{key}.fall", ctx, minimum=1),
        method=method,
        path=path,
        expect_status=_int(f.get("expect_status", 200), f"{key}.expect_status", ctx, minimum=100, maximum=599),
        host=_string(f.get("host", ""), f"{key}.host", ctx),
    )


def _backends(value: Any, key: str, ctx: _Ctx) -> tuple[model.Backend, ...]:
    items = _list(value, key, ctx)
    if not items:
        ctx.fail(key, f"{key} is empty: a pool needs at least one backend")
    out: list[model.Backend] = []
    for i, item in enumerate(items, start=1):
        k = f"{key}[{i}]"
        if isinstance(item, str):
            host, port = _split_host_port(item, k, ctx)
            out.append(model.Backend(host, port, key=k))
            continue
        f = _fields(item, k, ctx, {"address", "port", "weight", "max_conns", "backup", "name"})
        if "address" not in f:
            ctx.fail(f"{k}.address", f"{k}.address is missing")
        address = _string(f["address"], f"{k}.address", ctx)
        if "port" in f:
            host = _host(address, f"{k}.address", ctx)
            port = _port(_str_or_num(f["port"], f"{k}.port", ctx), f"{k}.port", ctx)
        else:
            host, port = _split_host_port(address, f"{k}.address", ctx)
        out.append(model.Backend(
            host=host,
            port=port,
            weight=_int(f.get("weight", 1), f"{k}.weight", ctx, minimum=0, maximum=256),
            max_conns=_int(f.get("max_conns", 0), f"{k}.max_conns", ctx, minimum=0),
            backup=_bool(f.get("backup", False), f"{k}.backup", ctx),
            name=_string(f.get("name", ""), f"{k}.name", ctx),
            key=k,
        ))
    names = [b.name for b in out if b.name]
    if len(names) != len(set(names)):
        ctx.fail(key, f"{key} has two backends with the same name")
    return tuple(out)


def _split_host_port(text: str, key: str, ctx: _Ctx) -> tuple[str, int]:
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text:
        ctx.fail(key, f"{key} must look like 'host:port' or '[v6addr]:port', got {text!r}")
    return _host(host, key, ctx), _port(port_text, key, ctx)


# ---- typed field readers --------------------------------------------------------------------------------


def _fields(value: Any, key: str, ctx: _Ctx, allowed: set[str]) -> dict[str, Any]:
    table = _table(value, key, ctx)
    for k in table:
        if k not in allowed:
            ctx.fail(f"{key}.{k}", f"unknown key '{k}' in {key} (known keys: {', '.join(sorted(allowed))})")
    return {str(k): v for k, v in table.items()}


def _table(value: Any, key: str, ctx: _Ctx) -> dict[Any, Any]:
    if not isinstance(value, dict):
        ctx.fail(key, f"{key} must be a table")
    return value


def _list(value: Any, key: str, ctx: _Ctx) -> list[Any]:
    table = _table(value, key, ctx)
    if not table:
        return []
    if set(table) != set(range(1, len(table) + 1)):
        ctx.fail(key, f"{key} must be a list (a table with keys 1..n)")
    return [table[i] for i in range(1, len(table) + 1)]


def _str_or_num(value: Any, key: str, ctx: _Ctx) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        ctx.fail(key, f"{key} must be a string or number")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _string(value: Any, key: str, ctx: _Ctx) -> str:
    if not isinstance(value, str):
        ctx.fail(key, f"{key} must be a string")
    return value


def _bool(value: Any, key: str, ctx: _Ctx) -> bool:
    if not isinstance(value, bool):
        ctx.fail(key, f"{key} must be true or false")
    return value


def _int(value: Any, key: str, ctx: _Ctx, *, minimum: int | None = None, maximum: int | None = None) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        ctx.fail(key, f"{key} must be an integer")
    if minimum is not None and value < minimum:
        ctx.fail(key, f"{key} must be at least {minimum}")
    if maximum is not None and value > maximum:
        ctx.fail(key, f"{key} must be at most {maximum}")
    return value


def _seconds(value: Any, key: str, ctx: _Ctx, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        ctx.fail(key, f"{key} must be a number of seconds")
    if value < 0 or (value == 0 and not allow_zero):
        ctx.fail(key, f"{key} must be {'at least 0' if allow_zero else 'above 0'} seconds")
    return float(value)


def _choice(value: Any, choices: tuple[str, ...], key: str, ctx: _Ctx) -> str:
    text = _string(value, key, ctx)
    if text not in choices:
        ctx.fail(key, f"{key} must be one of {', '.join(choices)}, got {text!r}")
    return text


def _port(text: str, key: str, ctx: _Ctx) -> int:
    if not text.isdigit():
        ctx.fail(key, f"{key} must be a port number, got {text!r}")
    port = int(text)
    if not 1 <= port <= 65535:
        ctx.fail(key, f"{key} must be between 1 and 65535, got {port}")
    return port


def _host(text: str, key: str, ctx: _Ctx) -> str:
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


