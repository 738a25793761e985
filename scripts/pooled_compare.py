"""Seed-pooled paired comparison of two recipes from their eval folders (the way `kgreason experiment`
pools an arm's seeds: each item's correctness and faithfulness averaged over the recipe's seeds,
then a paired bootstrap over items), plus each seed pair on its own.

Usage: python scripts/pooled_compare.py --a DIR [DIR ...] --b DIR [DIR ...] [--labels A B] [--json]
Each DIR is an eval folder (predictions.jsonl inside); the i-th DIR of --a is paired with the i-th
of --b for the per-seed rows (same GRPO seed, same SFT adapter). Differences are b - a.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kgreason.evaluate.bootstrap import bootstrap_mean, paired_bootstrap_difference
from kgreason.evaluate.runner import PREDICTIONS, read_episodes


def load(folder: str) -> dict[str, tuple[float, float]]:
    episodes = read_episodes(Path(folder) / PREDICTIONS)
    if not episodes:
        raise SystemExit(f"{folder}: no {PREDICTIONS}")
    return {tid: (float(ep.reward.correct), float(ep.reward.faithful)) for tid, ep in episodes.items()}


def pooled(runs: list[dict[str, tuple[float, float]]], ids: list[str], field: int) -> list[float]:
    return [sum(r[t][field] for r in runs) / len(runs) for t in ids]


def pct(d: dict) -> str:
    return f"{100 * d['diff']:+.1f} [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}], p={d['p_value']:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a", nargs="+", required=True)
    ap.add_argument("--b", nargs="+", required=True)
    ap.add_argument("--labels", nargs=2, default=["a", "b"])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    a_runs, b_runs = [load(d) for d in args.a], [load(d) for d in args.b]
    if len(a_runs) != len(b_runs):
        raise SystemExit(f"--a has {len(a_runs)} folders and --b {len(b_runs)}: pair them seed by seed")
    ids = sorted(set.intersection(*(set(r) for r in a_runs + b_runs)))
    if not ids:
        raise SystemExit("the folders share no item")
    out: dict = {"items": len(ids), "labels": args.labels, "per_seed": []}
    for i, (ra, rb) in enumerate(zip(a_runs, b_runs, strict=True)):
        out["per_seed"].append({
            "pair": [args.a[i], args.b[i]],
            "accuracy": [bootstrap_mean([r[t][0] for t in ids]).to_dict() for r in (ra, rb)],
            "faithful": [bootstrap_mean([r[t][1] for t in ids]).to_dict() for r in (ra, rb)],
            "diff_accuracy": paired_bootstrap_difference([ra[t][0] for t in ids], [rb[t][0] for t in ids]).to_dict(),
            "diff_faithful": paired_bootstrap_difference([ra[t][1] for t in ids], [rb[t][1] for t in ids]).to_dict(),
        })
    for name, field in (("accuracy", 0), ("faithful", 1)):
        pa, pb = pooled(a_runs, ids, field), pooled(b_runs, ids, field)
        out[f"pooled_{name}"] = [bootstrap_mean(p).to_dict() for p in (pa, pb)]
        out[f"pooled_diff_{name}"] = paired_bootstrap_difference(pa, pb).to_dict()
    if args.json:
        print(json.dumps(out))
        return
    la, lb = args.labels
    print(f"{out['items']} shared items; differences are {lb} - {la}")
    for row in out["per_seed"]:
        acc, fa = row["accuracy"], row["faithful"]
        print(f"  {row['pair'][1]}: accuracy {100 * acc[0]['mean']:.1f}% -> {100 * acc[1]['mean']:.1f}%, "
              f"{pct(row['diff_accuracy'])}; faithful {100 * fa[0]['mean']:.1f}% -> {100 * fa[1]['mean']:.1f}%, "
              f"{pct(row['diff_faithful'])}")
    for name in ("accuracy", "faithful"):
        a, b = out[f"pooled_{name}"]
        print(f"pooled over {len(a_runs)} vs {len(b_runs)} seeds, {name}: {la} {100 * a['mean']:.1f}% "
              f"[{100 * a['low']:.1f}, {100 * a['high']:.1f}], {lb} {100 * b['mean']:.1f}% "
              f"[{100 * b['low']:.1f}, {100 * b['high']:.1f}], paired {pct(out[f'pooled_diff_{name}'])}")


if __name__ == "__main__":
    main()
