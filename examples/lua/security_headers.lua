-- Security headers on every response (a header_filter): rsp examples/lua/security_headers.lua
listen = { { address = "127.0.0.1", port = 8080, mode = "http" } }
backends = { "127.0.0.1:9001" }
lua = {
  header_filter = function()
    local h = ngx.header
    h["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    h["X-Content-Type-Options"] = "nosniff"
    h["X-Frame-Options"] = "DENY"
    h["Referrer-Policy"] = "strict-origin-when-cross-origin"
    h["Content-Security-Policy"] = h["Content-Security-Policy"] or "default-src 'self'"
    h["Server"] = nil        -- do not advertise the backend's software
    h["X-Powered-By"] = nil
  end,
}
