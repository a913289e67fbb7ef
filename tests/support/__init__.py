"""Black-box test support: run rsp as a subprocess, backend servers, clients, deterministic payloads."""
