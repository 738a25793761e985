"""Handler for `kgreason model prepare` (cli.py declares its flags)."""

from __future__ import annotations

import argparse
import time


# ---- model prepare ---------------------------------------------------------------------------
def cmd_model_prepare(args: argparse.Namespace) -> int:
    from kgreason.models import load_tokenizer
    from kgreason.models.gguf import verify_tokenizer
    from kgreason.models.refs import prepare_model

    source = args.gguf or args.model
    start = time.perf_counter()
    folder, converted = prepare_model(source, out=args.out, force=args.force)
    seconds = time.perf_counter() - start
    verify_tokenizer(load_tokenizer(folder), str(folder))
    what = "converted" if converted else "already prepared, reused"
    print(f"{source}: {what} in {seconds:.1f}s -> {folder}")
    return 0
