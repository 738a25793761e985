"""How often a trace states, at hop i, the relation the question asks at hop i (and how many of its
stated hops are edges of the graph), per hop position, from files alone: a data folder's eval.jsonl
and an evaluation's predictions.jsonl (whose reward records list the claimed hops). Standard library.

    python scripts/relation_order.py DATA_DIR EVAL_DIR [EVAL_DIR ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def relation_order(data: Path, eval_dir: Path) -> dict:
    chains = {t["id"]: t["relation_chain"] for t in read_jsonl(data / "eval.jsonl")}
    hops = valid = 0
    matched: list[int] = []
    stated: list[int] = []
    for row in read_jsonl(eval_dir / "predictions.jsonl"):
        claimed = row["reward"].get("claimed_hops") or []
        asked = chains[row["task_id"]]
        hops += len(claimed)
        valid += sum(bool(h["valid"]) for h in claimed)
        for i, hop in enumerate(claimed[: len(asked)]):
            while len(stated) <= i:
                stated.append(0)
                matched.append(0)
            stated[i] += 1
            matched[i] += hop["relation"] == asked[i]
    return {"stated_hops": hops, "valid_share": valid / hops if hops else None,
            "asked_relation_share": sum(matched) / sum(stated) if stated else None,
            "by_position": [m / s for m, s in zip(matched, stated, strict=True)]}


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
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
