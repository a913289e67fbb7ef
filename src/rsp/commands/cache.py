"""`rsp cache -c CONFIG purge|ban|stats ...`: act on the response cache of a config, on this machine.

The cache is one LMDB file per machine that every worker shares (docs/cache.md), so these commands open the
file itself: what they remove is gone for every worker at once, with no message to the running rsp (and they
work while it is stopped).

    rsp cache -c CONFIG purge URL...         remove every variant of each URL
    rsp cache -c CONFIG ban --prefix URL     remove every entry whose URL starts with URL
    rsp cache -c CONFIG ban --regex REGEX    ... whose URL matches REGEX (Python syntax, searched)
    rsp cache -c CONFIG stats                entries, bytes charged and budget of each cache

CONFIG defaults to $RSP_CONFIG, else /etc/rsp/rsp.lua, as for every rsp command.

`--cache NAME` chooses the cache when the config has several. URLs are absolute (`http://host/path`), as
the cache keys them: scheme and host lower-cased, the path and query as sent.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Callable
from urllib.parse import urlsplit

from rsp.cache.entry import primary_key
from rsp.cache.wiring import cache_store
from rsp.commands.config_arg import add_config_option, chosen_config
from rsp.config.lua_loader import load_config
from rsp.config.model import Config
from rsp.errors import ConfigError


def url_key(url: str) -> bytes:
    """The cache's primary key of an absolute URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"not an absolute http(s) URL: {url!r}")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return primary_key(parts.scheme.encode(), parts.netloc.encode("idna"), target.encode("latin-1"))


def prefix_key(url: str) -> bytes:
    """A URL prefix as a key prefix: like url_key, but an empty path stays empty (`http://host` bans it all)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"not an absolute http(s) URL prefix: {url!r}")
    rest = parts.path + (f"?{parts.query}" if parts.query else "")
    return primary_key(parts.scheme.encode(), parts.netloc.encode("idna"), rest.encode("latin-1"))


def ban_matcher(prefix: str | None, regex: str | None) -> Callable[[bytes], bool]:
    """What `ban` removes: keys starting with the prefix's key, or keys the regex finds a match in."""
    if prefix is not None:
        start = prefix_key(prefix)
        return lambda key: key.startswith(start)
    try:
        pattern = re.compile(regex or "")
    except re.error as exc:
        raise ConfigError(f"bad --regex {regex!r}: {exc}") from exc
    return lambda key: pattern.search(key.decode("latin-1")) is not None


def chosen(config: Config, name: str | None) -> list[str]:
    if not config.caches:
        raise ConfigError(f"{config.path} defines no caches", path=config.path)
    if name is None:
        return sorted(config.caches)
    if name not in config.caches:
        raise ConfigError(f"{config.path} has no cache named {name!r} (it has {', '.join(sorted(config.caches))})",
                          path=config.path)
    return [name]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="rsp cache", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_option(parser)
    sub = parser.add_subparsers(dest="action", required=True)
    for action in ("purge", "ban", "stats"):
        p = sub.add_parser(action)
        p.add_argument("--cache", metavar="NAME", help="the cache (default: every cache of the config)")
        if action == "purge":
            p.add_argument("urls", nargs="+", metavar="URL")
        elif action == "ban":
            how = p.add_mutually_exclusive_group(required=True)
            how.add_argument("--prefix", metavar="URL")
            how.add_argument("--regex", metavar="REGEX")
    args = parser.parse_args(argv)
    config = load_config(chosen_config(parser, args.config))
    out: dict[str, object] = {}
    for name in chosen(config, args.cache):
        store = cache_store(config.caches[name], config.path)
        if not os.path.exists(store.path):
            # Never create one here: a store this command made would be one no rsp reads (the memory-backed
            # file's name has the user's id in it: run this as the user rsp runs as, or give the cache a path).
            raise ConfigError(f"cache {name!r} has no store at {store.path} (has rsp run with this config, as "
                              "this user?)", path=config.path)
        store.open()
        try:
            if args.action == "purge":
                out[name] = {"purged": sum(store.delete(url_key(url)) for url in args.urls)}
            elif args.action == "ban":
                out[name] = {"banned": store.ban(ban_matcher(args.prefix, args.regex))}
            else:
                out[name] = {"entries": store.count(), "bytes": store.used(), "budget": store.budget,
                             "path": store.path}
        finally:
            store.close()
    print(json.dumps(out, sort_keys=True))
    return 0
