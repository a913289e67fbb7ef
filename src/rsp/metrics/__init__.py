"""Metrics: per-process counters (counters.py, on the hot path), their snapshot, the merge across workers,
the Prometheus text rendering, the stats page and the small HTTP endpoint that serves them (docs/metrics.md)."""
