"""`rsp worker`: a worker process, started by rsp's master (`workers = N`) with its descriptors; not for
people to run (rsp.master.spawn)."""

from __future__ import annotations

import os
import sys

from rsp.master.spawn import WORKER_ENV


def main(argv: list[str]) -> int:
    if argv or WORKER_ENV not in os.environ:
        print("rsp worker: started by rsp's master only (set workers = N in the config)", file=sys.stderr)
        return 2
    from rsp.master.worker import run_worker

    return run_worker()
