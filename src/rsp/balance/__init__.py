"""Load-balancing algorithms: one per file behind `rsp.balance.base.Balancer`; names in `registry`."""
