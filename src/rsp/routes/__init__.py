"""Request routing: rules by Host, path prefix and method, each to a pool."""
