"""Lua handlers' cost: CPU per request of rsp with no Lua, an empty access handler, a 10-line routing handler
and an ngx.shared incr in every request; and the same handler files in nginx's Lua module (Debian's
libnginx-mod-http-lua) when it is installed.

    .venv/bin/python bench/run_lua.py [--duration 5] [--reps 2] [--no-nginx]

`pyfilter` is rsp with one Python access filter that does nothing (bench/rsp_noop_filter.py): the pipeline's
own cost of a filter, apart from Lua's.
One nginx backend on loopback (/small, 97 bytes), wrk -c CONNS keep-alive, rsp with workers = 1 (per core, as
nginx's one worker). The handler files are bench/lua/*.lua, used unchanged by both (rsp: `lua = { access =
"FILE" }`; nginx: access_by_lua_file). Targets (issue 19): empty access within 1.25x of no Lua, routing within
1.5x, shared incr within 1.6x; each within 1.5x of nginx + Lua. Everything started here is stopped in `finally`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import configs
import procstat
from lib import LOOPBACK, WRK_SCRIPT, BenchError, Servers, ensure_tools, free_ports, parse_wrk, run_client, wrk_argv

BENCH_DIR = Path(__file__).resolve().parent
VENV_PYTHON = BENCH_DIR.parent / ".venv" / "bin" / "python"
PYTHON = VENV_PYTHON if VENV_PYTHON.exists() else Path(sys.executable)
HANDLERS = BENCH_DIR / "lua"
CONNS = 20
WARMUP_SECONDS = 1
NGINX_LUA_MODULES = ("/usr/lib/nginx/modules/ndk_http_module.so", "/usr/lib/nginx/modules/ngx_http_lua_module.so")
CASES = {"none": None, "pyfilter": None, "empty": "empty.lua", "routing": "routing.lua", "incr": "incr.lua"}
TARGETS = {"empty": 1.25, "routing": 1.5, "incr": 1.6}  # x rsp with no Lua


def rsp_config(tmp: Path, name: str, port: int, backend: int, handler: str | None) -> Path:
    text = (f'listen = {{ {{ address = "{LOOPBACK}", port = {port}, mode = "http" }} }}\n'
            f'backends = {{ "{LOOPBACK}:{backend}" }}\nhttp = {{ access_log = "off" }}\nworkers = 1\n')
    if handler is not None:
        text += (f'lua = {{ access = "{HANDLERS / handler}", shared = {{ hits = "1m" }}, '
                 f'shared_dir = "{tmp / (name + "-shared")}" }}\n')
    path = tmp / f"{name}.lua"
    path.write_text(text)
    return path


def nginx_lua(nginx: str, tmp: Path, name: str, port: int, backend: int, handler: str) -> list[str]:
    loads = "".join(f"load_module {m};\n" for m in NGINX_LUA_MODULES)
    conf = tmp / f"{name}.conf"
    conf.write_text(f"""{loads}{configs._nginx_common(tmp, name)}
http {{
{configs._nginx_http_common(tmp, name)}
    lua_shared_dict hits 1m;
    upstream be {{ server {LOOPBACK}:{backend}; keepalive {configs.NGINX_UPSTREAM_KEEPALIVE}; }}
    server {{
        listen {LOOPBACK}:{port} backlog=4096;
        location / {{
            access_by_lua_file {HANDLERS / handler};
            proxy_pass http://be;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
""")
    return configs.nginx_argv(nginx, tmp, name, conf)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--no-nginx", action="store_true", help="skip nginx + Lua")
    args = parser.parse_args(argv)
    tools = ensure_tools(["nginx", "wrk"])
    with_nginx = not args.no_nginx and all(Path(m).exists() for m in NGINX_LUA_MODULES)
    tmp = Path(tempfile.mkdtemp(prefix="rsp-bench-lua-"))
    tmp.chmod(0o755)
    servers = Servers(tmp)
    try:
        names = [f"rsp-{case}" for case in CASES]
        if with_nginx:
            names += [f"nginx-{case}" for case in CASES if CASES[case] is not None]
        backend, *ports = free_ports(1 + len(names))
        port_of = dict(zip(names, ports, strict=True))
        servers.start("backend", configs.nginx_backend(tools["nginx"], tmp, "backend", backend,
                                                       configs.write_docroot(tmp)), backend)
        procs = {}
        for case, handler in CASES.items():
            name = f"rsp-{case}"
            path = rsp_config(tmp, name, port_of[name], backend, handler)
            # pyfilter: the same config as none, run with one Python filter that does nothing (the pipeline's
            # own cost of having a filter at all)
            entry = [str(BENCH_DIR / "rsp_noop_filter.py")] if case == "pyfilter" else ["-m", "rsp"]
            procs[name] = servers.start(name, [str(PYTHON), *entry, str(path)], port_of[name])
            if with_nginx and handler is not None:
                nname = f"nginx-{case}"
                procs[nname] = servers.start(nname, nginx_lua(tools["nginx"], tmp, nname, port_of[nname], backend,
                                                              handler), port_of[nname])
        script = tmp / "small.lua"
        script.write_text(WRK_SCRIPT + f'request = function() return wrk.format(nil, "{configs.SMALL_PATH}") end\n')
        for name in names:
            run_client(wrk_argv(tools["wrk"], script, f"http://{LOOPBACK}:{port_of[name]}/", CONNS,
                                WARMUP_SECONDS), WARMUP_SECONDS + 60)
        cpu: dict[str, list[float]] = {name: [] for name in names}
        rps: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(args.reps):
            for name in names:  # interleaved: a noisy moment hurts every target alike
                pid = procs[name].pid
                before = procstat.tree_seconds([pid])[pid]
                out = run_client(wrk_argv(tools["wrk"], script, f"http://{LOOPBACK}:{port_of[name]}/", CONNS,
                                          args.duration), args.duration + 60)
                after = procstat.tree_seconds([pid])[pid]
                result = parse_wrk(out)
                if result.errors:
                    raise BenchError(f"{name}: {result.errors} errors (non-2xx or socket) in {result.requests}")
                cpu[name].append((after - before) / result.requests * 1e6)
                rps[name].append(result.rps)
        print(f"# Lua handlers: wrk -c{CONNS} -d{args.duration}s x {args.reps}, CPU of the proxy's process tree")
        print("| target | CPU us/request (best) | all runs | req/s (best) |")
        print("|---|---|---|---|")
        for name in names:
            print(f"| {name} | {min(cpu[name]):.1f} | {', '.join(f'{v:.1f}' for v in cpu[name])} | "
                  f"{max(rps[name]):.0f} |")
        base = min(cpu["rsp-none"])
        print(f"\nrsp with a Python filter that does nothing: {min(cpu['rsp-pyfilter']) / base:.2f}x rsp with no "
              "filter (the pipeline's share of the figures below)")
        for case, target in TARGETS.items():
            ratio = min(cpu[f"rsp-{case}"]) / base
            line = f"rsp {case}: {ratio:.2f}x rsp with no Lua (target within {target}x)"
            if with_nginx:
                line += f"; {min(cpu[f'rsp-{case}']) / min(cpu[f'nginx-{case}']):.2f}x nginx + Lua (target 1.5x)"
            print(line)
        if not with_nginx:
            print("\nnginx + Lua not run (apt-get install libnginx-mod-http-lua)")
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    finally:
        servers.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
