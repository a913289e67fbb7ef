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

from rsp.cache.operations import ban, ban_matcher, chosen, opened, purge, store_figures, url_key
from rsp.commands.config_arg import add_config_option, chosen_config
from rsp.config.lua_loader import load_config

__all__ = ["main", "url_key"]


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
        with opened(config, name) as store:
            if args.action == "purge":
                out[name] = purge(store, [url_key(url) for url in args.urls])
            elif args.action == "ban":
                out[name] = ban(store, ban_matcher(args.prefix, args.regex))
            else:
                out[name] = store_figures(store)
    print(json.dumps(out, sort_keys=True))
    return 0
