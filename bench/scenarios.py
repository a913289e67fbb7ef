"""Scenarios: a backend set, the proxies under test, and the load runs.

A new scenario is a small function returning a `Scenario`; register it in `SCENARIOS`.
A proxy is a name plus a function that writes its config into the temp dir and returns its argv.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import configs
from lib import LOOPBACK


@dataclass(frozen=True)
class Options:
    duration: int  # seconds per wrk run
    reps: int
    ab_requests: int
    lb_mode: str = "http"
    rsp_cmd: str = "{python} -m rsp {config}"
    extra: tuple[tuple[str, str], ...] = ()  # (name, command template) from --proxy-cmd

    @property
    def latency_duration(self) -> int:
        return max(2, self.duration // 2)


@dataclass(frozen=True)
class Ctx:
    """What a proxy's start function may use."""

    tmp: Path
    tools: dict[str, str]
    python: str
    backends: tuple[int, ...]  # backend ports
    opts: Options


@dataclass(frozen=True)
class Proxy:
    name: str
    start: Callable[[Ctx, int], list[str]]  # (ctx, listen port) -> argv; writes its config first
    tools: tuple[str, ...] = ()
    is_rsp: bool = False  # skipped (with a message) while rsp is not runnable


@dataclass(frozen=True)
class Load:
    key: str  # short name for --tests: small, 1m, ab, latency
    name: str
    tool: str  # "wrk" (keep-alive, -t1), "wrk-varied" (wrk, a different target per request) or "ab"
    path: str
    conns: int
    unit: str  # "req": CPU µs per request; "mib": CPU ms per MiB transferred
    duration: int = 0  # wrk
    requests: int = 0  # ab


@dataclass(frozen=True)
class Scenario:
    name: str
    backends: int
    proxies: tuple[Proxy, ...]
    loads: tuple[Load, ...]
    pairs: tuple[tuple[str, str], ...]  # (candidate, reference): ratios reported per pair
    notes: tuple[str, ...] = field(default=())


# ------------------------------------------------------------------------------------------ proxies


def rsp_proxy(name: str, mode: str, algorithm: str = "roundrobin") -> Proxy:
    def start(ctx: Ctx, port: int) -> list[str]:
        conf = configs.rsp_config(ctx.tmp, name, port, ctx.backends, mode, algorithm)
        return _expand(ctx.opts.rsp_cmd, ctx, port, conf)

    return Proxy(name=name, start=start, is_rsp=True)


def haproxy_proxy(name: str, mode: str, algorithm: str = "roundrobin") -> Proxy:
    def start(ctx: Ctx, port: int) -> list[str]:
        return configs.haproxy(ctx.tools["haproxy"], ctx.tmp, name, port, ctx.backends, mode, algorithm)

    return Proxy(name=name, start=start, tools=("haproxy",))


def nginx_proxy(name: str, algorithm: str = "roundrobin") -> Proxy:
    def start(ctx: Ctx, port: int) -> list[str]:
        return configs.nginx_proxy(ctx.tools["nginx"], ctx.tmp, name, port, ctx.backends, algorithm)

    return Proxy(name=name, start=start, tools=("nginx",))


def command_proxy(name: str, template: str, mode: str) -> Proxy:
    """Any proxy started from a shell-style template (`--proxy-cmd NAME=TEMPLATE`). Placeholders:
    {python} {port} {host} {backend_port} {backends} (host:port,...) {tmp} {config} (an rsp Lua config
    for this port and the scenario's backends)."""

    def start(ctx: Ctx, port: int) -> list[str]:
        conf = configs.rsp_config(ctx.tmp, name, port, ctx.backends, mode)
        return _expand(template, ctx, port, conf)

    return Proxy(name=name, start=start)


def _expand(template: str, ctx: Ctx, port: int, config: Path) -> list[str]:
    values = {
        "python": ctx.python, "port": str(port), "host": LOOPBACK, "tmp": str(ctx.tmp),
        "config": str(config), "backend_port": str(ctx.backends[0]),
        "backends": ",".join(f"{LOOPBACK}:{p}" for p in ctx.backends),
    }
    return [arg.format(**values) for arg in shlex.split(template)]


# ------------------------------------------------------------------------------------------ loads


def standard_loads(opts: Options) -> tuple[Load, ...]:
    return (
        Load("small", "small keep-alive c50", "wrk", configs.SMALL_PATH, 50, "req", duration=opts.duration),
        Load("varied", "small keep-alive c50, distinct heads", "wrk-varied", configs.SMALL_PATH, 50, "req",
             duration=opts.duration),
        Load("1m", "1 MiB keep-alive c10", "wrk", configs.LARGE_PATH, 10, "mib", duration=opts.duration),
        Load("ab", "small new-conn ab c100", "ab", configs.SMALL_PATH, 100, "req", requests=opts.ab_requests),
        Load("latency", "latency c1", "wrk", configs.SMALL_PATH, 1, "req", duration=opts.latency_duration),
    )


def _with_extra(opts: Options, mode: str, proxies: list[Proxy], pairs: list[tuple[str, str]],
                reference: str) -> None:
    """Adds the `--proxy-cmd` proxies, each compared with `reference`."""
    for name, template in opts.extra:
        proxies.append(command_proxy(name, template, mode))
        pairs.append((name, reference))


# ------------------------------------------------------------------------------------------ scenarios


def tcp(opts: Options) -> Scenario:
    """rsp TCP relay vs HAProxy `mode tcp`, one nginx backend."""
    proxies = [rsp_proxy("rsp", "tcp"), haproxy_proxy("haproxy", "tcp")]
    pairs = [("rsp", "haproxy")]
    _with_extra(opts, "tcp", proxies, pairs, "haproxy")
    return Scenario("tcp", 1, tuple(proxies), standard_loads(opts), tuple(pairs))


def http(opts: Options) -> Scenario:
    """rsp HTTP mode vs HAProxy `mode http` (forwardfor, http-reuse always) and nginx proxy_pass with
    upstream keep-alive, one nginx backend."""
    proxies = [rsp_proxy("rsp", "http"), haproxy_proxy("haproxy", "http"), nginx_proxy("nginx")]
    pairs = [("rsp", "haproxy"), ("rsp", "nginx")]
    _with_extra(opts, "http", proxies, pairs, "haproxy")
    return Scenario("http", 1, tuple(proxies), standard_loads(opts), tuple(pairs))


LB_ALGORITHMS = {"rr": "roundrobin", "lc": "leastconn"}


def lb(opts: Options) -> Scenario:
    """Three nginx backends, roundrobin and leastconn, in rsp, HAProxy and (HTTP mode) nginx."""
    proxies: list[Proxy] = []
    pairs: list[tuple[str, str]] = []
    for short, algorithm in LB_ALGORITHMS.items():
        proxies.append(rsp_proxy(f"rsp-{short}", opts.lb_mode, algorithm))
        proxies.append(haproxy_proxy(f"haproxy-{short}", opts.lb_mode, algorithm))
        pairs.append((f"rsp-{short}", f"haproxy-{short}"))
        if opts.lb_mode == "http":
            proxies.append(nginx_proxy(f"nginx-{short}", algorithm))
            pairs.append((f"rsp-{short}", f"nginx-{short}"))
    _with_extra(opts, opts.lb_mode, proxies, pairs, "haproxy-rr")
    notes = ("direct = the first of the three backends only",)
    return Scenario("lb", 3, tuple(proxies), standard_loads(opts), tuple(pairs), notes)


SCENARIOS: dict[str, Callable[[Options], Scenario]] = {"tcp": tcp, "http": http, "lb": lb}
