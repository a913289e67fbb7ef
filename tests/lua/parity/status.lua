-- answers: ngx.exit with a status, ngx.redirect, ngx.status with output
local what = ngx.var.arg_what
if what == "deny" then return ngx.exit(ngx.HTTP_FORBIDDEN) end
if what == "redirect" then return ngx.redirect("/elsewhere?x=1", ngx.HTTP_MOVED_PERMANENTLY) end
ngx.status = ngx.HTTP_CREATED
ngx.header["X-Made"] = "yes"
ngx.say("created")
ngx.exit(ngx.HTTP_OK)
