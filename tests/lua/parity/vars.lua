-- nginx variables and request data
local args = ngx.req.get_uri_args()
local headers = ngx.req.get_headers()
ngx.say(ngx.var.uri, "|", ngx.var.args, "|", ngx.var.arg_a, "|", tostring(ngx.var.arg_missing), "|",
        ngx.var.http_x_test, "|", ngx.var.cookie_c, "|", ngx.var.request_method, "|", ngx.var.request_uri, "|",
        ngx.var.scheme, "|", ngx.var.host, "|", ngx.req.get_method(), "|", args.a, "|", tostring(args.flag), "|",
        headers["x-test"], "|", headers.X_Test)
ngx.exit(ngx.HTTP_OK)
