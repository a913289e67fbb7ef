"""Backend health: the rise/fall policy (pure), outlier detection (pure) and the active checker (asyncio)."""
