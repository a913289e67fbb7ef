-- Route by header: X-Tenant picks the tenant's pool; unknown tenants get 404 before any backend is tried.
-- rsp examples/lua/route_by_header.lua
listen = { { address = "127.0.0.1", port = 8080, mode = "http" } }
pools = {
  default = { backends = { "127.0.0.1:9001" } },
  acme = { backends = { "127.0.0.1:9002", "127.0.0.1:9003" } },
  globex = { backends = { "127.0.0.1:9004" } },
}
lua = {
  rewrite = function()
    local tenants = { acme = "acme", globex = "globex" }
    local tenant = ngx.var.http_x_tenant
    if tenant == nil then return end          -- no header: the default pool
    local pool = tenants[string.lower(tenant)]
    if pool == nil then return ngx.exit(ngx.HTTP_NOT_FOUND) end
    ngx.var.rsp_pool = pool
    ngx.req.clear_header("X-Tenant")          -- the backends do not need it
  end,
}
