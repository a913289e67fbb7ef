"""Runtime administration: a small command language over a Unix socket (HAProxy's stats socket in spirit)."""
