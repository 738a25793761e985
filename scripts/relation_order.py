"""How often a trace states, at hop i, the relation the question asks at hop i (and how many of its
stated hops are edges of the graph), per hop position and per asked relation, from files alone: a data folder's eval.jsonl
and an evaluation's predictions.jsonl (whose reward records list the claimed hops). Standard library.

    python scripts/relation_order.py DATA_DIR EVAL_DIR [EVAL_DIR ...]
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def relation_order(data: Path, eval_dir: Path) -> dict:
    chains = {t["id"]: t["relation_chain"] for t in read_jsonl(data / "eval.jsonl")}
    stated: Counter[int] = Counter()  # by hop position
    matched: Counter[int] = Counter()
    asked_n: Counter[str] = Counter()  # by asked relation
    asked_ok: Counter[str] = Counter()
    hops = valid = 0
    for row in read_jsonl(eval_dir / "predictions.jsonl"):
        claimed = row["reward"].get("claimed_hops") or []
        asked = chains[row["task_id"]]
        hops += len(claimed)
        valid += sum(bool(h["valid"]) for h in claimed)
        for i, hop in enumerate(claimed[: len(asked)]):
            right = hop["relation"] == asked[i]
            stated[i] += 1
            matched[i] += right
            asked_n[asked[i]] += 1
            asked_ok[asked[i]] += right
    repeats = sum(any(c[i] == c[i - 1] for i in range(1, len(c))) for c in chains.values())
    return {"stated_hops": hops, "valid_share": valid / hops if hops else None,
            "asked_relation_share": matched.total() / stated.total() if stated else None,
            "by_position": [matched[i] / stated[i] for i in sorted(stated)],
            "by_relation": {r: asked_ok[r] / n for r, n in sorted(asked_n.items())},
            "chains_repeating_a_relation": repeats / len(chains) if chains else None}


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    data = Path(argv[0])
    for eval_dir in map(Path, argv[1:]):
        r = relation_order(data, eval_dir)
        by = ", ".join(f"{i + 1}: {100 * x:.0f}%" for i, x in enumerate(r["by_position"]))
        print(f"{eval_dir}: {r['stated_hops']} stated hops, {100 * r['valid_share']:.1f}% graph edges, "
              f"{100 * r['asked_relation_share']:.1f}% take the asked relation (by position {by})")
        print("  by asked relation: " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in r["by_relation"].items())
              + f"; eval chains repeating a relation back to back: {100 * r['chains_repeating_a_relation']:.0f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
