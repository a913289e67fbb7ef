-- rsp with a response cache (docs/cache.md): one store per machine, shared by every worker.
-- Try:
--   .venv/bin/python examples/demo_backend.py 127.0.0.1 9000 &
--   .venv/bin/rsp examples/cache.lua
--   curl -si localhost:8080/ | grep -i -e x-cache -e age      (MISS, then HIT: only if the backend allows it)
--   curl -si -X PURGE localhost:8080/                          (removes it, from every worker)
--   .venv/bin/rsp cache -c examples/cache.lua stats
listen = {
  { address = "127.0.0.1", port = 8080, mode = "http", cache = "pages" },
}

backends = { "127.0.0.1:9000" }

caches = {
  pages = {
    size = "64m",             -- the bound of the store's file (memory-backed, in /dev/shm, without `path`)
    max_object = "4m",        -- larger responses pass through unstored
    heuristic = false,        -- only what the backend marks cacheable (Cache-Control, Expires)
    grace = 30,               -- a stale page may stand in for a failing backend this long
    purge = { "127.0.0.1" },  -- who may PURGE
  },
}

http = { access_log = "combined" }
workers = 2
