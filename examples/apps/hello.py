"""A demo app for examples/sandbox.lua: answers every GET with its name and the processes it can see.

Run by rsp with APP_NAME and PORT in its environment; in a sandbox, `ps ax` lists only the app's own PID
namespace: its PID 1 (rsp's init), this server and ps itself.
"""

import os
import socketserver
import subprocess
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME = os.environ.get("APP_NAME", "app")


class Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        ps = subprocess.run(["ps", "ax"], capture_output=True, text=True).stdout
        body = f"Hello from app {NAME}\n{ps}".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        print(f"{NAME}: {self.address_string()} {format % args}", flush=True)


class Server(ThreadingHTTPServer):
    def server_bind(self) -> None:
        # HTTPServer.server_bind asks DNS for the host's name (getfqdn), which a namespace without a route to
        # a resolver waits on for seconds: bind without it.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "localhost", self.server_address[1]


Server(("0.0.0.0", int(os.environ.get("PORT", "8080"))), Hello).serve_forever()
