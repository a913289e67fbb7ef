"""Samples, medians, ratios, and the markdown tables printed and appended to RESULTS.md."""

from __future__ import annotations

import math
import os
import platform
import statistics
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lib import MIB, LoadResult, tool_version
from scenarios import Load, Scenario

DIRECT = "direct"


@dataclass(frozen=True)
class Sample:
    load: Load
    target: str
    rep: int
    result: LoadResult
    proxy_cpu: float | None  # CPU seconds of the proxy's process tree; None for direct
    backend_cpu: float  # CPU seconds of all backend nginx trees
    client_cpu: float  # CPU seconds of the load generator
    wall: float
    other_cores: float  # CPU used by everything else on the machine during the run, in cores

    def per_unit(self, seconds: float) -> float:
        """CPU µs per request, or ms per MiB for the bulk test."""
        if self.load.unit == "mib":
            mib = self.result.bytes / MIB
            return seconds / mib * 1e3 if mib else math.nan
        return seconds / self.result.requests * 1e6 if self.result.requests else math.nan

    @property
    def proxy_per_unit(self) -> float:
        return math.nan if self.proxy_cpu is None else self.per_unit(self.proxy_cpu)


def unit_label(load: Load) -> str:
    return "ms/MiB" if load.unit == "mib" else "µs/req"


def _median(values: Sequence[float]) -> float:
    clean = [v for v in values if not math.isnan(v)]
    return statistics.median(clean) if clean else math.nan


def _fmt(value: float, digits: int = 1) -> str:
    if math.isnan(value):
        return "—"
    return f"{value:,.{digits}f}"


def _ratio(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.2f}x"


def _by(samples: Sequence[Sample], load: Load, target: str) -> list[Sample]:
    return [s for s in samples if s.load == load and s.target == target]


def results_table(samples: Sequence[Sample], loads: Sequence[Load], targets: Sequence[str]) -> str:
    head = ("| test | target | req/s | MiB/s | proxy CPU | unit | CPU spread | p50 ms | p99 ms | errors "
            "| backend CPU | other load (cores) |\n"
            "|---|---|--:|--:|--:|---|--:|--:|--:|--:|--:|--:|\n")
    rows = []
    for load in loads:
        for target in targets:
            ss = _by(samples, load, target)
            if not ss:
                continue
            cpu = [s.proxy_per_unit for s in ss]
            med = _median(cpu)
            clean = [c for c in cpu if not math.isnan(c)]
            spread = (max(clean) - min(clean)) / med * 100 if len(clean) > 1 and med else math.nan
            rows.append(
                f"| {load.name} | {target} | {_fmt(_median([s.result.rps for s in ss]), 0)} "
                f"| {_fmt(_median([s.result.mib_per_s for s in ss]))} "
                f"| {_fmt(med, 3 if load.unit == 'mib' else 1)} | {unit_label(load)} "
                f"| {_fmt(spread, 0)}{'%' if not math.isnan(spread) else ''} "
                f"| {_fmt(_median([s.result.p50_ms for s in ss]), 3)} "
                f"| {_fmt(_median([s.result.p99_ms for s in ss]), 3)} "
                f"| {sum(s.result.errors for s in ss)} "
                f"| {_fmt(_median([s.per_unit(s.backend_cpu) for s in ss]), 3 if load.unit == 'mib' else 1)} "
                f"| {_fmt(_median([s.other_cores for s in ss]), 2)} |"
            )
    return head + "\n".join(rows) + "\n"


def _paired(samples: Sequence[Sample], load: Load, a: str, b: str,
            fn: Callable[[Sample, Sample], float]) -> float:
    """Median over repetitions of fn(a's sample, b's sample) taken in the same repetition."""
    bs = {s.rep: s for s in _by(samples, load, b)}
    return _median([fn(s, bs[s.rep]) for s in _by(samples, load, a) if s.rep in bs])


def _div(x: float, y: float) -> float:
    return x / y if y and not math.isnan(x) and not math.isnan(y) else math.nan


def _rps(s: Sample) -> float:
    return s.result.rps


def _mibps(s: Sample) -> float:
    return s.result.mib_per_s


def _cpu(s: Sample) -> float:
    return s.proxy_per_unit


def _p50(s: Sample) -> float:
    return s.result.p50_ms


def _ratio_of(samples: Sequence[Sample], load: Load, a: str, b: str, get: Callable[[Sample], float]) -> float:
    return _paired(samples, load, a, b, lambda x, y: _div(get(x), get(y)))


def _added_p50(samples: Sequence[Sample], load: Load, name: str) -> float:
    return _paired(samples, load, name, DIRECT, lambda x, y: x.result.p50_ms - y.result.p50_ms)


def ratio_table(samples: Sequence[Sample], loads: Sequence[Load], pairs: Sequence[tuple[str, str]]) -> str:
    head = ("| test | A vs B | req/s A÷B | MiB/s A÷B | CPU A÷B (lower: A cheaper) | efficiency B÷A "
            "| p50 A÷B | A p50 added vs direct (ms) | B p50 added vs direct (ms) |\n"
            "|---|---|--:|--:|--:|--:|--:|--:|--:|\n")
    rows = []
    for load in loads:
        for a, b in pairs:
            if not _by(samples, load, a) or not _by(samples, load, b):
                continue
            cells = [_ratio(_ratio_of(samples, load, a, b, get)) for get in (_rps, _mibps, _cpu)]
            cells.append(_ratio(_ratio_of(samples, load, b, a, _cpu)))  # efficiency: B's CPU over A's
            cells.append(_ratio(_ratio_of(samples, load, a, b, _p50)))
            cells += [_fmt(_added_p50(samples, load, a), 3), _fmt(_added_p50(samples, load, b), 3)]
            rows.append(f"| {load.name} | {a} vs {b} | " + " | ".join(cells) + " |")
    return head + "\n".join(rows) + "\n"


LEGEND = """\
- proxy CPU: utime+stime of the proxy's whole process tree (/proc), per request (µs) or per MiB (ms);
  median of the repetitions. CPU spread: (max-min)/median of that figure over the repetitions.
- backend CPU: the same for the nginx backend(s): it should be about equal across targets.
- other load: machine busy time (/proc/stat) minus this benchmark's own processes during the run, in cores;
  above ~0.1 the figures are noisy, because the load generator, backend and proxy already fill both cores.
- A÷B ratios are medians of per-repetition ratios (A and B ran back to back in each repetition).
  "efficiency B÷A" is B's CPU per unit over A's: above 1.00x A is cheaper (the convention of docs/performance.md).
- p50 added vs direct: the target's median latency minus direct-to-nginx's, same repetition.
"""


def machine_info(tools: dict[str, str], python: str, repo: Path) -> list[str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = [
        f"nproc: {os.cpu_count()}, CPU: {model}",
        f"kernel: {platform.system()} {platform.release()}",
        f"python (rsp): {tool_version([python, '-VV'])}",
    ]
    for name, argv in (("haproxy", ["-v"]), ("nginx", ["-v"]), ("wrk", ["-v"]), ("ab", ["-V"])):
        if name in tools:
            info.append(f"{name}: {tool_version([tools[name], *argv])}")
    try:
        rev = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=False).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--", "src"],
                               capture_output=True, text=True, timeout=10, check=False).stdout.strip()
        info.append(f"rsp commit: {rev or 'unknown'}{' (src/ has uncommitted changes)' if dirty else ''}")
    except (OSError, subprocess.TimeoutExpired):
        pass
    return info


def section(title: str, command: str, info: Sequence[str], scenario: Scenario, targets: Sequence[str],
            samples: Sequence[Sample], notes: Sequence[str], reps: int) -> str:
    pairs = [(a, b) for a, b in scenario.pairs if a in targets and b in targets]
    parts = [
        f"## {title}\n",
        f"Command: `{command}`\n",
        "\n".join(f"- {line}" for line in info) + "\n",
        f"### Results (median of {reps} repetitions)\n",
        results_table(samples, scenario.loads, targets),
    ]
    if pairs:
        parts += ["### Ratios\n", ratio_table(samples, scenario.loads, pairs)]
    parts.append(LEGEND)
    if notes:
        parts.append("Notes:\n" + "\n".join(f"- {n}" for n in notes) + "\n")
    return "\n".join(parts)


RESULTS_HEADER = """\
# rsp benchmark results

Appended by `bench/run_tcp.py` (see bench/README.md); the newest section is last. Figures taken while other
work was running on the machine are noisy: check the "other load" column.

"""


def append_results(path: Path, text: str) -> None:
    existing = path.read_text() if path.exists() else RESULTS_HEADER
    path.write_text(existing.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n")
