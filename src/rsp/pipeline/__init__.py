"""The request pipeline: protocol-neutral messages (`messages`) and the filter interface over named phases
(`phases`). Codecs (rsp.http1, and HTTP/2) produce and consume the messages at the edges; features (routing,
X-Forwarded-*, the route store, Lua, the cache) are filters. See docs/architecture.md, "The request pipeline".
"""
