-- Two apps, both on port 8080, each in its own network and PID namespace (run rsp as root):
--   rsp examples/sandbox.lua          (as root; from any directory: relative paths are this file's)
--   curl localhost:8000               balanced over both apps
--   curl localhost:6000               app one;  curl localhost:6001   app two
--   rsp apps -c examples/sandbox.lua list | logs one | exec one -- ps ax
listen = { { port = 8000, pool = "web", mode = "http" } }

apps = {
  one = { command = { "python3", "apps/hello.py" }, port = 8080, pool = "web" },
  two = { command = { "python3", "apps/hello.py" }, port = 8080, pool = "web" },
}

forward = { [6000] = "one:8080", [6001] = "two:8080" }
