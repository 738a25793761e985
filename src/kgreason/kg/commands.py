"""Handlers for `kgreason kg build | import | stats` (cli.py only wires the arguments)."""

from __future__ import annotations

import argparse
import json
import sys
import time


def cmd_build(args: argparse.Namespace) -> int:
    from kgreason.kg.builtin import build_devops_kg
    from kgreason.kg.kgjson import save_kg

    t0 = time.perf_counter()
    kg = build_devops_kg(seed=args.seed, size=args.size, progress=True)
    t1 = time.perf_counter()
    save_kg(kg, args.out)
    t2 = time.perf_counter()
    print(
        f"wrote {args.out}: {len(kg.entities)} entities, {len(kg.relations)} relations, {len(kg.edges)} edges "
        f"(seed {args.seed}, size {args.size}; built in {t1 - t0:.2f}s, written in {t2 - t1:.2f}s)"
    )
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from kgreason.kg.kgjson import save_kg
    from kgreason.kg.relation_meta import merge_relation_meta, read_relation_meta, relation_meta_from_flags
    from kgreason.kg.sources import import_kg

    sidecar = read_relation_meta(args.relations) if args.relations else {}
    flags = relation_meta_from_flags(
        args.phrase or (), args.inverse_phrase or (), args.symmetric or (), args.asymmetric or ()
    )
    kg = import_kg(args.file, fmt=args.format, relation_meta=merge_relation_meta(sidecar, flags))
    for warning in kg.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    save_kg(kg, args.out)
    typed = sum(1 for e in kg.entities.values() if e.type)
    print(
        f"wrote {args.out}: {len(kg.entities)} entities ({typed} typed), {len(kg.relations)} relations, "
        f"{len(kg.edges)} edges, {len(kg.warnings)} warning(s)"
    )
    for r in kg.relations.values():
        if r.symmetric:
            how = " (symmetric: stored both ways)"
        elif r.inverse_phrase:
            how = f' (inverse "{r.inverse_phrase}")'
        else:
            how = ""
        print(f'  relation {r.id}: "{r.phrase}"{how}')
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from kgreason.kg.sources import import_kg
    from kgreason.kg.stats import compute_stats, format_stats

    kg = import_kg(args.kg, fmt=args.format)
    stats = compute_stats(kg)
    if args.json:
        print(json.dumps(stats, indent=2, ensure_ascii=False))
    else:
        print(format_stats(stats))
    return 0
