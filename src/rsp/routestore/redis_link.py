"""The Redis side of the route store: one client, lookups in pipelines, a pub/sub task, reconnects.

Everything here runs on the event loop as coroutines of redis-py's asyncio client: a lookup never blocks
the loop, and is bounded by the caller (RouteStore) with `lookup_timeout`. The pub/sub task is also the
liveness probe: while it is subscribed Redis is *up*; when its connection fails the link is *down*, logs
once (not per retry, not per request), retries with exponential backoff, and logs the recovery with the
outage's length. Messages published while the subscription was down are lost (pub/sub does not queue), so
each (re)connection calls `on_connected`, which refreshes every cached route.

Writes by other tools: besides the channel, the link subscribes to the keyspace notifications of the
route keys (`__keyspace@DB__:PREFIX*`, https://redis.io/docs/latest/develop/use/keyspace-notifications/).
They are opt-in on the Redis side (`notify-keyspace-events Kgs`: set commands and DEL; or `KA`): where
the operator turned them on, a route written by any tool (a control panel's own SADD) invalidates the host
at once; where not (managed Redis may forbid CONFIG SET), nothing arrives and the TTL stays the safety net.
rsp never runs CONFIG SET itself.

URLs: redis://, rediss:// (TLS), unix:// through redis-py's `from_url`; `redis+sentinel://h1:p1,h2:p2/
service[/db]` through redis-py's Sentinel client (it asks the sentinels for the service's master and
follows a failover). Redis Cluster is refused by the config: redis-py's asyncio cluster client has no
pub/sub, and rsp's invalidation needs it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel
from redis.exceptions import RedisError

from rsp.config.model import RouteStore
from rsp.errors import ConfigError
from rsp.routestore.schema import DEFAULT_HOST, INVALIDATE_ALL, host_of_key

# Reconnect backoff: the first retry soon (a restart of Redis takes well under a second), then doubling to
# a ceiling that keeps recovery within a couple of seconds of Redis's return without hammering a dead host.
INITIAL_BACKOFF: Final = 0.05
MAX_BACKOFF: Final = 2.0
# TCP connect to Redis: a LAN peer answers in milliseconds; a second means it is not there.
CONNECT_TIMEOUT: Final = 1.0
# A subscribed connection hears nothing while no route changes: redis-py pings it this often so that a
# silently dead link (a peer gone without a FIN) is noticed.
PUBSUB_HEALTH_INTERVAL: Final = 5
# How long one wait for a pub/sub message lasts before the loop checks whether it should stop.
PUBSUB_POLL: Final = 1.0
# Hosts per pipelined refresh: one round trip each, small enough to keep Redis's reply buffers modest.
REFRESH_BATCH: Final = 500

SetReply = list[bytes] | BaseException


def parse_sentinel_url(url: str) -> tuple[list[tuple[str, int]], str, int, str | None]:
    """`redis+sentinel://[:password@]h1:p1,h2:p2/SERVICE[/DB]` -> (sentinels, service, db, password)."""
    parts = urlsplit(url)
    sentinels = []
    for item in parts.netloc.rpartition("@")[2].split(","):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"route store: bad sentinel address {item!r} in {url!r}")
        sentinels.append((host.strip("[]"), int(port)))
    path = [p for p in parts.path.split("/") if p]
    if not path:
        raise ConfigError(f"route store: {url!r} names no service (redis+sentinel://host:port/SERVICE/DB)")
    db = int(path[1]) if len(path) > 1 and path[1].isdigit() else 0
    password = unquote(parts.password) if parts.password else None
    return sentinels, path[0], db, password


def make_client(url: str, command_timeout: float) -> aioredis.Redis:
    """The asyncio client for `url` (its connections open lazily, on the first command)."""
    options: dict[str, Any] = {"socket_connect_timeout": CONNECT_TIMEOUT, "socket_timeout": command_timeout,
                               "health_check_interval": PUBSUB_HEALTH_INTERVAL}
    if url.startswith("redis+sentinel://"):
        sentinels, service, db, password = parse_sentinel_url(url)
        sentinel = Sentinel(sentinels, socket_connect_timeout=CONNECT_TIMEOUT,
                            socket_timeout=command_timeout)
        client: aioredis.Redis = sentinel.master_for(service, db=db, password=password, **options)
        return client
    return aioredis.from_url(url, **options)


class RedisLink:
    """on_message(data): a pub/sub message on the channel; on_connected(): (re)subscribed; log(line)."""

    def __init__(self, settings: RouteStore, on_message: Callable[[str], None], on_connected: Callable[[], None],
                 log: Callable[[str], None], clock: Callable[[], float]) -> None:
        self.settings = settings
        self.client = make_client(settings.url, max(settings.lookup_timeout, CONNECT_TIMEOUT))
        self.on_message = on_message
        self.on_connected = on_connected
        self.log = log
        self.clock = clock
        self.up = False
        self.down_since: float | None = None  # set when an outage was logged
        self.ever_up = False
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.db = int(self.client.connection_pool.connection_kwargs.get("db", 0) or 0)

    def host_written(self, channel: str, keyspace: str) -> str | None:
        """The host whose route key a keyspace notification names (INVALIDATE_ALL for the default route)."""
        host = host_of_key(self.settings.prefix, channel[len(keyspace):]) if channel.startswith(keyspace) else None
        return INVALIDATE_ALL if host == DEFAULT_HOST else host

    # -- lookups --------------------------------------------------------------------------------------
    async def fetch(self, keys: list[str]) -> list[SetReply]:
        """SMEMBERS of each key in one round trip; a key's error (WRONGTYPE) is its reply, not raised.
        A connection failure raises (RedisError or OSError) and marks the link down."""
        try:
            pipe = self.client.pipeline(transaction=False)
            for key in keys:
                pipe.smembers(key)
            replies = await pipe.execute(raise_on_error=False)
        except (RedisError, OSError) as exc:
            self.lost(exc)
            raise
        return [r if isinstance(r, BaseException) else sorted(r) for r in replies]

    # -- liveness and invalidation ---------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        try:
            await self.client.aclose()
        except (RedisError, OSError):
            pass

    def lost(self, exc: BaseException) -> None:
        """The link failed: log once per outage."""
        self.up = False
        if self.down_since is None and not self._stopping:
            self.down_since = self.clock()
            self.log(f"route store: Redis at {self.settings.url} unreachable ({type(exc).__name__}: {exc}); "
                     "serving the last known routes, reconnecting")

    def _recovered(self) -> None:
        self.up = True
        self.ever_up = True
        if self.down_since is not None:
            self.log(f"route store: Redis at {self.settings.url} is back after "
                     f"{self.clock() - self.down_since:.1f} s; refreshing every cached route")
            self.down_since = None
        self.on_connected()

    async def _run(self) -> None:
        backoff = INITIAL_BACKOFF
        while not self._stopping:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.settings.channel)
                keyspace = f"__keyspace@{self.db}__:"
                await pubsub.psubscribe(f"{keyspace}{self.settings.prefix}*")
                await self.client.ping()
                backoff = INITIAL_BACKOFF
                self._recovered()
                while not self._stopping:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=PUBSUB_POLL)
                    if message is None:
                        continue
                    if message.get("type") == "message":
                        data = message.get("data")
                        self.on_message(data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data))
                    elif message.get("type") == "pmessage":
                        host = self.host_written(_text(message.get("channel")), keyspace)
                        if host is not None:
                            self.on_message(host)
            except (RedisError, OSError) as exc:
                self.lost(exc)
            finally:
                try:
                    await pubsub.aclose()
                except (RedisError, OSError):
                    pass
            if self._stopping:
                break
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
