"""X.509 certificate bundles: loading, chain building, and the checks behind `rsp cert check|bundle`.

Pure decisions over `cryptography` certificate objects: no sockets, no wall clock (the moment of every
validity check is a parameter). The TLS listener calls `chain.choose_chain` at start-up to pick the chain
it serves; `rsp cert` reports the same choice to people.
"""
