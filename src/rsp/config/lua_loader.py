"""Load a Lua config file into the immutable `Config` model.

Two forms are accepted. The original rsp globals (`listenPort`, `backendAddress`, `backendPort`, strings or
numbers) describe one listener and a pool of one backend. The richer form has `listen`, `backends` and `pools`.
Every error names the file, the Lua line of the entry at fault (rsp.config.key_lines) and its key path;
unknown keys are errors so that typos never pass silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rsp.config import model
from rsp.config.cache_section import check_cache_uses, parse_caches
from rsp.config.checks import (
    Ctx,
    as_bool,
    as_choice,
    as_cidrs,
    as_host,
    as_int,
    as_list,
    as_port,
    as_seconds,
    as_str_or_num,
    as_string,
    as_table,
    fields,
    split_host_port,
)
from rsp.config.http2_section import parse_http2
from rsp.config.key_lines import key_lines
from rsp.config.lua_section import parse_lua
from rsp.config.process_section import PROCESS_KEYS, process_settings
from rsp.config.route_store_section import add_template_pool, parse_route_store, store_template
from rsp.config.sandbox_section import SANDBOX_KEYS, parse_sandbox
from rsp.config.stats_section import parse_stats
from rsp.config.tls_section import LISTENER_TLS_KEYS, POOL_TLS_KEYS, tls_settings
from rsp.errors import ConfigError
from rsp.lua.runtime import LuaChunkError, run_config_chunk

DEFAULT_POOL = "default"
LEGACY_KEYS = ("listenPort", "backendAddress", "backendPort", "listenAddress")
# The original rsp listened on every interface.
DEFAULT_LISTEN_ADDRESS = "0.0.0.0"
TOP_LEVEL_KEYS = frozenset(
    {*LEGACY_KEYS, "listen", "backends", "pools", "timeouts", "buffer", "admin_socket", "log_level", "routes",
     "http", "route_store", "stats", "caches", "lua", *SANDBOX_KEYS, *PROCESS_KEYS}
)
LOG_LEVELS = ("debug", "info", "warning", "error")


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
    return build_config(chunk.globals, Ctx(path, lines, source))


def build_config(g: Mapping[str, Any], ctx: Ctx) -> model.Config:
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
        port = as_port(as_str_or_num(g["listenPort"], "listenPort", ctx), "listenPort", ctx)
        host = as_host(as_str_or_num(g.get("listenAddress", DEFAULT_LISTEN_ADDRESS), "listenAddress", ctx),
                     "listenAddress", ctx)
        b_host = as_host(as_str_or_num(g["backendAddress"], "backendAddress", ctx), "backendAddress", ctx)
        b_port = as_port(as_str_or_num(g["backendPort"], "backendPort", ctx), "backendPort", ctx)
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
        template = store_template(g.get("route_store"))
        for name, spec in as_table(g["pools"], "pools", ctx).items():
            if not isinstance(name, str):
                ctx.fail("pools", f"pool names must be strings, got {name!r}")
            if name in pools:
                ctx.fail(f"pools.{name}", f"pool '{name}' is defined twice")
            # The route store's template may leave out `backends`: its hosts' backends come from Redis.
            pools[name] = _pool(name, spec, f"pools.{name}", ctx, timeouts, backends_needed=name != template)

    if "listen" in g:
        for i, item in enumerate(as_list(g["listen"], "listen", ctx), start=1):
            listeners.append(_listener(item, f"listen[{i}]", ctx))
    sandbox = parse_sandbox(g, ctx, pools, listeners)  # adds the apps' pools and the relayed forwards
    add_template_pool(g.get("route_store"), pools, timeouts)  # a store needs no placeholder backend
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

    buffer = fields(g.get("buffer", {}), "buffer", ctx, {"high_water", "low_water"})
    high = as_int(buffer.get("high_water", model.DEFAULT_HIGH_WATER), "buffer.high_water", ctx, minimum=1024)
    low = as_int(buffer.get("low_water", min(model.DEFAULT_LOW_WATER, high // 4)), "buffer.low_water", ctx,
               minimum=0)
    if low >= high:
        ctx.fail("buffer.low_water", "buffer.low_water must be below buffer.high_water")
    admin = as_string(g.get("admin_socket", ""), "admin_socket", ctx)
    level = as_string(g.get("log_level", "info"), "log_level", ctx)
    if level not in LOG_LEVELS:
        ctx.fail("log_level", f"log_level must be one of {', '.join(LOG_LEVELS)}")
    routes = tuple(_route(item, f"routes[{i}]", ctx)
                   for i, item in enumerate(as_list(g.get("routes", {}), "routes", ctx), start=1))
    for i, route in enumerate(routes, start=1):
        if route.pool not in pools:
            ctx.fail(f"routes[{i}].pool", f"routes[{i}] names pool '{route.pool}', which is not defined")
    caches = parse_caches(g.get("caches"), ctx)
    check_cache_uses(caches, listeners, routes, ctx)
    tls = tls_settings(g, ctx, tuple(listeners), pools)
    return model.Config(
        routes=routes,
        route_store=parse_route_store(g.get("route_store"), pools, listeners, ctx, bool(tls.sni)),
        http=_http(g.get("http", {}), "http", ctx),
        sandbox=sandbox,
        path=ctx.path,
        listeners=tuple(listeners),
        pools=pools,
        timeouts=timeouts,
        high_water=high,
        low_water=low,
        admin_socket=admin,
        log_level=level,
        stats=parse_stats(g.get("stats"), ctx, listeners),
        process=process_settings(g, ctx),
        lines=dict(ctx.lines),
        tls=tls,
        caches=caches,
        lua=parse_lua(g.get("lua"), "lua", ctx, ctx.source, top_level=True),
    )


# ---- pieces ---------------------------------------------------------------------------------------------


def _timeouts(value: Any, ctx: Ctx) -> model.Timeouts:
    t = fields(value if value is not None else {}, "timeouts", ctx, {"connect", "idle", "drain", "reload_grace"})
    return model.Timeouts(
        connect=as_seconds(t.get("connect", model.DEFAULT_CONNECT_TIMEOUT), "timeouts.connect", ctx),
        idle=as_seconds(t.get("idle", model.DEFAULT_IDLE_TIMEOUT), "timeouts.idle", ctx),
        drain=as_seconds(t.get("drain", model.DEFAULT_DRAIN_TIMEOUT), "timeouts.drain", ctx, allow_zero=True),
        reload_grace=as_seconds(t.get("reload_grace", model.DEFAULT_RELOAD_GRACE), "timeouts.reload_grace", ctx,
                                allow_zero=True),
    )


def _route(item: Any, key: str, ctx: Ctx) -> model.Route:
    f = fields(item, key, ctx, {"host", "path", "methods", "pool", "cache", "lua"})
    if "pool" not in f:
        ctx.fail(f"{key}.pool", f"{key}.pool is missing")
    host = as_string(f.get("host", ""), f"{key}.host", ctx).lower()
    if host and ("*" in host[1:] or (host.startswith("*") and not host.startswith("*."))):
        ctx.fail(f"{key}.host", f"{key}.host: a wildcard must be a leading '*.' as in '*.example.com'")
    path = as_string(f.get("path", ""), f"{key}.path", ctx)
    if path and not path.startswith("/"):
        ctx.fail(f"{key}.path", f"{key}.path must start with '/'")
    methods = frozenset(as_string(m, f"{key}.methods", ctx).upper()
                        for m in as_list(f.get("methods", {}), f"{key}.methods", ctx))
    return model.Route(pool=as_string(f["pool"], f"{key}.pool", ctx), host=host, path_prefix=path, methods=methods,
                       cache=as_string(f.get("cache", ""), f"{key}.cache", ctx),
                       lua=parse_lua(f.get("lua"), f"{key}.lua", ctx, ctx.source, top_level=False, on_route=True))


def _http(value: Any, key: str, ctx: Ctx) -> model.HttpSettings:
    allowed = {"header_timeout", "body_timeout", "response_timeout", "keepalive_timeout", "max_body_size",
               "trusted_proxies", "forwarded", "via", "access_log", "access_log_path", "pool_max_idle",
               "pool_idle_timeout", "pool_max_requests"}
    f = fields(value, key, ctx, allowed)
    d = model.HttpSettings()
    proxies = as_cidrs(f.get("trusted_proxies", {}), f"{key}.trusted_proxies", ctx)
    return model.HttpSettings(
        header_timeout=as_seconds(f.get("header_timeout", d.header_timeout), f"{key}.header_timeout", ctx),
        body_timeout=as_seconds(f.get("body_timeout", d.body_timeout), f"{key}.body_timeout", ctx),
        response_timeout=as_seconds(f.get("response_timeout", d.response_timeout), f"{key}.response_timeout", ctx),
        keepalive_timeout=as_seconds(f.get("keepalive_timeout", d.keepalive_timeout), f"{key}.keepalive_timeout", ctx),
        max_body_size=as_int(f.get("max_body_size", d.max_body_size), f"{key}.max_body_size", ctx, minimum=0),
        trusted_proxies=proxies,
        forwarded=as_bool(f.get("forwarded", d.forwarded), f"{key}.forwarded", ctx),
        via=as_bool(f.get("via", d.via), f"{key}.via", ctx),
        access_log=as_choice(f.get("access_log", d.access_log), model.ACCESS_LOG_FORMATS, f"{key}.access_log", ctx),
        access_log_path=as_string(f.get("access_log_path", ""), f"{key}.access_log_path", ctx),
        pool_max_idle=as_int(f.get("pool_max_idle", d.pool_max_idle), f"{key}.pool_max_idle", ctx, minimum=0),
        pool_idle_timeout=as_seconds(f.get("pool_idle_timeout", d.pool_idle_timeout), f"{key}.pool_idle_timeout", ctx),
        pool_max_requests=as_int(f.get("pool_max_requests", d.pool_max_requests), f"{key}.pool_max_requests", ctx,
                               minimum=1),
    )


def _listener(item: Any, key: str, ctx: Ctx) -> model.Listener:
    f = fields(item, key, ctx, {"address", "port", "pool", "mode", "cache", "http2", "lua", *LISTENER_TLS_KEYS})
    if "port" not in f:
        ctx.fail(f"{key}.port", f"{key}.port is missing")
    port = as_port(as_str_or_num(f["port"], f"{key}.port", ctx), f"{key}.port", ctx)
    address = as_str_or_num(f.get("address", DEFAULT_LISTEN_ADDRESS), f"{key}.address", ctx)
    host = as_host(address, f"{key}.address", ctx)
    mode = as_choice(f.get("mode", "tcp"), model.MODES, f"{key}.mode", ctx)
    pool = as_string(f.get("pool", DEFAULT_POOL), f"{key}.pool", ctx)
    cache = as_string(f.get("cache", ""), f"{key}.cache", ctx)
    http2 = parse_http2(f.get("http2"), f"{key}.http2", ctx, mode, tls="tls" in f)
    lua = parse_lua(f.get("lua"), f"{key}.lua", ctx, ctx.source, top_level=False)
    if lua is not None and mode != "http":
        ctx.fail(f"{key}.lua", f"{key}.lua: Lua handlers run on HTTP listeners (mode = 'http')")
    return model.Listener(host, port, pool, mode, cache=cache, http2=http2, key=key, lua=lua)


def _pool(name: str, spec: Any, key: str, ctx: Ctx, timeouts: model.Timeouts,
          backends_needed: bool = True) -> model.Pool:
    allowed = {"backends", "algorithm", "hash_key", "hash_name", "health", "connect_timeout", "retries",
               "passive_failures", "passive_cooldown", *POOL_TLS_KEYS}
    f = fields(spec, key, ctx, allowed)
    if "backends" not in f and backends_needed:
        ctx.fail(f"{key}.backends", f"{key}.backends is missing")
    hash_key = as_choice(f.get("hash_key", "source"), model.HASH_KEYS, f"{key}.hash_key", ctx)
    hash_name = as_string(f.get("hash_name", ""), f"{key}.hash_name", ctx)
    if hash_key in ("header", "cookie") and not hash_name:
        ctx.fail(f"{key}.hash_name", f"{key}.hash_name is needed when hash_key is '{hash_key}'")
    return model.Pool(
        name=name,
        backends=_backends(f["backends"], f"{key}.backends", ctx) if "backends" in f else (),
        algorithm=as_choice(f.get("algorithm", "roundrobin"), model.ALGORITHMS, f"{key}.algorithm", ctx),
        hash_key=hash_key,
        hash_name=hash_name,
        health=_health(f.get("health", {}), f"{key}.health", ctx),
        connect_timeout=as_seconds(f.get("connect_timeout", timeouts.connect), f"{key}.connect_timeout", ctx),
        retries=as_int(f.get("retries", model.DEFAULT_RETRIES), f"{key}.retries", ctx, minimum=0),
        passive_failures=as_int(f.get("passive_failures", model.DEFAULT_PASSIVE_FAILURES),
                              f"{key}.passive_failures", ctx, minimum=0),
        passive_cooldown=as_seconds(f.get("passive_cooldown", model.DEFAULT_PASSIVE_COOLDOWN),
                                  f"{key}.passive_cooldown", ctx),
    )


def _health(spec: Any, key: str, ctx: Ctx) -> model.HealthCheck:
    allowed = {"kind", "interval", "timeout", "rise", "fall", "method", "path", "expect_status", "host"}
    f = fields(spec, key, ctx, allowed)
    kind = as_choice(f.get("kind", "none"), model.CHECK_KINDS, f"{key}.kind", ctx)
    path = as_string(f.get("path", "/"), f"{key}.path", ctx)
    if not path.startswith("/") or any(c.isspace() for c in path):
        ctx.fail(f"{key}.path", f"{key}.path must be an origin-form path like '/health'")
    method = as_string(f.get("method", "GET"), f"{key}.method", ctx)
    if not method.isalpha() or not method.isupper():
        ctx.fail(f"{key}.method", f"{key}.method must be an HTTP method like 'GET' or 'HEAD'")
    return model.HealthCheck(
        kind=kind,
        interval=as_seconds(f.get("interval", model.DEFAULT_CHECK_INTERVAL), f"{key}.interval", ctx),
        timeout=as_seconds(f.get("timeout", model.DEFAULT_CHECK_TIMEOUT), f"{key}.timeout", ctx),
        rise=as_int(f.get("rise", model.DEFAULT_RISE), f"{key}.rise", ctx, minimum=1),
        fall=as_int(f.get("fall", model.DEFAULT_FALL), f"{key}.fall", ctx, minimum=1),
        method=method,
        path=path,
        expect_status=as_int(f.get("expect_status", 200), f"{key}.expect_status", ctx, minimum=100, maximum=599),
        host=as_string(f.get("host", ""), f"{key}.host", ctx),
    )


def _backends(value: Any, key: str, ctx: Ctx) -> tuple[model.Backend, ...]:
    items = as_list(value, key, ctx)
    if not items:
        ctx.fail(key, f"{key} is empty: a pool needs at least one backend")
    out: list[model.Backend] = []
    for i, item in enumerate(items, start=1):
        k = f"{key}[{i}]"
        if isinstance(item, str):
            host, port = split_host_port(item, k, ctx)
            out.append(model.Backend(host, port, key=k))
            continue
        f = fields(item, k, ctx, {"address", "port", "weight", "max_conns", "backup", "name"})
        if "address" not in f:
            ctx.fail(f"{k}.address", f"{k}.address is missing")
        address = as_string(f["address"], f"{k}.address", ctx)
        if "port" in f:
            host = as_host(address, f"{k}.address", ctx)
            port = as_port(as_str_or_num(f["port"], f"{k}.port", ctx), f"{k}.port", ctx)
        else:
            host, port = split_host_port(address, f"{k}.address", ctx)
        out.append(model.Backend(
            host=host,
            port=port,
            weight=as_int(f.get("weight", 1), f"{k}.weight", ctx, minimum=0, maximum=256),
            max_conns=as_int(f.get("max_conns", 0), f"{k}.max_conns", ctx, minimum=0),
            backup=as_bool(f.get("backup", False), f"{k}.backup", ctx),
            name=as_string(f.get("name", ""), f"{k}.name", ctx),
            key=k,
        ))
    names = [b.name for b in out if b.name]
    if len(names) != len(set(names)):
        ctx.fail(key, f"{key} has two backends with the same name")
    return tuple(out)
