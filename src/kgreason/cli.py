"""The `kgreason` command line. One parser; each pipeline stage owns one `_add_*` section below.

Handlers import their modules lazily so `kgreason --help` and the torch-free commands start fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

Handler = Callable[[argparse.Namespace], int | None]


def _cmd(sub: argparse._SubParsersAction, name: str, help: str, handler: Handler, **kw) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help, description=help, formatter_class=argparse.ArgumentDefaultsHelpFormatter, **kw)
    p.set_defaults(handler=handler)
    return p


def _group(sub: argparse._SubParsersAction, name: str, help: str) -> argparse._SubParsersAction:
    p = sub.add_parser(name, help=help, description=help)
    p.set_defaults(handler=lambda _a, p=p: (p.print_help(), 2)[1])
    return p.add_subparsers(title="commands", metavar="COMMAND")


# --- kg ------------------------------------------------------------------------------------------
def _add_kg_commands(sub: argparse._SubParsersAction) -> None:
    pass


# --- tasks ---------------------------------------------------------------------------------------
def _add_tasks_commands(sub: argparse._SubParsersAction) -> None:
    pass


# --- reward / score ------------------------------------------------------------------------------
def _add_score_commands(sub: argparse._SubParsersAction) -> None:
    pass


# --- models and sampling -------------------------------------------------------------------------
def _add_model_commands(sub: argparse._SubParsersAction) -> None:
    pass


# --- training and the main job -------------------------------------------------------------------
def _add_train_commands(sub: argparse._SubParsersAction) -> None:
    pass


# --- evaluation and experiments ------------------------------------------------------------------
def _add_eval_commands(sub: argparse._SubParsersAction) -> None:
    pass


# --- web demo ------------------------------------------------------------------------------------
def _add_serve_commands(sub: argparse._SubParsersAction) -> None:
    pass


# --- benchmarks ----------------------------------------------------------------------------------
def _add_bench_commands(bench: argparse._SubParsersAction) -> None:
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kgreason",
        description="Teach small language models multi-hop reasoning over a knowledge graph, "
        "with the graph itself as the reward model.",
    )
    from kgreason import __version__

    parser.add_argument("--version", action="version", version=f"kgreason {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_kg_commands(sub)
    _add_tasks_commands(sub)
    _add_score_commands(sub)
    _add_model_commands(sub)
    _add_train_commands(sub)
    _add_eval_commands(sub)
    _add_serve_commands(sub)
    _add_bench_commands(_group(sub, "bench", "Benchmarks: print speed figures as ratios against a baseline measured in the same run."))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Nothing may reach a model or dataset hub at run time; the libraries honour these.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    from kgreason.io import InputError
    from kgreason.kg.graph import KGError

    try:
        return int(handler(args) or 0)
    except (InputError, KGError) as exc:
        print(f"kgreason: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kgreason: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
