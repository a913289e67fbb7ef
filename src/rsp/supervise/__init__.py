"""Process supervision shared by the worker master and the app sandbox: start children, watch their exits
without polling, restart them with backoff, stop them with SIGTERM then SIGKILL.

One supervisor, not two: `rsp.master` (worker processes) and the app sandbox both use `Supervisor`.
"""

from rsp.supervise.backoff import Backoff
from rsp.supervise.children import ChildInfo, ChildSpec, Supervisor, describe_status

__all__ = ["Backoff", "ChildInfo", "ChildSpec", "Supervisor", "describe_status"]
