"""Upstream side: runtime records of backends (records.py) and connection pools."""
