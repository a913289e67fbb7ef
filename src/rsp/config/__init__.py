"""Configuration: one immutable model (`model`), loaded once and validated at load (`lua_loader`)."""
