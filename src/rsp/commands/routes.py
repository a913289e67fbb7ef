"""`rsp routes`: read and write the route table in Redis (docs/routestore.md), the schema rsp reads.

    rsp routes --redis redis://127.0.0.1:6379/0 set app.example.com 10.0.0.1:8080 10.0.0.2:8080
    rsp routes --config rsp.lua list

Every write publishes the changed host on the invalidation channel (`*` for the default route), so every
running rsp sharing the table routes by the new value within moments instead of at its cache's TTL.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import redis
from redis.exceptions import RedisError
from redis.sentinel import Sentinel

from rsp.commands.config_arg import CONFIG_ENV, DEFAULT_CONFIG, default_config
from rsp.config.lua_loader import load_config
from rsp.config.model import RouteStore
from rsp.errors import RouteStoreError
from rsp.routestore.redis_link import CONNECT_TIMEOUT, parse_sentinel_url
from rsp.routestore.schema import (
    DEFAULT_HOST,
    INVALIDATE_ALL,
    KEY_SUFFIX,
    backends_key,
    host_of_key,
    normalise_host,
    parse_member,
)

# A CLI command against a LAN Redis: a few seconds means it is not there.
COMMAND_TIMEOUT = 5.0
# SCAN's COUNT hint: keys examined per round trip when listing.
SCAN_COUNT = 1000

USAGE = """\
rsp routes [--redis URL | -c CONFIG.lua] COMMAND

  list                        every host and its backends
  show HOST                   one host's backends (or what it falls back to)
  set HOST BACKEND...         replace HOST's backends (BACKEND: address:port)
  add HOST BACKEND...         add backends to HOST
  remove HOST [BACKEND...]    remove these backends from HOST, or HOST's route altogether
  default [BACKEND...]        show, or replace, the default route (hosts with no route of their own)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rsp routes", usage=USAGE, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--redis", metavar="URL", help="Redis URL (default: the config's route_store.url)")
    where.add_argument("-c", "--config", metavar="CONFIG",
                       help=f"a Lua config whose route_store to use (default: ${CONFIG_ENV}, else {DEFAULT_CONFIG}, "
                            "when it exists and has a route_store; else the defaults below)")
    parser.add_argument("--prefix", help="key prefix (default: hostnames: or the config's)")
    parser.add_argument("--channel", help="invalidation channel (default: rsp:routes or the config's)")
    parser.add_argument("command", choices=("list", "show", "set", "add", "remove", "default"))
    parser.add_argument("args", nargs="*")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    settings = RouteStore()
    if args.config:
        config = load_config(args.config)
        if config.route_store is None:
            raise RouteStoreError(f"{args.config} has no route_store section")
        settings = config.route_store
    elif not args.redis and os.path.exists(default_config()):
        # The default config counts only when it has a route_store: without one, the defaults below apply.
        default = load_config(default_config())
        settings = default.route_store or settings
    url = args.redis or settings.url
    prefix = settings.prefix if args.prefix is None else args.prefix
    channel = args.channel or settings.channel
    client = connect(url)
    try:
        for line in run(client, prefix, channel, args.command, list(args.args)):
            print(line)
    except (RedisError, OSError) as exc:
        raise RouteStoreError(f"Redis at {url}: {type(exc).__name__}: {exc}") from exc
    finally:
        client.close()
    return 0


def connect(url: str) -> redis.Redis:
    options: dict[str, Any] = {"socket_connect_timeout": CONNECT_TIMEOUT, "socket_timeout": COMMAND_TIMEOUT,
                               "decode_responses": True}
    if url.startswith("redis+sentinel://"):
        sentinels, service, db, password = parse_sentinel_url(url)
        manager = Sentinel(sentinels, socket_connect_timeout=CONNECT_TIMEOUT,
                           socket_timeout=COMMAND_TIMEOUT)
        client: redis.Redis = manager.master_for(service, db=db, password=password,
                                                **options)
        return client
    try:
        return redis.Redis.from_url(url, **options)
    except ValueError as exc:
        raise RouteStoreError(f"bad Redis URL {url!r}: {exc}") from exc


def _members(words: list[str], need: bool) -> list[str]:
    if need and not words:
        raise RouteStoreError("name at least one BACKEND (address:port)")
    out = []
    for word in words:
        backend = parse_member(word)
        if backend is None:
            raise RouteStoreError(f"{word!r} is not a backend (address:port, [v6]:port or name:port)")
        out.append(backend.address)
    return out


def _host(words: list[str]) -> tuple[str, list[str]]:
    if not words:
        raise RouteStoreError("name a HOST")
    host = normalise_host(words[0])
    if host == DEFAULT_HOST.lower():
        host = DEFAULT_HOST  # the default route's key keeps the earlier router's spelling
    if not host or any(c in host for c in " *?[]"):
        raise RouteStoreError(f"{words[0]!r} is not a host name")
    return host, words[1:]


def run(client: redis.Redis, prefix: str, channel: str, command: str, words: list[str]) -> list[str]:
    """Do one command; returns the lines to print."""
    if command == "list":
        return _list(client, prefix)
    if command == "default":
        if not words:
            return [_show(client, prefix, DEFAULT_HOST)]
        command, words = "set", [DEFAULT_HOST, *words]
    host, rest = _host(words)
    key = backends_key(prefix, host)
    if command == "show":
        return [_show(client, prefix, host)]
    if command in ("set", "add"):
        members = _members(rest, need=True)
        pipe = client.pipeline(transaction=True)  # MULTI/EXEC: no reader sees the key half-written
        if command == "set":
            pipe.delete(key)
        pipe.sadd(key, *members)
        pipe.execute()
    elif command == "remove":
        members = _members(rest, need=False)
        if members:
            client.srem(key, *members)
        else:
            client.delete(key)
    else:
        raise RouteStoreError(f"unknown command {command!r}")
    # The default route concerns every host that falls back to it: invalidate everything.
    heard = client.publish(channel, INVALIDATE_ALL if host == DEFAULT_HOST else host)
    return [_show(client, prefix, host), f"(invalidation published on {channel}: {heard} subscriber(s))"]


def _show(client: redis.Redis, prefix: str, host: str) -> str:
    members = _smembers(client, backends_key(prefix, host))
    if members:
        return f"{host} {' '.join(members)}"
    if host == DEFAULT_HOST:
        return f"{host} (none: hosts without a route get the missing status)"
    default = _smembers(client, backends_key(prefix, DEFAULT_HOST))
    fallback = " ".join(default) if default else "none: the missing status"
    return f"{host} (no route: default route, {fallback})"


def _list(client: redis.Redis, prefix: str) -> list[str]:
    pattern = _glob_escape(prefix) + "*" + KEY_SUFFIX
    lines = []
    for key in sorted(client.scan_iter(match=pattern, count=SCAN_COUNT)):
        host = host_of_key(prefix, key)
        if host is None:
            continue
        try:
            members = _smembers(client, key)
        except RedisError as exc:
            lines.append(f"{host} (unreadable: {exc})")
            continue
        lines.append(f"{host} {' '.join(members)}")
    return lines


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _smembers(client: redis.Redis, key: str) -> list[str]:
    return sorted(m.decode("utf-8", "replace") if isinstance(m, bytes) else str(m) for m in client.smembers(key))
