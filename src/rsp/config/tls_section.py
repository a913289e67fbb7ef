"""The TLS keys of the config: `tls` and `sni_routes`/`sni_default`/`sni_timeout` on a listener, `tls` on a pool.

```lua
listen = { { port = 443, mode = "http", pool = "web",
             tls = { certificates = { { cert = "site.pem", key = "site.key", names = { "a.example" } } },
                     default = "a.example", client_ca = "clients.pem" } },
           { port = 8443, pool = "other",            -- TCP mode, SNI routing without terminating TLS
             sni_routes = { { name = "a.example", pool = "a" }, { name = "*.b.example", pool = "b" } },
             sni_default = "other", sni_timeout = 5 } }
pools = { web = { backends = { "10.0.0.1:443" }, tls = { verify = true, ca = "internal-ca.pem", sni = "web" } } }
```

Only syntax and references are checked here (the loader stays free of I/O besides the config file);
files are read, and certificates matched with their keys, when the listener is built
(rsp.tls.server_context), whose errors name the same key paths.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rsp.config import model
from rsp.config.checks import Ctx, as_bool, as_list, as_seconds, as_string, fields

LISTENER_TLS_KEYS = frozenset({"tls", "sni_routes", "sni_default", "sni_timeout"})
POOL_TLS_KEYS = frozenset({"tls"})


def check_name(text: str, key: str, ctx: Ctx) -> str:
    """A DNS name or a leading-wildcard pattern, lower case (RFC 6066 §3: host names compare ASCII
    case-insensitively)."""
    name = text.strip().lower().rstrip(".")
    if not name or ("*" in name[1:]) or (name.startswith("*") and not name.startswith("*.")) or " " in name:
        ctx.fail(key, f"{key}: a name like 'a.example' or '*.example', got {text!r}")
    return name


def _certificates(value: Any, key: str, ctx: Ctx) -> tuple[model.TlsCertificate, ...]:
    items = as_list(value, key, ctx)
    if not items:
        ctx.fail(key, f"{key} is empty: a TLS listener needs at least one certificate")
    out = []
    for i, item in enumerate(items, start=1):
        k = f"{key}[{i}]"
        f = fields(item, k, ctx, {"cert", "key", "names"})
        if "cert" not in f:
            ctx.fail(f"{k}.cert", f"{k}.cert is missing")
        names = tuple(check_name(as_string(n, f"{k}.names", ctx), f"{k}.names", ctx)
                      for n in as_list(f.get("names", {}), f"{k}.names", ctx))
        out.append(model.TlsCertificate(cert=as_string(f["cert"], f"{k}.cert", ctx),
                                        key=as_string(f.get("key", ""), f"{k}.key", ctx), names=names, key_path=k))
    return tuple(out)


def listener_tls(value: Any, key: str, ctx: Ctx) -> model.ListenerTls:
    f = fields(value, key, ctx, {"certificates", "default", "client_ca", "protocols", "ciphers",
                                 "allow_weak_chain", "roots"})
    if "certificates" not in f:
        ctx.fail(f"{key}.certificates", f"{key}.certificates is missing")
    protocols = tuple(as_string(p, f"{key}.protocols", ctx)
                      for p in as_list(f.get("protocols", {}), f"{key}.protocols", ctx))
    for p in protocols:
        if p not in model.TLS_PROTOCOLS:
            ctx.fail(f"{key}.protocols", f"{key}.protocols: {p!r} is not one of {', '.join(model.TLS_PROTOCOLS)}"
                     " (older versions are refused: RFC 8996)")
    default = f.get("default", "")
    return model.ListenerTls(
        certificates=_certificates(f["certificates"], f"{key}.certificates", ctx),
        default=check_name(as_string(default, f"{key}.default", ctx), f"{key}.default", ctx) if default else "",
        client_ca=as_string(f.get("client_ca", ""), f"{key}.client_ca", ctx),
        protocols=protocols or model.DEFAULT_TLS_PROTOCOLS,
        ciphers=as_string(f.get("ciphers", model.MOZILLA_INTERMEDIATE_CIPHERS), f"{key}.ciphers", ctx),
        allow_weak_chain=as_bool(f.get("allow_weak_chain", False), f"{key}.allow_weak_chain", ctx),
        roots=as_string(f.get("roots", ""), f"{key}.roots", ctx),
        key_path=key,
    )


def sni_routing(f: Mapping[str, Any], key: str, ctx: Ctx, pools: Mapping[str, model.Pool]) -> model.SniRouting:
    routes = []
    for i, item in enumerate(as_list(f.get("sni_routes", {}), f"{key}.sni_routes", ctx), start=1):
        k = f"{key}.sni_routes[{i}]"
        r = fields(item, k, ctx, {"name", "pool"})
        for needed in ("name", "pool"):
            if needed not in r:
                ctx.fail(f"{k}.{needed}", f"{k}.{needed} is missing")
        pool = as_string(r["pool"], f"{k}.pool", ctx)
        if pool not in pools:
            ctx.fail(f"{k}.pool", f"{k} names pool '{pool}', which is not defined")
        routes.append(model.SniRoute(check_name(as_string(r["name"], f"{k}.name", ctx), f"{k}.name", ctx), pool))
    default = as_string(f.get("sni_default", ""), f"{key}.sni_default", ctx)
    if default and default not in pools:
        ctx.fail(f"{key}.sni_default", f"{key}.sni_default names pool '{default}', which is not defined")
    timeout = as_seconds(f.get("sni_timeout", model.DEFAULT_SNI_TIMEOUT), f"{key}.sni_timeout", ctx)
    return model.SniRouting(tuple(routes), default, timeout)


def pool_tls(value: Any, key: str, ctx: Ctx) -> model.PoolTls:
    f = fields(value, key, ctx, {"verify", "ca", "sni"})
    sni = as_string(f.get("sni", ""), f"{key}.sni", ctx)
    return model.PoolTls(
        verify=as_bool(f.get("verify", True), f"{key}.verify", ctx),
        ca=as_string(f.get("ca", ""), f"{key}.ca", ctx),
        sni=check_name(sni, f"{key}.sni", ctx) if sni else "",
        key_path=key,
    )


def tls_settings(g: Mapping[str, Any], ctx: Ctx, listeners: tuple[model.Listener, ...],
                 pools: Mapping[str, model.Pool]) -> model.TlsSettings:
    """The TLS keys of every listener of the `listen` list and every pool of `pools`."""
    out = model.TlsSettings()
    items = as_list(g.get("listen", {}), "listen", ctx) if "listen" in g else []
    for i, item in enumerate(items, start=1):
        key = f"listen[{i}]"
        f = {str(k): v for k, v in item.items() if k in LISTENER_TLS_KEYS}
        listener = next(lst for lst in listeners if lst.key == key)
        if "tls" in f:
            out.listeners[key] = listener_tls(f["tls"], f"{key}.tls", ctx)
        if "sni_routes" in f or "sni_default" in f:
            if listener.mode != "tcp":
                ctx.fail(f"{key}.sni_routes", f"{key}: SNI routing (sni_routes, sni_default) is for TCP mode; "
                         "an HTTP listener routes by Host (routes)")
            if "tls" in f:
                ctx.fail(f"{key}.sni_routes", f"{key}: sni_routes routes TLS without terminating it; "
                         "it cannot be combined with tls on the same listener")
            out.sni[key] = sni_routing(f, key, ctx, pools)
        elif "sni_timeout" in f:
            ctx.fail(f"{key}.sni_timeout", f"{key}.sni_timeout needs sni_routes or sni_default")
    if "pools" in g:
        for name, spec in g["pools"].items():
            if isinstance(spec, dict) and "tls" in spec:
                out.pools[str(name)] = pool_tls(spec["tls"], f"pools.{name}.tls", ctx)
    return out
