"""The sandboxed apps' config keys: `apps`, `forward`, `forward_mode`, `sandbox_network`, `sandbox_instance`,
`sandbox_runtime_dir` (docs/config.md, "Sandboxed apps").

An app's pool need not be declared under `pools`: it is created empty and filled at run time, as apps
become ready. A relayed forward (`forward = { [6000] = "one:8080" }`) becomes a TCP listener on the host
port whose pool `forward:6000` holds that one app once it is ready.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Final

from rsp.config import model
from rsp.config.checks import (
    Ctx,
    as_bool,
    as_choice,
    as_int,
    as_list,
    as_port,
    as_seconds,
    as_str_or_num,
    as_string,
    as_table,
    fields,
)

SANDBOX_KEYS: Final = ("apps", "forward", "forward_mode", "sandbox_network", "sandbox_instance",
                       "sandbox_runtime_dir")
APP_KEYS: Final = {"command", "dir", "env", "user", "port", "pool", "sandbox", "hostname", "log_max_bytes",
                   "grace"}
# App names become parts of namespace names, hostnames, file names and `rsp apps` arguments.
APP_NAME: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}\Z")
# The instance tag is part of every interface name, which Linux limits to 15 bytes (IFNAMSIZ - 1).
INSTANCE_TAG: Final = re.compile(r"[a-z0-9]{1,6}\Z")
# Smallest range: one /30 per app, and room for a few apps.
MAX_NETWORK_PREFIX: Final = 28
# A forwarded port listens on every interface, as the original rsp's listeners did.
FORWARD_ADDRESS: Final = "0.0.0.0"
# Below this an app's log would rotate on every few lines.
MIN_LOG_BYTES: Final = 4096


def parse_sandbox(g: Any, ctx: Ctx, pools: dict[str, model.Pool], listeners: list[model.Listener]) -> model.Sandbox:
    """Read the sandbox keys of the globals `g`; add the apps' pools to `pools` and the relayed forwards to
    `listeners`."""
    # Sorted by name: Lua tables have no order, and an app's index decides its address.
    apps = tuple(sorted((_app(name, spec, ctx) for name, spec in as_table(g.get("apps", {}), "apps", ctx).items()),
                        key=lambda app: app.name))
    by_name = {app.name: app for app in apps}
    network = as_string(g.get("sandbox_network", model.DEFAULT_SANDBOX_NETWORK), "sandbox_network", ctx)
    try:
        net = ipaddress.IPv4Network(network)
    except ValueError as exc:
        ctx.fail("sandbox_network", f"sandbox_network must be an IPv4 network like '10.213.0.0/16': {exc}")
    if net.prefixlen > MAX_NETWORK_PREFIX:
        ctx.fail("sandbox_network", f"sandbox_network is too small: at most /{MAX_NETWORK_PREFIX}")
    if sum(app.sandbox for app in apps) > net.num_addresses // 4:
        ctx.fail("sandbox_network",
                 f"sandbox_network {network} has room for {net.num_addresses // 4} apps (a /30 each)")
    instance = as_string(g.get("sandbox_instance", ""), "sandbox_instance", ctx)
    if instance and not INSTANCE_TAG.match(instance):
        ctx.fail("sandbox_instance", "sandbox_instance must be 1 to 6 lower-case letters or digits")
    mode = as_choice(g.get("forward_mode", "relay"), model.FORWARD_MODES, "forward_mode", ctx)
    forwards = _forwards(g.get("forward", {}), by_name, ctx)
    unsandboxed: dict[int, str] = {}
    for app in apps:
        if not app.sandbox:
            if app.port in unsandboxed:
                ctx.fail(f"apps.{app.name}.port", f"apps {unsandboxed[app.port]} and {app.name} both run unsandboxed"
                         f" on 127.0.0.1:{app.port}; give them distinct ports")
            unsandboxed[app.port] = app.name
        if app.pool and app.pool not in pools:
            pools[app.pool] = model.Pool(app.pool, ())
    for fwd in forwards:
        if mode == "nat" and not by_name[fwd.app].sandbox:
            ctx.fail(fwd.key, f"forward {fwd.port}: app {fwd.app} is unsandboxed; NAT forwards go to namespaces")
        if mode == "relay":
            pools[fwd.pool] = model.Pool(fwd.pool, ())
            listeners.append(model.Listener(FORWARD_ADDRESS, fwd.port, fwd.pool, key=fwd.key))
    return model.Sandbox(
        apps=apps,
        network=str(net),
        instance=instance,
        forwards=forwards,
        forward_mode=mode,
        runtime_dir=as_string(g.get("sandbox_runtime_dir", model.DEFAULT_SANDBOX_RUNTIME_DIR),
                              "sandbox_runtime_dir", ctx),
    )


def _app(name: Any, spec: Any, ctx: Ctx) -> model.App:
    if not isinstance(name, str) or not APP_NAME.match(name):
        ctx.fail("apps", f"app names must be 1-32 lower-case letters, digits, '-' or '_', got {name!r}")
    key = f"apps.{name}"
    f = fields(spec, key, ctx, APP_KEYS)
    for required in ("command", "port"):
        if required not in f:
            ctx.fail(f"{key}.{required}", f"{key}.{required} is missing")
    command = tuple(as_string(part, f"{key}.command[{i}]", ctx)
                    for i, part in enumerate(as_list(f["command"], f"{key}.command", ctx), start=1))
    if not command:
        ctx.fail(f"{key}.command", f"{key}.command is empty: give the program and its arguments")
    env: list[tuple[str, str]] = []
    for var, value in as_table(f.get("env", {}), f"{key}.env", ctx).items():
        if not isinstance(var, str) or not var or "=" in var:
            ctx.fail(f"{key}.env", f"{key}.env names must be strings without '=', got {var!r}")
        env.append((var, as_str_or_num(value, f"{key}.env.{var}", ctx)))
    hostname = as_string(f.get("hostname", name), f"{key}.hostname", ctx)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.-]{0,62}", hostname):
        ctx.fail(f"{key}.hostname", f"{key}.hostname is not a valid host name: {hostname!r}")
    return model.App(
        name=name,
        command=command,
        port=as_port(as_str_or_num(f["port"], f"{key}.port", ctx), f"{key}.port", ctx),
        pool=as_string(f.get("pool", ""), f"{key}.pool", ctx),
        dir=as_string(f.get("dir", ""), f"{key}.dir", ctx),
        env=tuple(env),
        user=as_string(f.get("user", ""), f"{key}.user", ctx),
        sandbox=as_bool(f.get("sandbox", True), f"{key}.sandbox", ctx),
        hostname=hostname,
        log_max_bytes=as_int(f.get("log_max_bytes", model.DEFAULT_APP_LOG_MAX_BYTES), f"{key}.log_max_bytes", ctx,
                             minimum=MIN_LOG_BYTES),
        grace=as_seconds(f.get("grace", model.DEFAULT_APP_GRACE), f"{key}.grace", ctx),
        key=key,
    )


def _forwards(value: Any, apps: dict[str, model.App], ctx: Ctx) -> tuple[model.Forward, ...]:
    out: list[model.Forward] = []
    for port_value, target in as_table(value, "forward", ctx).items():
        key = f"forward[{port_value}]"
        port = as_port(as_str_or_num(port_value, key, ctx), key, ctx)
        text = as_string(target, key, ctx)
        app, sep, app_port = text.rpartition(":")
        if not sep or app not in apps:
            ctx.fail(key, f"forward {port} must name an app and its port like 'one:8080', got {text!r}"
                     f" (apps: {', '.join(sorted(apps)) or 'none'})")
        out.append(model.Forward(port, app, as_port(app_port, key, ctx), key=key))
    return tuple(sorted(out, key=lambda fwd: fwd.port))
