"""`kgreason serve`: start the web demo over a runs folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def serve(args: argparse.Namespace) -> int:
    if getattr(args, "export", None):  # `serve --export DIR`: the static copy, no server
        from kgreason.export.commands import write_static_demo

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
    print(f"kgreason demo over {runs.resolve()}: http://{args.host}:{args.port}/", file=sys.stderr)
    uvicorn.run(create_app(runs), host=args.host, port=args.port, log_level=args.log_level)
    return 0
