"""The chaos soak: rsp with two workers in front of misbehaving backends, under reloads, kills and churn.

For `minutes` of soak time: three `ChaosBackend`s (reset, stall, slow, cut on a seeded schedule), clients
that keep, drop and abort connections, a reload every `reload_every` seconds (SIGHUP and the admin `reload`
in turn), a serving worker SIGKILLed every `kill_every` seconds, and a fourth backend added through the
runtime API a third of the way between two reloads and removed at two thirds. Then a `SoakReport`: what
was served, errors by kind, the judge's verdict (support.chaos_judge), each rsp process's resident memory
and open descriptors at start and end, the master's over time, and every worker exit the soak did not
cause. bench/chaos_soak.py prints it; tests/integration/test_chaos_soak.py runs a short one.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from rsp.admin.socket_server import admin_request
from support.chaos_backend import STALL_HOLD, ChaosBackend, Receipt, draw_schedule
from support.chaos_client import CLIENT_TIMEOUT, Attempt, ChaosClient
from support.chaos_judge import Member, Verdict, judge
from support.http_client import http_config
from support.rsp_process import RspProcess, vm_rss_kib

BACKENDS: Final = ("a", "b", "c")
ADDED: Final = "d"  # the backend added and removed at run time
# rsp's settings for the soak. The response timeout ends a stalled request well before the client gives up;
# health checks and the passive cooldown decide how soon rsp sees a backend come back (the judge's settle).
RESPONSE_TIMEOUT: Final = 3
HEALTH_INTERVAL: Final = 1
HEALTH_TIMEOUT: Final = 2
HEALTH_RISE: Final = 2
HEALTH: Final = {"kind": "http", "interval": HEALTH_INTERVAL, "timeout": HEALTH_TIMEOUT, "rise": HEALTH_RISE,
                 "fall": 2, "path": "/health"}
PASSIVE_COOLDOWN: Final = 2
RETRIES: Final = 3  # every other backend of four may be tried
RELOAD_GRACE: Final = 10  # old workers finish within this; longer than a stalled request lasts
# rise x interval + the check's timeout (a check started just before the recovery), plus one interval of
# slack for a loaded machine; at least the passive cooldown.
SETTLE: Final = max(HEALTH_RISE * HEALTH_INTERVAL + HEALTH_TIMEOUT + HEALTH_INTERVAL, PASSIVE_COOLDOWN)
WARMUP: Final = 3.0  # traffic before the start figures are taken (first requests allocate caches)
EXIT_RE: Final = re.compile(r"worker (\S+) \(pid (\d+)\) (killed by signal (\d+)|exited with status (\d+))")
ADMIN_TIMEOUT: Final = 60.0
KILL_WAIT: Final = 5.0  # a SIGKILLed process is gone within this, even on a loaded machine


@dataclass
class SoakSettings:
    minutes: float = 10.0
    workers: int = 2
    clients: int = 6
    reload_every: float = 30.0
    kill_every: float = 60.0
    sample_every: float = 30.0
    seed: int = 1

    @property
    def seconds(self) -> float:
        return self.minutes * 60.0


@dataclass(frozen=True)
class ProcFigures:
    pid: int
    role: str
    rss_kib: int
    fds: int


@dataclass
class SoakReport:
    settings: SoakSettings
    verdict: Verdict
    phases_handled: dict[str, dict[str, int]]
    reloads: list[tuple[float, str, str]] = field(default_factory=list)  # (time, how, result)
    kills: list[tuple[float, int]] = field(default_factory=list)
    churn: list[tuple[float, str, str]] = field(default_factory=list)  # (time, command, result)
    start_procs: list[ProcFigures] = field(default_factory=list)
    end_procs: list[ProcFigures] = field(default_factory=list)
    master_trend: list[tuple[float, int, int]] = field(default_factory=list)  # (time, rss KiB, fds)
    unexpected_exits: list[str] = field(default_factory=list)
    expected_kill_exits: int = 0
    clean_exits: int = 0
    tracebacks: int = 0
    master_exit: int | None = None
    event_errors: list[str] = field(default_factory=list)  # a reload, kill, churn or client task that raised
    exits_at_stop: list[str] = field(default_factory=list)  # during rsp's own stop (SIGTERM) at the end
    log_lines: list[str] = field(default_factory=list)  # rsp's error log (stderr), for a post-mortem

    @property
    def clean(self) -> bool:
        return not (self.verdict.violations or self.unexpected_exits or self.tracebacks or self.master_exit
                    or self.event_errors)


async def gone(pid: int) -> None:
    """Until `pid` is dead (a zombie the master has not reaped yet counts as dead), at most KILL_WAIT."""
    deadline = asyncio.get_running_loop().time() + KILL_WAIT
    while asyncio.get_running_loop().time() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().rpartition(")")[2].split()[0] in ("Z", "X"):
                    return
        except OSError:
            return
        await asyncio.sleep(0.005)


def proc_figures(pid: int, role: str) -> ProcFigures:
    try:
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        fds = -1
    return ProcFigures(pid, role, vm_rss_kib(pid), fds)


def soak_config(port: int, backend_ports: dict[str, int], workers: int, admin: str) -> str:
    pools = {"default": {"backends": [{"address": "127.0.0.1", "port": p, "name": n}
                                      for n, p in backend_ports.items()],
                         "health": HEALTH, "retries": RETRIES, "passive_failures": 3,
                         "passive_cooldown": PASSIVE_COOLDOWN}}
    return http_config(port, [], pools=pools, http={"response_timeout": RESPONSE_TIMEOUT},
                       extra=f'workers = {workers}\nadmin_socket = "{admin}"\n'
                             f"timeouts = {{ reload_grace = {RELOAD_GRACE}, connect = 2 }}")


class Soak:
    def __init__(self, settings: SoakSettings, workdir: Path, port: int) -> None:
        self.settings = settings
        self.workdir = workdir
        self.port = port
        self.admin_path = str(workdir / "admin.sock")
        self.rng = random.Random(settings.seed)
        self.attempts: list[Attempt] = []
        self.members: list[Member] = []
        self.kill_windows: list[tuple[float, float]] = []  # (SIGKILL sent, process gone)
        self.origin = 0.0
        self.rsp: RspProcess | None = None
        self.backends: dict[str, ChaosBackend] = {}
        self.reloading = asyncio.Lock()
        self.report: SoakReport | None = None

    def now(self) -> float:
        return asyncio.get_running_loop().time() - self.origin

    async def admin(self, command: str) -> Any:
        reply = await asyncio.to_thread(admin_request, self.admin_path, command, ADMIN_TIMEOUT)
        return json.loads(reply)

    async def run(self) -> SoakReport:
        s = self.settings
        self.origin = asyncio.get_running_loop().time()
        horizon = s.seconds + RELOAD_GRACE + CLIENT_TIMEOUT + STALL_HOLD
        backends = self.backends = {
            name: ChaosBackend(name, draw_schedule(random.Random(f"{s.seed}-{name}"), horizon), self.origin,
                               seed=self.rng.randrange(1 << 30))
            for name in (*BACKENDS, ADDED)}
        self.members = [Member(name, float("-inf"), float("inf")) for name in BACKENDS]
        report = self.report = SoakReport(s, Verdict(), {})
        self.rsp = rsp = RspProcess(self.workdir / "soak.lua")
        try:
            for backend in backends.values():
                await backend.start()
            (self.workdir / "soak.lua").write_text(soak_config(self.port, {n: backends[n].port for n in BACKENDS},
                                                               s.workers, self.admin_path))
            await asyncio.to_thread(rsp.start, 1, 60.0)
            clients = [ChaosClient(i, self.port, s.seed * 1000 + i, self.origin, self.attempts)
                       for i in range(s.clients)]
            client_tasks = [asyncio.create_task(c.run(s.seconds)) for c in clients]
            await asyncio.sleep(WARMUP)
            report.start_procs = await self.processes()
            events = [asyncio.create_task(f()) for f in (self.reloads, self.kills, self.churn, self.sample)]
            await asyncio.wait(client_tasks, timeout=s.seconds + CLIENT_TIMEOUT * 3)
            for task in events:
                task.cancel()
            for result in await asyncio.gather(*events, *client_tasks, return_exceptions=True):
                if isinstance(result, Exception):  # a CancelledError is a BaseException: the expected end
                    report.event_errors.append(repr(result))
            await asyncio.sleep(1.0)  # the last reload's old workers, idle by now, are gone in a moment
            report.end_procs = await self.processes()
        finally:
            stop_at = len(rsp.stderr_lines)  # exits logged from here on are rsp's own stop, judged apart
            report.master_exit = await asyncio.to_thread(rsp.stop, 15.0)
            for backend in backends.values():
                await backend.stop()
        receipts: dict[str, list[Receipt]] = {}
        for backend in backends.values():
            for rid, seen in backend.receipts.items():
                receipts.setdefault(rid, []).extend(seen)
            report.phases_handled[backend.name] = dict(backend.handled)
        schedules = {name: b.spans for name, b in backends.items()}
        report.verdict = judge(self.attempts, schedules, self.members, self.kill_windows, receipts, SETTLE)
        report.log_lines = list(rsp.stderr_lines)
        self.read_exits(report, rsp.stderr_lines[:stop_at])
        report.exits_at_stop = [line for line in rsp.stderr_lines[stop_at:] if EXIT_RE.search(line)]
        return report

    async def processes(self) -> list[ProcFigures]:
        assert self.rsp is not None
        found = [proc_figures(self.rsp.pid, "master")]
        info = await self.admin("show workers")
        for worker in info["workers"]:
            if worker.get("pid"):
                found.append(proc_figures(worker["pid"], f"{worker.get('name', '?')} {worker['role']}"))
        return found

    async def at(self, t: float) -> None:
        await asyncio.sleep(max(0.0, t - self.now()))

    async def reloads(self) -> None:
        assert self.rsp is not None and self.report is not None
        k = 1
        while k * self.settings.reload_every < self.settings.seconds:  # bounded by the soak's length
            await self.at(k * self.settings.reload_every)
            async with self.reloading:
                if k % 2:
                    await self.sighup_reload()
                else:
                    reply = await self.admin("reload")
                    self.report.reloads.append((self.now(), "admin reload",
                                                "ok" if reply.get("ok") else str(reply)))
            k += 1

    async def sighup_reload(self) -> None:
        """SIGHUP, then wait until the master counts the reload (or refuses it: the log says so)."""
        assert self.rsp is not None and self.report is not None
        before = (await self.admin("show workers"))["reloads"]
        self.rsp.signal(signal.SIGHUP)
        deadline = self.now() + ADMIN_TIMEOUT
        while self.now() < deadline:
            if (await self.admin("show workers"))["reloads"] > before:
                self.report.reloads.append((self.now(), "SIGHUP", "ok"))
                return
            await asyncio.sleep(0.2)
        self.report.reloads.append((self.now(), "SIGHUP", f"not done after {ADMIN_TIMEOUT} s"))

    async def kills(self) -> None:
        assert self.report is not None
        k = 1
        while k * self.settings.kill_every < self.settings.seconds:
            await self.at(k * self.settings.kill_every)
            info = await self.admin("show workers")
            serving = [w["pid"] for w in info["workers"] if w["role"] == "serving" and w["state"] == "running"]
            if serving:
                pid = self.rng.choice(serving)
                sent = self.now()
                os.kill(pid, signal.SIGKILL)
                await gone(pid)
                self.kill_windows.append((sent, self.now()))
                self.report.kills.append((sent, pid))
            k += 1

    async def churn(self) -> None:
        """Add the fourth backend a third of the way between two reloads, remove it at two thirds."""
        assert self.report is not None
        every = self.settings.reload_every
        k = 0
        while k * every + every * 2 / 3 < self.settings.seconds:
            await self.at(k * every + every / 3)
            async with self.reloading:  # a reload forgets backends added at run time: never add during one
                added = await self.admin(f"add backend default 127.0.0.1:{self.backends[ADDED].port}")
            start = self.now()
            self.report.churn.append((start, "add", "ok" if added.get("ok") else str(added)))
            await self.at(k * every + every * 2 / 3)
            end = self.now()  # out of the judge's pool from the moment the removal is asked for
            async with self.reloading:
                removed = await self.admin(f"remove backend default 127.0.0.1:{self.backends[ADDED].port}")
            self.report.churn.append((self.now(), "remove", "ok" if removed.get("ok") else str(removed)))
            if added.get("ok") and removed.get("ok"):  # surely in the pool in between
                self.members.append(Member(ADDED, start, end))
            k += 1

    async def sample(self) -> None:
        assert self.rsp is not None and self.report is not None
        while True:  # cancelled when the clients end
            figures = proc_figures(self.rsp.pid, "master")
            self.report.master_trend.append((self.now(), figures.rss_kib, figures.fds))
            await asyncio.sleep(self.settings.sample_every)

    def read_exits(self, report: SoakReport, lines: list[str]) -> None:
        killed = {pid for _, pid in report.kills}
        for line in lines:
            if "Traceback" in line:
                report.tracebacks += 1
            match = EXIT_RE.search(line)
            if not match:
                continue
            pid, signum, status = int(match.group(2)), match.group(4), match.group(5)
            if signum == "9" and pid in killed:
                report.expected_kill_exits += 1
            elif status == "0":
                report.clean_exits += 1
            else:
                report.unexpected_exits.append(line)


async def run_soak(settings: SoakSettings, workdir: Path, port: int) -> SoakReport:
    return await Soak(settings, workdir, port).run()


def _procs(figures: list[ProcFigures]) -> list[str]:
    return [f"    pid {p.pid:>7}  {p.role:<34} rss {p.rss_kib:>7} KiB  fds {p.fds:>4}" for p in figures]


def report_lines(report: SoakReport) -> list[str]:
    """The soak's figures as printed by bench/chaos_soak.py."""
    s, v = report.settings, report.verdict
    lines = [
        f"chaos soak: {s.minutes:g} min, workers={s.workers}, clients={s.clients}, seed={s.seed}, "
        f"reload every {s.reload_every:g} s (SIGHUP and admin `reload` in turn), "
        f"a serving worker SIGKILLed every {s.kill_every:g} s, backend {ADDED} added/removed between reloads",
        f"backends {', '.join(BACKENDS)} (+{ADDED}): phases ok/slow (healthy), reset, stall, cut; "
        f"settle {SETTLE} s; rsp response_timeout {RESPONSE_TIMEOUT} s, retries {RETRIES}",
        f"requests: {v.attempted} attempted, {v.served} served (200, body checked), "
        f"{v.aborted} aborted by their client on purpose, {sum(v.errors.values())} failed",
        "errors by kind (what the client saw): "
        + (", ".join(f"{k} {n}" for k, n in v.errors.most_common()) or "none"),
        "failures by explanation:",
        *(f"    {n:>6}  {why}" for why, n in v.judged.most_common()),
        f"idempotent request failed while a healthy backend existed: {len(v.violations)}",
        *(f"    {a.rid} {a.kind} {a.outcome} t={a.start:.2f}..{a.end:.2f} conn {a.conn_opened:.2f} {a.detail}"
          for a in v.violations[:20]),
        "requests handled by each backend, by phase: "
        + "; ".join(f"{name}: " + ", ".join(f"{p} {n}" for p, n in sorted(h.items()))
                    for name, h in sorted(report.phases_handled.items())),
        f"reloads: {len(report.reloads)} "
        f"({sum(1 for r in report.reloads if r[2] == 'ok')} done; "
        f"refused or late: {[r for r in report.reloads if r[2] != 'ok']})",
        f"workers SIGKILLed: {len(report.kills)} (pids {[pid for _, pid in report.kills]})",
        f"backend {ADDED} churn: {sum(1 for c in report.churn if c[2] == 'ok')} of {len(report.churn)} "
        f"add/remove commands ok; failed: {[c for c in report.churn if c[2] != 'ok']}",
        "rsp processes at start (after warm-up):", *_procs(report.start_procs),
        "rsp processes at end:", *_procs(report.end_procs),
        "master over time (s: rss KiB, fds): "
        + ", ".join(f"{t:.0f}: {rss}, {fds}" for t, rss, fds in report.master_trend),
        f"worker exits: {report.expected_kill_exits} from the soak's SIGKILLs, {report.clean_exits} clean "
        f"(status 0, retired by a reload), unexpected: {len(report.unexpected_exits)}",
        *(f"    {line}" for line in report.unexpected_exits[:20]),
        f"worker exits during rsp's own stop at the end (SIGTERM, a reload or restart may be under way): "
        f"{len(report.exits_at_stop)}",
        *(f"    {line}" for line in report.exits_at_stop[:10]),
        f"tracebacks in rsp's log: {report.tracebacks}; master exit status: {report.master_exit}; "
        f"soak tasks that raised: {report.event_errors or 'none'}",
        f"verdict: {'CLEAN' if report.clean else 'PROBLEMS FOUND'}",
    ]
    return lines
