-- rsp in HTTP mode: keep-alive both sides, routing by Host and path, forwarding headers, access log.
-- Try: scripts/run-example starts a demo backend on 9000; this config expects two on 9001 and 9002:
--   .venv/bin/python examples/demo_backend.py 127.0.0.1 9001 &
--   .venv/bin/python examples/demo_backend.py 127.0.0.1 9002 &
--   .venv/bin/rsp examples/http.lua
--   curl -H 'Host: api.example.com' localhost:8080/v1/items
listen = {
  { address = "127.0.0.1", port = 8080, mode = "http", pool = "web" },
}

pools = {
  web = { algorithm = "roundrobin", backends = { "127.0.0.1:9001" },
          health = { kind = "http", path = "/", interval = 2 } },
  api = { algorithm = "leastconn", backends = { "127.0.0.1:9002" } },
}

routes = {
  { host = "api.example.com", path = "/v1", pool = "api" },
  { host = "*.api.example.com", pool = "api" },
}

http = {
  header_timeout = 10,
  trusted_proxies = { "127.0.0.0/8" },
  access_log = "combined",
}
