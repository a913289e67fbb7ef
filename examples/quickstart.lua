-- rsp quick start: listen on port 8000 and relay every connection to the demo backend.
-- This is the original rsp form; see docs/config.md for listeners, pools and timeouts.
listenPort = 8000
backendAddress = "127.0.0.1"
backendPort = 9000
