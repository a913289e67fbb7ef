"""CPU instructions per routing decision as the number of static routes grows (valgrind's cachegrind, so a
loaded machine does not change the figure).

For each size N, a child Python builds N host routes (`h0.example` ... and a wildcard and a host-less rule
after them) and runs `Router.match` for the last host A times, then B times; the figure is
(instructions(B) - instructions(A)) / (B - A): one more match, start-up and imports cancelled out.

    PYTHONPATH=$PWD/src .venv/bin/python bench/route_cost.py               # the tree on PYTHONPATH
    PYTHONPATH=$PWD/src .venv/bin/python bench/route_cost.py --sizes 1,1000

Run it once compiled (scripts/build-native) to count what the proxy runs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r'''
import sys
from rsp.config.model import Route
from rsp.routes.router import Router
n, k = int(sys.argv[1]), int(sys.argv[2])
routes = [Route(pool=f"p{i}", host=f"h{i}.example") for i in range(n)]
routes += [Route(pool="wild", host="*.apps.example"), Route(pool="any", path_prefix="/static/")]
router = Router(routes, "default")
host = f"h{n - 1}.example".encode()
for _ in range(k):
    found = router.match(host, b"/index.html", b"GET")
assert found == f"p{n - 1}", found
'''


def instructions(n: int, k: int) -> int:
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "cg.out"
        subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={out}",
                        sys.executable, "-c", CHILD, str(n), str(k)],
                       check=True, capture_output=True, env={**os.environ, "PYTHONHASHSEED": "0"}, timeout=1800)
        for line in out.read_text().splitlines():
            if line.startswith("summary:"):
                return int(line.split()[1])
    raise RuntimeError("no summary line in cachegrind's output")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1,10,100,1000")
    ap.add_argument("--small", type=int, default=200, help="matches of the baseline run")
    ap.add_argument("--large", type=int, default=2200, help="matches of the measured run")
    opts = ap.parse_args()
    import rsp.routes.router as router_module
    print(f"router: {router_module.__file__}")
    first = 0.0
    for n in (int(size) for size in opts.sizes.split(",")):
        per = (instructions(n, opts.large) - instructions(n, opts.small)) / (opts.large - opts.small)
        first = first or per
        print(f"  {n:>6} routes: {per:>10,.0f} instructions per match ({per / first:.2f}x the smallest)")


if __name__ == "__main__":
    main()
