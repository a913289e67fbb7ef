"""The runtime API's `cache` commands, answered by the master for the whole machine (docs/cache.md, "Purge"):

    cache stats                  each cache's store (entries, bytes, budget: the machine's) and its counters,
                                 summed over the workers and per worker
    cache purge URL...           every variant of each absolute URL removed
    cache ban prefix URL         every entry whose URL starts with URL
    cache ban regex REGEX        every entry whose URL REGEX matches (Python syntax, searched; the rest of the
                                 line, spaces included)

Every cache of the config is acted on; the reply is one JSON document keyed by cache name, like `rsp cache`'s.
A cache is one LMDB file per machine that every worker maps, so the master acts on the file (rsp.cache.
operations) and every worker sees the change at its next lookup: nothing is sent to them. The store work runs
in a thread (a ban scans the whole store in one write transaction; the master's loop keeps running health
checks meanwhile), one command at a time (LMDB allows one open environment per file per process).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from rsp.errors import RspError

if TYPE_CHECKING:
    from rsp.config.model import Config
    from rsp.master.master import Master

CACHE_HELP: Final = ["cache stats", "cache purge URL...", "cache ban prefix URL", "cache ban regex REGEX"]
# One command at a time (see the module docstring).
_busy = asyncio.Lock()


class CacheCommandError(RspError):
    pass


async def answer_cache(line: str, master: Master) -> str:
    """The JSON reply to a `cache ...` line (errors as {"error": ...}, like every admin reply)."""
    try:
        return json.dumps(await _dispatch(line, master), indent=1, sort_keys=True)
    except RspError as exc:
        return json.dumps({"error": str(exc)})


async def _dispatch(line: str, master: Master) -> dict[str, Any]:
    from rsp.cache import operations as ops  # imports lmdb: only when a cache command is asked for

    config = master.config
    if not config.caches:
        raise CacheCommandError("the config defines no caches")
    words = line.split()
    match words:
        case ["cache", "stats"]:
            figures = await _on_every_cache(config, ops.store_figures)
            snapshots = await master.gather_snapshots()
            return with_worker_counters(figures, [s.get("caches", {}) for s in snapshots],
                                        [s.get("pid") for s in snapshots])
        case ["cache", "purge", *urls] if urls:
            keys = [ops.url_key(url) for url in urls]
            return await _on_every_cache(config, lambda store: ops.purge(store, keys))
        case ["cache", "ban", "prefix", url]:
            matches = ops.ban_matcher(url, None)
            return await _on_every_cache(config, lambda store: ops.ban(store, matches))
        case ["cache", "ban", "regex", _, *_]:
            matches = ops.ban_matcher(None, line.strip().split(None, 3)[3])
            return await _on_every_cache(config, lambda store: ops.ban(store, matches))
    raise CacheCommandError(f"unknown command {line.strip()!r}; the cache commands: {'; '.join(CACHE_HELP)}")


async def _on_every_cache(config: Config, act: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    from rsp.cache import operations as ops

    def run() -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in ops.chosen(config, None):
            with ops.opened(config, name) as store:
                out[name] = act(store)
        return out

    async with _busy:
        return await asyncio.to_thread(run)


def with_worker_counters(figures: dict[str, Any], workers: list[dict[str, Any]],
                         pids: list[Any]) -> dict[str, Any]:
    """Each cache's store figures with its counters summed over the workers (`workers`: each worker's
    rsp.cache.hook.cache_figures) and listed per worker."""
    for name, document in figures.items():
        totals: dict[str, int] = {}
        per_worker = []
        for pid, theirs in zip(pids, workers, strict=True):
            mine = theirs.get(name)
            if mine is None:
                continue
            counters = {k: v for k, v in mine.items() if isinstance(v, int) and not isinstance(v, bool)}
            counters["evicted"] = int(mine.get("store", {}).get("evicted_here", 0))
            for key, value in counters.items():
                totals[key] = totals.get(key, 0) + value
            per_worker.append({"pid": pid, **counters})
        document["counters"] = totals
        document["workers"] = per_worker
    return figures
