"""Per-connection proxy logic: the TCP session (pick, connect, retry, relay) and pool wiring."""
