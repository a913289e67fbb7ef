"""The `route_store` config section: a route table in Redis shared by many rsp machines (docs/routestore.md).

    route_store = { url = "redis://127.0.0.1:6379/0", template = "web" }

Every other key has a default (model.RouteStore). Dynamic pools built from the Redis-supplied backends copy
the template pool's algorithm, health check, retries, timeouts, passive ejection and TLS; a template
left unnamed, with no pool of the default name, is one of the defaults with no backend of its own
(`add_template_pool`), so a config whose only backends are the store's needs no placeholder backend.
"""

from __future__ import annotations

from typing import Any

from rsp.config import model
from rsp.config.checks import Ctx, as_bool, as_int, as_seconds, as_string, fields

ALLOWED_KEYS = {"url", "prefix", "template", "ttl", "negative_ttl", "lookup_timeout", "channel", "default",
                "missing_status"}
# The URL schemes redis-py can connect to (and rsp's own spelling of a Sentinel deployment).
URL_SCHEMES = ("redis://", "rediss://", "unix://", "redis+sentinel://")
MISSING_STATUSES = (502, 503)


def store_template(value: Any) -> str | None:
    """The template pool `route_store` names (None without a usable section: parse_route_store says why)."""
    if not isinstance(value, dict):
        return None
    template = value.get("template", model.RouteStore().template)
    return template if isinstance(template, str) else None


def add_template_pool(value: Any, pools: dict[str, model.Pool], timeouts: model.Timeouts) -> None:
    """A listener whose only backends come from the store needs no placeholder backend: without a `template`
    key and a pool of the default template's name, that pool is one of the defaults with no backend of its
    own (its hosts' pools get their backends from Redis; a request the store cannot route gets the missing
    status). A template named explicitly must be defined (a typo is an error, not an empty pool)."""
    template = store_template(value)
    if template is not None and isinstance(value, dict) and "template" not in value and template not in pools:
        pools[template] = model.Pool(template, (), connect_timeout=timeouts.connect)


def parse_route_store(value: Any, pools: dict[str, model.Pool], listeners: list[model.Listener],
                      ctx: Ctx, sni_routing: bool = False) -> model.RouteStore | None:
    """`sni_routing`: a TCP listener routes by SNI (it reads the store too: rsp.proxy.sni_proxy)."""
    if value is None:
        return None
    key = "route_store"
    if not sni_routing and not any(lst.mode == "http" for lst in listeners):
        ctx.fail(key, "route_store routes HTTP requests by their Host and TLS connections by their server name: "
                      "no listener has mode = \"http\" or sni_routes")
    f = fields(value, key, ctx, ALLOWED_KEYS)
    d = model.RouteStore()
    url = as_string(f.get("url", d.url), f"{key}.url", ctx)
    if not url.startswith(URL_SCHEMES):
        ctx.fail(f"{key}.url", f"{key}.url must start with one of {', '.join(URL_SCHEMES)}, got {url!r}"
                 " (Redis Cluster is not supported: redis-py's asyncio cluster client has no pub/sub)")
    template = as_string(f.get("template", d.template), f"{key}.template", ctx)
    if template not in pools:
        ctx.fail(f"{key}.template", f"{key}.template names pool '{template}', which is not defined "
                 "(the pool whose settings the Redis-supplied backends get)")
    prefix = as_string(f.get("prefix", d.prefix), f"{key}.prefix", ctx)
    channel = as_string(f.get("channel", d.channel), f"{key}.channel", ctx)
    if not channel:
        ctx.fail(f"{key}.channel", f"{key}.channel must not be empty")
    status = as_int(f.get("missing_status", d.missing_status), f"{key}.missing_status", ctx)
    if status not in MISSING_STATUSES:
        ctx.fail(f"{key}.missing_status", f"{key}.missing_status must be 502 or 503, got {status}")
    return model.RouteStore(
        url=url,
        prefix=prefix,
        template=template,
        ttl=as_seconds(f.get("ttl", d.ttl), f"{key}.ttl", ctx),
        negative_ttl=as_seconds(f.get("negative_ttl", d.negative_ttl), f"{key}.negative_ttl", ctx),
        lookup_timeout=as_seconds(f.get("lookup_timeout", d.lookup_timeout), f"{key}.lookup_timeout", ctx),
        channel=channel,
        default=as_bool(f.get("default", d.default), f"{key}.default", ctx),
        missing_status=status,
    )
