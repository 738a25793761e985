"""`kgreason serve`: start the web demo over a runs folder; `kgreason export demo` (and `serve
--export`): write its static copy. Both are the demo's, so both live here (export sits below serve)."""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
import webbrowser
from pathlib import Path

from kgreason.argtypes import keep_epilog_lines

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
OPEN_WAIT_S = 30.0


def add_serve_options(p: argparse.ArgumentParser) -> None:
    """`kgreason serve` options that belong to the server itself (cli.py declares the rest)."""
    p.add_argument("--open", action="store_true",
                   help="open the demo in the default web browser once the server is listening")


def page_url(host: str, port: int) -> str:
    """The address to browse to: a wildcard bind is reached through the loopback address."""
    if host in ("0.0.0.0", "", "*"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def open_when_listening(url: str, host: str, port: int, timeout_s: float = OPEN_WAIT_S) -> threading.Thread:
    """Open `url` in the browser as soon as something accepts connections on host:port.

    Opening before uvicorn listens gives the user an error page, and uvicorn.run blocks, so a
    thread polls the port and opens the page once; it gives up quietly after `timeout_s`.
    """
    connect_host = "127.0.0.1" if host in ("0.0.0.0", "", "*") else ("::1" if host == "::" else host)

    def wait_then_open() -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((connect_host, port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            print(f"kgreason serve: the server did not start listening in {timeout_s:.0f} s; "
                  f"open {url} yourself", file=sys.stderr)
            return
        if not webbrowser.open(url):
            print(f"kgreason serve: no browser could be opened; open {url} yourself", file=sys.stderr)

    thread = threading.Thread(target=wait_then_open, daemon=True, name="kgreason-open-browser")
    thread.start()
    return thread


def serve(args: argparse.Namespace) -> int:
    if getattr(args, "export", None):  # `serve --export DIR`: the static copy, no server
        return write_static_demo(args.runs, args.export, args.max_groups, args.max_entities)
    import uvicorn

    from kgreason.serve.app import INSTALL_HINT, create_app, missing_vendor_files

    runs = Path(args.runs)
    if not runs.exists():
        print(f"kgreason serve: {runs} does not exist yet; the page will say how to make a run "
              "(`kgreason run`)", file=sys.stderr)
    missing = missing_vendor_files()
    if missing:
        print(f"kgreason serve: front-end libraries missing ({', '.join(missing)}); install them with "
              f"`{INSTALL_HINT}`", file=sys.stderr)
    if args.host not in LOCAL_HOSTS:
        print(f"kgreason serve: warning: listening on {args.host} exposes your runs and live generation "
              "to the network", file=sys.stderr)
    url = page_url(args.host, args.port)
    print(f"kgreason demo over {runs.resolve()}: {url}", file=sys.stderr)
    if getattr(args, "open", False):
        open_when_listening(url, args.host, args.port)
    uvicorn.run(create_app(runs), host=args.host, port=args.port, log_level=args.log_level)
    return 0


# --- kgreason export demo ---------------------------------------------------------------------
DEMO_EXAMPLES = """examples:
  kgreason export demo --runs runs --out site            # then open site/index.html (file:// works)
  kgreason serve --runs runs --export site               # the same
  python -m http.server -d site 8000                     # or any static host

  kgreason export demo --runs runs --out site --max-groups 50 --max-entities 500   # a smaller copy
"""


def add_demo_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = DEMO_EXAMPLES
    p.formatter_class = keep_epilog_lines(p.formatter_class)
    p.add_argument("--runs", default="runs", help="the runs folder (run folders and experiment folders)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="the folder to write; an earlier static export there is replaced, any other existing folder is refused")
    add_demo_caps(p)


def add_demo_caps(p: argparse.ArgumentParser) -> None:
    from kgreason.argtypes import non_negative_int

    p.add_argument("--max-groups", type=non_negative_int, default=200,
                   help="per run, the episode groups (Training) whose samples the copy can open")
    p.add_argument("--max-entities", type=non_negative_int, default=5000,
                   help="per run, the KG entities (Graph) whose neighbourhood the copy can open")


def write_static_demo(runs: str, out: str, max_groups: int = 200, max_entities: int = 5000) -> int:
    """The static copy of the demo's replay views (kgreason.serve.static); shared by `serve --export`."""
    from kgreason.serve.static import export_demo

    s = export_demo(runs, out, max_groups=max_groups, max_entities=max_entities)
    groups = sum(r["episode_groups"] for r in s["runs"].values())
    print(f"wrote {s['folder']}: {len(s['runs'])} run(s), {len(s['experiments'])} experiment(s), "
          f"{s['files']} data files ({s['data_bytes'] / 2**20:.1f} MiB), {groups} episode groups; "
          f"open {s['folder']}/index.html (Try It is unavailable in a static copy)")
    return 0


def demo_command(args: argparse.Namespace) -> int:
    return write_static_demo(args.runs, args.out, args.max_groups, args.max_entities)
