"""The chaos soak (issue 20, item 8): rsp with two workers under misbehaving backends, reloads and kills.

    PYTHONPATH=src .venv/bin/python bench/chaos_soak.py [--minutes 10] [--workers 2] [--seed 1]

Three loopback backends that reset, stall, answer slowly or cut their responses on a seeded schedule;
clients that abort; a reload every 30 s (SIGHUP and the admin `reload` in turn); a serving worker SIGKILLed
every minute; a fourth backend added and removed through the runtime API between reloads. Prints requests
served, errors by kind, whether an idempotent request failed while a healthy backend existed (the judgement
is documented in tests/support/chaos_judge.py), each rsp process's RSS and descriptors at start and end, and
any worker exit the soak did not cause. Exit status 1 when the verdict is not clean. The code is
tests/support/chaos_*.py; tests/integration/test_chaos_soak.py runs a short soak in the suite.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "tests"))
# The rsp processes the soak starts run this checkout's source, like the soak itself.
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p)

from support.chaos_soak import SoakSettings, report_lines, run_soak  # noqa: E402
from support.rsp_process import free_port  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="soak length (default 10)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1, help="the backends' schedules and the clients' choices")
    parser.add_argument("--reload-every", type=float, default=30.0)
    parser.add_argument("--kill-every", type=float, default=60.0)
    parser.add_argument("--log", default="", help="write rsp's error log here (default: a file in /tmp, "
                        "named at the end)")
    args = parser.parse_args()
    settings = SoakSettings(minutes=args.minutes, workers=args.workers, clients=args.clients, seed=args.seed,
                            reload_every=args.reload_every, kill_every=args.kill_every)
    with tempfile.TemporaryDirectory(prefix="rsp-chaos-") as tmp:
        report = asyncio.run(run_soak(settings, Path(tmp), free_port()))
    print("\n".join(report_lines(report)))
    log = Path(args.log) if args.log else Path(tempfile.gettempdir()) / f"rsp-chaos-soak-{os.getpid()}.log"
    log.write_text("\n".join(report.log_lines) + "\n")
    print(f"rsp's error log: {log}")
    return 0 if report.clean else 1


if __name__ == "__main__":
    sys.exit(main())
