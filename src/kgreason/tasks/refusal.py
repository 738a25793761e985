"""Refuse data that cannot be honest: held-out items a registered shortcut baseline answers above the limit.

A user who trains on a graph whose items a rule answers without reasoning gets a table that looks like
learning and measures the rule. So the data stage (`kgreason tasks generate`, and `kgreason run` /
`kgreason experiment` through kgreason.tasks.build) scores every registered shortcut baseline on each
held-out split it generated (the audit's expected hits, ties split evenly, the training splits feeding
the answer-prior baselines, the audit's 95% interval) and stops before writing anything when one is
above `max_shortcut` with its whole interval (a small split's noise refuses nothing), with one paragraph: which baseline, how high, why this graph allows it, and what to try. `allow_shortcuts`
writes the files anyway; the manifest then records it (`shortcut_check.allowed`), and so does every
run's report through the manifest. Torch-free.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kgreason.config import DEFAULT_MAX_SHORTCUT
from kgreason.records import LETTERS

# Why a graph lets a baseline win, for the refusal paragraph; a baseline not listed is described by
# its registry description. Keyed by registered name (tasks/baselines.py).
WHY = {
    "chain_from_other_entities": "the stated chain reaches the answer from many other entities of the graph and "
                                 "the decoys from few or none, so the start does not matter",
    "context_chain_from_other_entities": "the facts in the prompt let the stated chain reach the answer from "
                                         "entities other than the start, and the decoys from none",
    "last_two_relations": "the last two relations of the chain alone lead to the answer and to none of the decoys",
    "last_relation_tail": "the last relation of the chain alone points to the answer (few entities are its tails)",
    "first_relation_then_any": "the first relation from the start, then any path, reaches the answer more "
                               "often than the decoys",
    "type_match": "the answer's type can be read off the question and the decoys are of other types",
    "max_degree": "the answer is usually the best-connected option (a hub)",
    "max_in_degree": "the answer is usually the option with the most incoming edges (a hub)",
    "most_common_letter": "the answer letters are not balanced",
}


def check_shortcuts(kg: Any, splits: Mapping[str, Sequence[Any]], held_out: Sequence[str],
                    max_shortcut: float = DEFAULT_MAX_SHORTCUT) -> dict:
    """Per held-out split: the strongest registered baseline, and those whose whole 95% interval is above
    `max_shortcut` (`over`: these refuse the data) or whose point estimate alone is (`noisy`: a small
    split cannot tell them from the limit, so they are recorded, not refused; on 6 items a rule
    that happens to get 3 right scores 50%). `splits` maps split names to their tasks; the splits not
    held out are the training material of the answer-prior baselines."""
    from kgreason.tasks.audit import shortcut_hits
    from kgreason.tasks.baselines import bootstrap_interval

    train = [t for name, tasks in splits.items() if name not in held_out for t in tasks]
    result: dict[str, Any] = {"limit": max_shortcut, "held_out": {}}
    for name in held_out:
        tasks = list(splits.get(name) or [])
        if not tasks:
            continue
        hits = {b: h for b, h in shortcut_hits(kg, tasks, train or None).items() if h}
        acc = {b: sum(h) / len(h) for b, h in hits.items()}
        strongest = max(acc.items(), key=lambda kv: kv[1]) if acc else (None, 0.0)
        over: dict[str, dict] = {}
        noisy: dict[str, dict] = {}
        for b, a in sorted(acc.items(), key=lambda kv: -kv[1]):
            if a <= max_shortcut:
                break
            low, high = bootstrap_interval(hits[b])
            (over if low > max_shortcut else noisy)[b] = {"accuracy": round(a, 4), "ci95": [round(low, 4), round(high, 4)]}
        result["held_out"][name] = {"items": len(tasks),
                                    "strongest": {"baseline": strongest[0], "accuracy": round(strongest[1], 4)},
                                    "over": over, "noisy": noisy}
    result["passed"] = not any(s["over"] for s in result["held_out"].values())
    return result


def refusal_paragraph(source: str, check: Mapping[str, Any], chance: float = 1 / len(LETTERS)) -> str:
    """One paragraph for a failed check: which baseline, how high, why this graph allows it, what to try."""
    from kgreason.tasks.baselines import BASELINES

    parts = []
    reasons = []
    for split, row in check["held_out"].items():
        if not row["over"]:
            continue
        listed = ", ".join(f"{b} {_pct_ci(v)}" for b, v in row["over"].items())
        parts.append(f"on the {row['items']} held-out {split!r} items {listed}")
        for b in row["over"]:
            why = WHY.get(b) or (BASELINES[b].description if b in BASELINES else b)
            if (b, why) not in reasons:
                reasons.append((b, why))
    because = "; ".join(f"{b}: {why}" for b, why in reasons[:3])
    return (f"{source}: refusing to write this data: a shortcut baseline answers the held-out items without "
            f"following the chain ({'; '.join(parts)}; the limit is {100 * check['limit']:.0f}% and each interval is "
            f"above it; chance is "
            f"{100 * chance:.0f}%), so a model trained and scored on it would show a rule, not reasoning. Why this "
            f"graph allows it: {because}. What to try: shorter chains (`kgreason tasks generate --eval-hops "
            f"--hard-hops`, then `kgreason tasks audit` to see whether they pass), another seed or graph, a higher "
            f"--max-shortcut if you accept the risk, or --allow-shortcuts to write the files anyway (the manifest "
            f"and every report then say so). Nothing was written.")


def over_summary(check: Mapping[str, Any]) -> str:
    """'eval: chain_from_other_entities 95.6%, ...' for a warning line or a report."""
    return "; ".join(f"{split}: " + ", ".join(f"{b} {_pct_ci(v)}" for b, v in row["over"].items())
                     for split, row in check["held_out"].items() if row["over"])


def _pct_ci(row: Mapping[str, Any]) -> str:
    low, high = row["ci95"]
    return f"{100 * row['accuracy']:.1f}% [{100 * low:.1f}, {100 * high:.1f}]"


def guard_shortcuts(source: str, kg: Any, dataset: Any, max_shortcut: float, allow: bool) -> dict:
    """Check a generated dataset (kgreason.tasks.generate.GeneratedDataset) before it is written: raise
    InputError with the refusal paragraph, or record the check in its manifest (`shortcut_check`, with
    `allowed` true when --allow-shortcuts let a failing dataset through) and return it."""
    from kgreason.io import InputError

    held_out = [s["name"] for s in dataset.manifest["config"]["splits"] if s.get("held_out")]
    check = check_shortcuts(kg, dataset.splits, held_out, max_shortcut)
    check["allowed"] = bool(allow and not check["passed"])
    if not check["passed"] and not allow:
        raise InputError(refusal_paragraph(source, check))
    dataset.manifest["shortcut_check"] = check
    return check
