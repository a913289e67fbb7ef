-- Two apps, both on port 8080, each in its own network and PID namespace (run rsp as root):
--   sudo rsp examples/sandbox.lua     (from the repository's root directory)
--   curl localhost:8000               balanced over both apps
--   curl localhost:6000               app one;  curl localhost:6001   app two
--   sudo rsp apps -c examples/sandbox.lua list | logs one | exec one -- ps ax
listen = { { port = 8000, pool = "web", mode = "http" } }

apps = {
  one = { command = { "python3", "examples/apps/hello.py" }, port = 8080, pool = "web" },
  two = { command = { "python3", "examples/apps/hello.py" }, port = 8080, pool = "web" },
}

forward = { [6000] = "one:8080", [6001] = "two:8080" }
