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
# How long the old workers of a reload finish what they hold (the figure; nginx has no bound by
# default, HAProxy's hard-stop-after is commonly tens of seconds).
DEFAULT_RELOAD_GRACE = 30.0
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


# ---- Lua in the phases (issue 19, rsp.lua; parsed in config/lua_section.py) ---------------------------
@dataclass(frozen=True, slots=True)
class LuaHandler:
    """One phase's handler, as Lua source text: what survives the trip to a worker (a Lua function cannot be
    pickled). kind "function": `source` is a function expression written in the config file, padded with
    newlines so that its first line is `line` (errors then name the config's own lines); kind "file": `source`
    is the file's chunk, run as the handler's body (OpenResty's *_by_lua_file)."""

    phase: str
    kind: str  # "function" | "file"
    source: str
    path: str  # the file the source came from (the config, or the handler's file)
    line: int  # where the handler starts in `path`
    key: str = field(default="", compare=False)  # `lua.access`, `listen[1].lua.balancer`


@dataclass(frozen=True, slots=True)
class LuaSettings:
    """A `lua = { ... }` table: the handlers it names, per phase; at the top level also the shared dictionaries
    (name, byte bound), the package path (absolute `?` patterns) and where the dictionaries live. Tuples, not
    dicts, so that a Listener or Route holding one stays hashable."""

    handlers: tuple[LuaHandler, ...]
    shared: tuple[tuple[str, int], ...] = ()
    package_path: tuple[str, ...] = ()
    shared_dir: str = ""  # "" = derived from the config path under the runtime dir (rsp.lua.shared_dict)
    key: str = field(default="", compare=False)

    def handler(self, phase: str) -> LuaHandler | None:
        for handler in self.handlers:
            if handler.phase == phase:
                return handler
        return None


@dataclass(frozen=True, slots=True)
class Backend:
    host: str
    port: int
    weight: int = 1
    max_conns: int = 0  # 0: no limit
    backup: bool = False
    name: str = ""
    # The config key it was read from (`pools.web.backends[2]`), for errors found after loading.
    key: str = field(default="", compare=False)

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


# ---- HTTP/2 to clients (rsp.http2, docs/http2.md) -------------------------------------------------------
# Each limit bounds one resource or one attack; where each default comes from is in docs/http2.md.
HTTP2_MODES = ("alpn", "prior-knowledge")
# SETTINGS_MAX_CONCURRENT_STREAMS: nginx http2_max_concurrent_streams 128 (HAProxy 100; RFC 9113 §6.5.2
# recommends no less than 100). Streams beyond it are refused with REFUSED_STREAM (§5.1.2).
DEFAULT_H2_MAX_CONCURRENT_STREAMS = 128
# SETTINGS_INITIAL_WINDOW_SIZE: the RFC's 65535 (HAProxy's tune.h2.initial-window-size, nginx's 64 KiB
# http2_body_preread_size): what one stream's request body may hold in rsp before the backend takes it.
DEFAULT_H2_INITIAL_WINDOW = 65535
# SETTINGS_MAX_FRAME_SIZE: the RFC minimum and default 16384 (HAProxy tune.h2.max-frame-size).
DEFAULT_H2_MAX_FRAME_SIZE = 16384
# SETTINGS_HEADER_TABLE_SIZE: the RFC default 4096 (HAProxy tune.h2.header-table-size, nginx's fixed table).
DEFAULT_H2_HEADER_TABLE_SIZE = 4096
# SETTINGS_MAX_HEADER_LIST_SIZE (decoded, RFC 9113 §6.5.2 counting 32 bytes per field): 64 KiB, the
# HTTP/1 header section cap (HttpSettings) and h2's own default; Envoy max_request_headers_kb is 60.
DEFAULT_H2_MAX_HEADER_LIST = 64 * 1024
# The encoded header block, HEADERS + CONTINUATION frames with their 9-byte frame headers, counted before
# any decoding (CONTINUATION flood, CVE-2024-27316 family), and the frames one block may span.
DEFAULT_H2_MAX_HEADER_BLOCK = 64 * 1024
DEFAULT_H2_MAX_HEADER_FRAMES = 32
# Streams per connection, then a graceful GOAWAY: nginx keepalive_requests 1000.
DEFAULT_H2_MAX_STREAMS_PER_CONNECTION = 1000
# Frame floods are counted per interval of this many seconds; past a limit the connection ends with
# GOAWAY ENHANCE_YOUR_CALM (RFC 9113 §5.4.1, §7). See docs/http2.md for each figure's reasoning.
DEFAULT_H2_FLOOD_INTERVAL = 10.0
# Rapid reset (CVE-2023-44487): streams reset by the client before their response ended, plus streams
# refused, per interval.
DEFAULT_H2_MAX_RESETS = 200
DEFAULT_H2_MAX_SETTINGS = 32
DEFAULT_H2_MAX_PINGS = 64
DEFAULT_H2_MAX_PRIORITY = 1024
DEFAULT_H2_MAX_EMPTY_DATA = 64
DEFAULT_H2_MAX_WINDOW_UPDATES = 4096
DEFAULT_H2_MAX_UNKNOWN_FRAMES = 64
# DATA frames on streams already closed (reset): h2 answers each with RST_STREAM (CVE-2019-9514's
# amplification). Legitimate ones are the few in flight when a stream was reset.
DEFAULT_H2_MAX_CLOSED_STREAM_DATA = 1024
# A connection with no stream open for this long is closed with GOAWAY (nginx keepalive_timeout 75 s,
# which HTTP/2 uses since nginx 1.19.7; rsp's HTTP/1 keepalive_timeout is 60 s).
DEFAULT_H2_IDLE_TIMEOUT = 60.0
# Response data that the client's flow-control window (or socket) keeps from moving this long: the stream
# is reset, or the connection closed when the whole connection is stuck (nginx send_timeout 60 s).
DEFAULT_H2_SEND_TIMEOUT = 60.0
# A header block started and not finished in this long closes the connection (slowloris over HTTP/2);
# rsp's HTTP/1 header_timeout.
DEFAULT_H2_HEADER_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Http2Settings:
    """HTTP/2 on one listener: `mode` is "alpn" (TLS listeners offer h2 then http/1.1) or "prior-knowledge"
    (a plain listener that also takes the HTTP/2 connection preface); the rest are its limits."""

    mode: str = "alpn"  # one of HTTP2_MODES
    max_concurrent_streams: int = DEFAULT_H2_MAX_CONCURRENT_STREAMS
    initial_window_size: int = DEFAULT_H2_INITIAL_WINDOW
    max_frame_size: int = DEFAULT_H2_MAX_FRAME_SIZE
    header_table_size: int = DEFAULT_H2_HEADER_TABLE_SIZE
    max_header_list_size: int = DEFAULT_H2_MAX_HEADER_LIST
    max_header_block_size: int = DEFAULT_H2_MAX_HEADER_BLOCK
    max_header_frames: int = DEFAULT_H2_MAX_HEADER_FRAMES
    max_streams_per_connection: int = DEFAULT_H2_MAX_STREAMS_PER_CONNECTION
    flood_interval: float = DEFAULT_H2_FLOOD_INTERVAL
    max_resets: int = DEFAULT_H2_MAX_RESETS
    max_settings: int = DEFAULT_H2_MAX_SETTINGS
    max_pings: int = DEFAULT_H2_MAX_PINGS
    max_priority: int = DEFAULT_H2_MAX_PRIORITY
    max_empty_data: int = DEFAULT_H2_MAX_EMPTY_DATA
    max_window_updates: int = DEFAULT_H2_MAX_WINDOW_UPDATES
    max_unknown_frames: int = DEFAULT_H2_MAX_UNKNOWN_FRAMES
    max_closed_stream_data: int = DEFAULT_H2_MAX_CLOSED_STREAM_DATA
    idle_timeout: float = DEFAULT_H2_IDLE_TIMEOUT
    send_timeout: float = DEFAULT_H2_SEND_TIMEOUT
    header_timeout: float = DEFAULT_H2_HEADER_TIMEOUT

    @property
    def connection_window(self) -> int:
        """The connection's receive window: every stream's whole window at once, so that request bodies
        held for slow backends never stall the other streams (RFC 9113 §5.2.1); it is also the bound on
        request-body bytes one connection holds."""
        return self.max_concurrent_streams * self.initial_window_size


@dataclass(frozen=True, slots=True)
class Listener:
    host: str
    port: int
    pool: str
    mode: str = "tcp"  # one of MODES
    cache: str = ""  # the name of a `caches` entry that stores this HTTP listener's responses ("" none)
    http2: Http2Settings | None = None  # None: HTTP/1 only (the default, see docs/http2.md)
    # The config key it was read from (`listen[1]`), for errors found after loading.
    key: str = field(default="", compare=False)
    lua: LuaSettings | None = None  # this listener's Lua handlers (config/lua_section.py); None: none

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


# HTTP mode limits and timeouts. Sizes: nginx's large_client_header_buffers (8 KiB lines) and HAProxy's
# tune.bufsize-bound header section (64 KiB here, per the rsp issue). Times: nginx client_header_timeout
# is 60 s, HAProxy `timeout http-request` is commonly 10 s: we use 10 s for the whole head (slowloris).
DEFAULT_HEADER_TIMEOUT = 10.0
# nginx client_body_timeout / proxy_read_timeout default to 60 s between two reads.
DEFAULT_BODY_TIMEOUT = 60.0
DEFAULT_RESPONSE_TIMEOUT = 60.0
# nginx keepalive_timeout 75 s; HAProxy `timeout http-keep-alive` commonly 1-10 s. 60 s keeps idle
# browsers' connections without holding sockets for long.
DEFAULT_KEEPALIVE_TIMEOUT = 60.0
# nginx client_max_body_size defaults to 1 MiB; a hosting platform uploads more, so 100 MiB.
DEFAULT_MAX_BODY = 100 * 1024 * 1024
# Upstream keep-alive pool, sized by use as HAProxy's is (no count limit by default, idle connections the last
# `pool-purge-delay` did not need are closed): rsp.proxy.http_upstream.IdlePool trims what went unused. A fixed
# count like nginx's `keepalive N` closes a backend connection per request once more requests are in flight
# than N: 256 made 1,000 keep-alive clients cost 3.5x what 10 cost (docs/performance.md). So the count is
# only a cap on the descriptors one backend's pool may hold per worker, far above what one worker has in
# flight, and the trim keeps the real size at what was recently used at once.
# keepalive_requests 1000 and keepalive_timeout 60 s are nginx's defaults.
DEFAULT_POOL_MAX_IDLE = 4096
DEFAULT_POOL_IDLE_TIMEOUT = 60.0
DEFAULT_POOL_MAX_REQUESTS = 1000
ACCESS_LOG_FORMATS = ("combined", "json", "off")


@dataclass(frozen=True, slots=True)
class Route:
    """One routing rule: every given condition must match; the first matching rule wins."""

    pool: str
    host: str = ""  # "" any; "example.com" exact; "*.example.com" any subdomain (not the apex)
    path_prefix: str = ""  # "" any
    methods: frozenset[str] = frozenset()  # empty: any
    cache: str = ""  # the `caches` entry for this route's responses ("" : the listener's, if any)
    lua: LuaSettings | None = None  # this route's Lua handlers (config/lua_section.py); None: none


@dataclass(frozen=True, slots=True)
class HttpSettings:
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    response_timeout: float = DEFAULT_RESPONSE_TIMEOUT
    keepalive_timeout: float = DEFAULT_KEEPALIVE_TIMEOUT
    max_body_size: int = DEFAULT_MAX_BODY
    trusted_proxies: tuple[str, ...] = ()  # CIDRs whose X-Forwarded-For is kept and appended to
    forwarded: bool = False  # add RFC 7239 Forwarded
    via: bool = True  # add Via: 1.1 rsp (RFC 9110 §7.6.3)
    access_log: str = "combined"  # one of ACCESS_LOG_FORMATS
    access_log_path: str = ""  # "" = stdout
    pool_max_idle: int = DEFAULT_POOL_MAX_IDLE
    pool_idle_timeout: float = DEFAULT_POOL_IDLE_TIMEOUT
    pool_max_requests: int = DEFAULT_POOL_MAX_REQUESTS


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = DEFAULT_CONNECT_TIMEOUT
    idle: float = DEFAULT_IDLE_TIMEOUT
    drain: float = DEFAULT_DRAIN_TIMEOUT
    reload_grace: float = DEFAULT_RELOAD_GRACE  # old workers finish what they hold this long after a reload


# ---- Worker processes and logs (rsp.master, rsp.config.process_section) -------------------------------
# A worker is one process with one event loop: one per core uses the machine (nginx `worker_processes auto`).
# The loader's default is os.cpu_count(); a Config built in code (tests) runs as one process.
DEFAULT_WORKERS = 1
# More workers than this is a typo, not a machine (and each holds its own upstream keep-alive pools).
MAX_WORKERS = 256


@dataclass(frozen=True, slots=True)
class ProcessSettings:
    workers: int = DEFAULT_WORKERS  # worker processes under the master (1 too: one model, docs/workers.md)
    error_log: str = ""  # the error log file ("" = stderr); reopened on SIGUSR1 like the access log
    pid_file: str = ""  # the master's pid, written once it serves, removed at a clean stop ("" = none)


# ---- route store (issue 14: a route table in Redis shared by many rsp machines; docs/routestore.md) ----
# A known host is refreshed from Redis after this long even without a push invalidation: the safety net
# for a missed pub/sub message or a write by another tool than `rsp routes`.
DEFAULT_ROUTE_TTL = 5.0
# A host Redis does not know is asked again after this long (or at once on an invalidation): bounds the
# lookups a flood of unknown Host values can cause.
DEFAULT_ROUTE_NEGATIVE_TTL = 1.0
# How long a request for a host never seen waits for its one Redis lookup before it gets the default route
# or the missing status: a healthy Redis answers in well under a millisecond on a LAN.
DEFAULT_ROUTE_LOOKUP_TIMEOUT = 0.5


@dataclass(frozen=True, slots=True)
class RouteStore:
    url: str = "redis://127.0.0.1:6379/0"
    prefix: str = "hostnames:"  # keys are <prefix><host>:backends (the author's earlier router's schema)
    template: str = "default"  # the pool whose settings dynamic pools copy
    ttl: float = DEFAULT_ROUTE_TTL
    negative_ttl: float = DEFAULT_ROUTE_NEGATIVE_TTL
    lookup_timeout: float = DEFAULT_ROUTE_LOOKUP_TIMEOUT
    channel: str = "rsp:routes"  # `rsp routes` publishes the changed host here ("*": everything)
    default: bool = True  # use <prefix>httpDefault:backends for hosts with no key
    # A host with no route and no default route: 503 (HAProxy's answer when no server is available).
    missing_status: int = 503


# -- Metrics and stats page (rsp.metrics, config/stats_section.py) -------------------------------------
# Port 9100 is node_exporter's; it is what a Prometheus user expects to see next to a service, and the
# loopback address keeps the page private until the operator chooses to expose it.
DEFAULT_STATS_HOST = "127.0.0.1"
DEFAULT_STATS_PORT = 9100
# HAProxy's stats page refreshes on demand (`stats refresh`, often 5-10 s); 2 s makes a killed backend
# show DOWN almost as soon as the health check sees it, for one small JSON request per viewer per 2 s.
DEFAULT_STATS_REFRESH = 2.0


@dataclass(frozen=True, slots=True)
class StatsSettings:
    """`stats = { listen = "127.0.0.1:9100", refresh = 2 }`: /metrics, the page at / and /stats.json."""

    host: str = DEFAULT_STATS_HOST
    port: int = DEFAULT_STATS_PORT
    refresh: float = DEFAULT_STATS_REFRESH


# ---- Sandboxed apps (issue 12, rsp.sandbox; parsed in config/sandbox_section.py) ----------------------
# Apps' subnets come from this range, one /30 each (host end .1, app end .2): 10.213/16 is private
# (RFC 1918), rarely used by LANs or container runtimes (Docker takes 172.17/16, libvirt 192.168.122/24),
# and holds 16384 apps.
DEFAULT_SANDBOX_NETWORK = "10.213.0.0/16"
# An app's stdout+stderr file is rotated (one previous file kept) when it reaches this size: bounded at
# twice this per app, enough for the last few thousand lines of a chatty app.
DEFAULT_APP_LOG_MAX_BYTES = 1024 * 1024
# SIGTERM to SIGKILL: a web app finishes its requests in well under this.
DEFAULT_APP_GRACE = 10.0
# Where the apps' state file and logs go (a tmpfs on systemd machines, cleared at boot like the netns).
DEFAULT_SANDBOX_RUNTIME_DIR = "/run/rsp"
FORWARD_MODES = ("relay", "nat")


@dataclass(frozen=True, slots=True)
class App:
    """One app rsp starts and supervises, in its own network/PID/mount/UTS namespaces unless sandbox=false."""

    name: str
    command: tuple[str, ...]
    port: int  # where the app listens (its namespace address, or 127.0.0.1 when unsandboxed)
    pool: str = ""  # the pool it joins when ready ("" none)
    dir: str = ""
    env: tuple[tuple[str, str], ...] = ()
    user: str = ""  # "" keeps rsp's user
    sandbox: bool = True
    hostname: str = ""  # UTS hostname inside; "" = the app's name
    log_max_bytes: int = DEFAULT_APP_LOG_MAX_BYTES
    grace: float = DEFAULT_APP_GRACE
    key: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class Forward:
    """A host port carried to an app's port: by rsp's TCP relay (pool `pool`) or by nftables DNAT."""

    port: int
    app: str
    app_port: int
    key: str = field(default="", compare=False)

    @property
    def pool(self) -> str:
        return f"forward:{self.port}"


@dataclass(frozen=True, slots=True)
class Sandbox:
    apps: tuple[App, ...] = ()
    network: str = DEFAULT_SANDBOX_NETWORK
    instance: str = ""  # tag of this rsp's namespaces and links; "" = derived from the config path
    forwards: tuple[Forward, ...] = ()
    forward_mode: str = "relay"  # one of FORWARD_MODES
    runtime_dir: str = DEFAULT_SANDBOX_RUNTIME_DIR


# ---- TLS (issue 11): certificates on listeners, SNI routing without termination, TLS to backends ----------
# Mozilla's server-side TLS guideline, version 5.7, "intermediate" profile
# (https://ssl-config.mozilla.org/guidelines/5.7.json): TLS 1.2 and 1.3; for TLS 1.2 ECDHE with AES-GCM or
# ChaCha20-Poly1305 only (TLS 1.3's suites are all acceptable and OpenSSL's defaults are kept).
MOZILLA_GUIDELINE_VERSION = "5.7"
MOZILLA_INTERMEDIATE_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
)
TLS_PROTOCOLS = ("TLSv1.2", "TLSv1.3")
DEFAULT_TLS_PROTOCOLS = ("TLSv1.2", "TLSv1.3")
# How long a TCP listener with SNI routes waits for a complete ClientHello: a real client sends it at once
# after the TCP handshake; 5 s covers a slow mobile link and bounds what a silent client costs.
DEFAULT_SNI_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class TlsCertificate:
    cert: str  # PEM file: the certificate, optionally followed by its chain
    key: str  # PEM file of the private key ("" : the key is in the cert file)
    names: tuple[str, ...] = ()  # served for these SNI names ("" : the certificate's SAN DNS names)
    key_path: str = field(default="", compare=False)  # `listen[1].tls.certificates[2]`, for errors


@dataclass(frozen=True, slots=True)
class ListenerTls:
    certificates: tuple[TlsCertificate, ...]
    default: str = ""  # the SNI name whose certificate a client without SNI gets ("": the first certificate)
    client_ca: str = ""  # PEM file of CAs: clients must present a certificate they signed
    protocols: tuple[str, ...] = DEFAULT_TLS_PROTOCOLS
    ciphers: str = MOZILLA_INTERMEDIATE_CIPHERS  # OpenSSL cipher list for TLS 1.2
    allow_weak_chain: bool = False
    roots: str = ""  # trust anchors for building the served chain ("": the system's)
    key_path: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class SniRoute:
    name: str  # "a.example" exact, "*.b.example" any subdomain (not the apex), like routes[].host
    pool: str


@dataclass(frozen=True, slots=True)
class SniRouting:
    routes: tuple[SniRoute, ...]
    default: str = ""  # pool for a client without SNI, not speaking TLS, or matching no route; "": close
    timeout: float = DEFAULT_SNI_TIMEOUT


@dataclass(frozen=True, slots=True)
class PoolTls:
    verify: bool = True
    ca: str = ""  # PEM file of CAs to verify backends with ("": the system's)
    sni: str = ""  # server_name sent and checked against the certificate ("": the backend's host if a name)
    key_path: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """Per listener (by its config key, `listen[1]`) and per pool (by name)."""

    listeners: dict[str, ListenerTls] = field(default_factory=dict)
    sni: dict[str, SniRouting] = field(default_factory=dict)
    pools: dict[str, PoolTls] = field(default_factory=dict)


# ---- Response cache (issue 21, rsp.cache; parsed in config/cache_section.py; docs/cache.md) ---------------
# The example size; Varnish's default malloc storage is 100 MiB, nginx's keys_zone needs a max_size.
DEFAULT_CACHE_SIZE = 256 * 1024 * 1024
# An object above this is passed through, not stored (nginx has no default bound, Varnish stores anything
# that fits; 8 MiB keeps one object from evicting a large share of a small cache).
DEFAULT_CACHE_MAX_OBJECT = 8 * 1024 * 1024
# Varnish and most CDNs say X-Cache: HIT / MISS; nginx users write $upstream_cache_status into one.
DEFAULT_CACHE_HEADER = "X-Cache"


@dataclass(frozen=True, slots=True)
class CacheSettings:
    """`caches = { NAME = { size = "256m", path = nil, max_object = "8m", heuristic = false, ... } }`."""

    name: str
    size: int = DEFAULT_CACHE_SIZE  # bytes: the store's file never grows past it
    path: str = ""  # the LMDB file; "": a memory-backed file (/dev/shm) named after the config and the cache
    max_object: int = DEFAULT_CACHE_MAX_OBJECT
    heuristic: bool = False  # heuristic freshness (RFC 9111 §4.2.2) for responses without an explicit one
    cookies: bool = False  # store responses that carry Set-Cookie (the Set-Cookie lines themselves never)
    header: str = DEFAULT_CACHE_HEADER  # the response header naming HIT/MISS/...; "" adds none
    grace: float = 0.0  # seconds past freshness a stored response may be served: while a background fetch
    # refreshes it, or in place of a backend error (Varnish's grace)
    purge: tuple[str, ...] = ()  # addresses/CIDRs whose PURGE requests remove a URI ("": PURGE is forwarded)
    key: str = field(default="", compare=False)


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
    routes: tuple[Route, ...] = ()
    http: HttpSettings = field(default_factory=HttpSettings)
    route_store: RouteStore | None = None  # None: no Redis routing
    stats: StatsSettings | None = None  # None: no metrics endpoint
    sandbox: Sandbox = field(default_factory=Sandbox)
    process: ProcessSettings = field(default_factory=ProcessSettings)
    tls: TlsSettings = field(default_factory=TlsSettings)
    caches: dict[str, CacheSettings] = field(default_factory=dict)
    lua: LuaSettings | None = None  # the top level's Lua handlers, dictionaries and package path; None: none
    # {key path: Lua line} of the file's entries (rsp.config.key_lines), for errors found after loading.
    lines: dict[str, int] = field(default_factory=dict, compare=False)

    def pool_for(self, listener: Listener) -> Pool:
        return self.pools[listener.pool]
