"""The response cache (RFC 9111, with RFC 9110's conditional requests): one store per machine, a filter on the
request pipeline's phases. See docs/cache.md.

Decisions (sans-IO, clock passed in): `directives` (Cache-Control, Pragma), `dates` (HTTP-date), `freshness`
(lifetime and age), `storable` (may this response be stored), `vary` (secondary keys), `conditional` (client
preconditions and our validators), `freshen` (304 and HEAD updates), `invalidation` (unsafe methods).
State: `entry` (the stored response and its byte format), `store` (LMDB, shared by every worker). The filter:
`cache_filter`, built per config cache by `wiring`.
"""
