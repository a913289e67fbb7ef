"""A route table in Redis shared by many rsp machines (issue 14; docs/routestore.md).

schema.py       key names and the parsing of a set member (`address:port`)
cache.py        host -> backends with a TTL, negative entries and an injectable clock (pure)
bad_data.py     rate-limited logging of what Redis holds that rsp cannot use
dynamic_pools.py one PoolRuntime per distinct backend set, built from the template pool, retired when unused
redis_link.py   the Redis client: lookups, pub/sub invalidation, reconnect with backoff, outage logging
store.py        RouteStore: the wiring into HTTP mode (the hot dict, coalesced lookups of unknown hosts)
"""
