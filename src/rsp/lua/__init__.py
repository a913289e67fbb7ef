"""The only importer of lupa: a sandboxed Lua runtime for configs (and, later, scripts)."""
