"""The immutable configuration model.

Every value here has been validated by a loader; code that receives a `Config` never re-checks it.
Defaults are named constants with the reason for their value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Relay flow control. 256 KiB matches uvloop's read size, so one read never overshoots the mark by more
# than one chunk; the low-water mark at a quarter avoids pause/resume ping-pong (asyncio uses high/4 too).
DEFAULT_HIGH_WATER = 256 * 1024
DEFAULT_LOW_WATER = 64 * 1024
# nginx's proxy_timeout default is 10 min, HAProxy's recommended `timeout client` for TCP is minutes;
# the rsp issue fixes it at 300 s.
DEFAULT_IDLE_TIMEOUT = 300.0
# HAProxy's documentation recommends `timeout connect` of a few seconds; 5 s matches its examples.
DEFAULT_CONNECT_TIMEOUT = 5.0
# How long SIGTERM waits for live connections before closing them (nginx worker_shutdown_timeout style).
DEFAULT_DRAIN_TIMEOUT = 30.0
# Health checks: HAProxy's defaults (inter 2s, rise 2, fall 3); timeout defaults to the interval there,
# we use 1 s so that a check always finishes before the next one starts.
DEFAULT_CHECK_INTERVAL = 2.0
DEFAULT_CHECK_TIMEOUT = 1.0
DEFAULT_RISE = 2
DEFAULT_FALL = 3
# Passive checks (outlier detection, like Envoy's consecutive_5xx / HAProxy observe layer4):
# this many consecutive connection failures mark a backend DOWN for the cool-down.
DEFAULT_PASSIVE_FAILURES = 3
DEFAULT_PASSIVE_COOLDOWN = 10.0
# Connect retries on another backend (HAProxy `retries` defaults to 3).
DEFAULT_RETRIES = 3

ALGORITHMS = ("roundrobin", "leastconn", "random", "first", "hash")
HASH_KEYS = ("source", "header", "cookie", "uri")
MODES = ("tcp", "http")
CHECK_KINDS = ("none", "tcp", "http")


@dataclass(frozen=True, slots=True)
class Backend:
    host: str
    port: int
    weight: int = 1
    max_conns: int = 0  # 0: no limit
    backup: bool = False
    name: str = ""

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def label(self) -> str:
        return self.name or self.address


@dataclass(frozen=True, slots=True)
class HealthCheck:
    kind: str = "none"  # one of CHECK_KINDS
    interval: float = DEFAULT_CHECK_INTERVAL
    timeout: float = DEFAULT_CHECK_TIMEOUT
    rise: int = DEFAULT_RISE
    fall: int = DEFAULT_FALL
    method: str = "GET"
    path: str = "/"
    expect_status: int = 200
    host: str = ""


@dataclass(frozen=True, slots=True)
class Pool:
    name: str
    backends: tuple[Backend, ...]
    algorithm: str = "roundrobin"
    hash_key: str = "source"  # for algorithm "hash": source | header | cookie | uri
    hash_name: str = ""  # header or cookie name for hash_key header/cookie
    health: HealthCheck = field(default_factory=HealthCheck)
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    passive_failures: int = DEFAULT_PASSIVE_FAILURES
    passive_cooldown: float = DEFAULT_PASSIVE_COOLDOWN


@dataclass(frozen=True, slots=True)
class Listener:
    host: str
    port: int
    pool: str
    mode: str = "tcp"  # one of MODES

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = DEFAULT_CONNECT_TIMEOUT
    idle: float = DEFAULT_IDLE_TIMEOUT
    drain: float = DEFAULT_DRAIN_TIMEOUT


@dataclass(frozen=True, slots=True)
class Config:
    path: str
    listeners: tuple[Listener, ...]
    pools: dict[str, Pool]
    timeouts: Timeouts = field(default_factory=Timeouts)
    high_water: int = DEFAULT_HIGH_WATER
    low_water: int = DEFAULT_LOW_WATER
    admin_socket: str = ""  # Unix socket path for the runtime API; "" disables it
    log_level: str = "info"

    def pool_for(self, listener: Listener) -> Pool:
        return self.pools[listener.pool]
