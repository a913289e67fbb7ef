"""What pam_unshare adds to a login: the time of one PAM session, open + `true` + close, in three stacks.

    sudo .venv/bin/python bench/pam_session.py [--sessions N]

Each session is one run of the C login driver of tests/pam (tests/support/pam_driver.c) on a throw-away
service in /etc/pam.d (removed at the end), as user nobody:

- permit:   `session required pam_permit.so` (the driver's own cost: exec, pam_start, fork, exec `true`);
- python:   pam_python with a module that only returns PAM_SUCCESS (starting the embedded system Python);
- exempt:   pam_unshare with nobody exempt (pam_python starting the system Python and loading the module);
- unshare:  pam_unshare for nobody (plus unshare, the helper, the proc mount, setns, the helper's exit).

The three run interleaved (one of each per round) so that a noisy machine disturbs them alike. Printed:
median and 90th percentile wall time per session, CPU time (user + system of the driver and everything
it forked, the helper included) per session, and the ratios to `permit`. Root only (namespaces, /etc/pam.d).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from support.pam_harness import PERMIT_RULES, build_driver, module_line, pam_service  # noqa: E402

DEFAULT_SESSIONS = 200  # per stack; a session takes tens of milliseconds, so a run stays well under a minute
# A session module that does nothing: what pam_python costs before any of pam_unshare runs.
EMPTY_MODULE = "def pam_sm_open_session(pamh, flags, argv):\n    return 0\n\n\n" \
               "def pam_sm_close_session(pamh, flags, argv):\n    return 0\n"


def stacks(scratch: Path) -> dict[str, list[str]]:
    empty = scratch / "empty_module.py"
    empty.write_text(EMPTY_MODULE)
    return {
        "permit": [*PERMIT_RULES, "session required pam_permit.so"],
        "python": [*PERMIT_RULES, f"session required pam_python.so {empty}"],
        "exempt": [*PERMIT_RULES, module_line("exempt_users=nobody")],
        "unshare": [*PERMIT_RULES, module_line()],
    }


def one_session(driver: Path, service: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the driver and its descendants) of one session."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run([str(driver), service, "nobody", "true"], capture_output=True, timeout=30, cwd="/")
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0 or b"open=0" not in result.stdout:
        raise SystemExit(f"session of {service} failed: {result.stdout.decode()} {result.stderr.decode()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=DEFAULT_SESSIONS, help="sessions per stack")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("pam_session.py: needs root (namespaces, /etc/pam.d)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as scratch, ExitStack() as stack:
        driver = build_driver(Path(scratch))
        services = {name: stack.enter_context(pam_service(rules)) for name, rules in stacks(Path(scratch)).items()}
        for service in services.values():  # warm-up: page cache, the module's .pyc files
            one_session(driver, service)
        walls: dict[str, list[float]] = {name: [] for name in services}
        cpus: dict[str, list[float]] = {name: [] for name in services}
        for _ in range(args.sessions):
            for name, service in services.items():
                wall, cpu = one_session(driver, service)
                walls[name].append(wall)
                cpus[name].append(cpu)
    base_wall = statistics.median(walls["permit"])
    base_cpu = statistics.mean(cpus["permit"])
    print(f"{args.sessions} sessions per stack, interleaved; times per session (open + true + close)")
    print(f"{'stack':<8} {'median ms':>10} {'p90 ms':>8} {'cpu ms':>8} {'wall x':>7} {'cpu x':>6}")
    for name in walls:
        ordered = sorted(walls[name])
        p90 = ordered[int(len(ordered) * 0.9) - 1]
        median = statistics.median(ordered)
        cpu = statistics.mean(cpus[name])
        print(f"{name:<8} {median * 1000:>10.2f} {p90 * 1000:>8.2f} {cpu * 1000:>8.2f} "
              f"{median / base_wall:>7.2f} {cpu / base_cpu:>6.2f}")
    def extra(name: str, base: str) -> str:
        wall = (statistics.median(walls[name]) - statistics.median(walls[base])) * 1000
        cpu = (statistics.mean(cpus[name]) - statistics.mean(cpus[base])) * 1000
        return f"{wall:.2f} ms wall, {cpu:.2f} ms cpu"

    print(f"loading pam_unshare and its imports (exempt - python): {extra('exempt', 'python')}")
    print(f"namespace set-up and tear-down (unshare - exempt): {extra('unshare', 'exempt')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
