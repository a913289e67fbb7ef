-- A balancer that reads each host's backend from Redis with lua-resty-redis (unmodified: it only needs
-- cosockets, which rsp runs on its own loop, in balancer too, where OpenResty forbids them).
--   redis-cli set backend:app.example 127.0.0.1:9002
-- package_path points at the copy vendored for rsp's tests; point it at your lua-resty-redis checkout.
-- rsp examples/lua/redis_balancer.lua
listen = { { address = "127.0.0.1", port = 8080, mode = "http" } }
backends = { "127.0.0.1:9001" }
lua = {
  package_path = "../../tests/lua/vendor/lua-resty-redis/lib/?.lua",
  balancer = "handlers/redis_balancer.lua",
}
