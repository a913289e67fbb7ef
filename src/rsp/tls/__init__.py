"""TLS: the listener's certificates and SNI choice, TLS to backends, the ClientHello parser for SNI routing."""
