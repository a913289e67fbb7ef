"""The request pipeline: the neutral messages, HTTP/1's edge of them, the filter chain."""
