"""Refuse data that cannot be honest: held-out items a registered shortcut baseline answers above the limit.

A user who trains on a graph whose items a rule answers without reasoning gets a table that looks like
learning and measures the rule. So the data stage (`kgreason tasks generate`, and `kgreason run` /
`kgreason experiment` through kgreason.tasks.build) scores every registered shortcut baseline on each
held-out split it generated (the audit's expected hits, ties split evenly, the training splits feeding
the answer-prior baselines) and stops before writing any task file when one is above `max_shortcut`
with its whole interval, corrected for the number of baselines tried (a split of fewer than MIN_ITEMS
items refuses nothing: there luck decides), with one paragraph: which baseline, how high, why this graph allows it, and what to try. `allow_shortcuts`
writes the files anyway: the manifest records it (`shortcut_check.allowed`), the data stage prints a
warning and a run's "What went wrong" paragraph names it (evaluate/diagnosis.py). Torch-free.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kgreason.families import family_of_tasks, get_family
from kgreason.families.base import mean_chance, shortcut_limit
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


# Rules that win when decoys lie outside the stated chain's image (hub-funnelled graphs): the data
# stage's trigger for image-matched decoys (tasks/build.py), and what the refusal says about them.
CHAIN_IMAGE_RULES = frozenset({"chain_from_other_entities", "chain_image_any_start"})


# Below this many held-out items the check records its figures and refuses nothing: on a handful of
# items some of ~27 rules get most of them right by luck (seen: 83% on 3 items of the built-in graph).
MIN_ITEMS = 30
FAMILY_CONFIDENCE = 0.95  # for the family of baselines together: each is tested at 1 - 0.05 / (number tested)


def check_shortcuts(kg: Any, splits: Mapping[str, Sequence[Any]], held_out: Sequence[str],
                    max_shortcut: float | None = None) -> dict:
    """Per held-out split: the strongest registered baseline, and those above `max_shortcut`: `over`
    when the whole interval is above it (these refuse the data), else `noisy` (recorded only).

    The interval is the audit's (Wilson for 0/1 hits, the seeded percentile bootstrap when ties split
    hits), Bonferroni-corrected for the number of baselines scored, so that ~27 rules tried at once do
    not refuse a fair split by luck; a split of fewer than MIN_ITEMS items refuses nothing. `splits`
    maps split names to their tasks; the splits not held out feed the answer-prior baselines.
    `max_shortcut` None: the task family's limit."""
    from kgreason.stats import mean_interval
    from kgreason.tasks.audit import shortcut_hits

    train = [t for name, tasks in splits.items() if name not in held_out for t in tasks]
    every = [t for tasks in splits.values() for t in tasks]
    family = get_family(family_of_tasks(every))
    max_shortcut = max_shortcut if max_shortcut is not None else family.max_shortcut
    result: dict[str, Any] = {"limit": max_shortcut, "min_items": MIN_ITEMS, "held_out": {}}
    if family.name != get_family(None).name:
        result["family"] = family.name
    modes = {getattr(t, "mode", None) for t in every}
    if len(modes) == 1:
        result["mode"] = modes.pop()
    chance = mean_chance(every, len(kg.entities))
    result["chance"] = round(chance, 6) if chance is not None else None
    for name in held_out:
        tasks = list(splits.get(name) or [])
        if not tasks:
            continue
        hits = {b: h for b, h in shortcut_hits(kg, tasks, train or None).items() if h}
        acc = {b: sum(h) / len(h) for b, h in hits.items()}
        strongest = max(acc.items(), key=lambda kv: kv[1]) if acc else (None, 0.0)
        confidence = 1 - (1 - FAMILY_CONFIDENCE) / max(1, len(hits))
        over: dict[str, dict] = {}
        noisy: dict[str, dict] = {}
        for b, a in sorted(acc.items(), key=lambda kv: -kv[1]):
            if a <= max_shortcut:
                break
            _, low, high, _ = mean_interval(hits[b], seed=0, confidence=confidence)
            row = {"accuracy": round(a, 4), "interval": [round(low, 4), round(high, 4)]}
            (over if low > max_shortcut and len(tasks) >= MIN_ITEMS else noisy)[b] = row
        result["held_out"][name] = {"items": len(tasks), "confidence": round(confidence, 5),
                                    "strongest": {"baseline": strongest[0], "accuracy": round(strongest[1], 4)},
                                    "over": over, "noisy": noisy}
    result["passed"] = not any(s["over"] for s in result["held_out"].values())
    return result


def refusal_paragraph(source: str, check: Mapping[str, Any], chance: float | None = None,
                      image_decoys: bool = False) -> str:
    """One paragraph for a failed check: which baseline, how high, why this graph allows it, what to try
    (`image_decoys`: the data was generated with decoys from the chains' image, which did not help)."""
    from kgreason.tasks.baselines import BASELINES

    if chance is None:
        chance = check.get("chance") or 1 / len(LETTERS)
    hint = get_family(check.get("family")).open_book_hint if check.get("mode") == "open" else ""
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
    still_funnelled = any(b in CHAIN_IMAGE_RULES for row in check["held_out"].values() for b in row["over"])
    if image_decoys and still_funnelled:
        because += (" (decoys drawn from the stated chains' image, which other starts reach too, were tried and "
                    "did not bring it under the limit: the chains reach too much of this graph)")
    return (f"{source}: refusing to write this data: a shortcut baseline answers the held-out items without "
            f"following the chain ({'; '.join(parts)}; the limit is {100 * check['limit']:.0f}% and each "
            f"interval, corrected for the number of baselines tried, lies above it; chance is "
            f"{_pct(chance)}), so a model trained and scored on it would show a rule, not reasoning. Why this "
            f"graph allows it: {because}. What to try: another graph, or this one with its entity types or more "
            f"relations; other hop lengths (`kgreason tasks generate --eval-hops 3-4 --hard-hops 3-4`, then "
            f"`kgreason tasks audit` on the result); {hint + '; ' if hint else ''}a higher --max-shortcut if you "
            f"accept the risk; or "
            f"--allow-shortcuts to write the files anyway (the manifest records it and a run's 'What went wrong' "
            f"paragraph names it). No task file was written.")


def over_summary(check: Mapping[str, Any]) -> str:
    """'eval: chain_from_other_entities 95.6%, ...' for a warning line or a report."""
    return "; ".join(f"{split}: " + ", ".join(f"{b} {_pct_ci(v)}" for b, v in row["over"].items())
                     for split, row in check["held_out"].items() if row["over"])


def _pct(share: float) -> str:
    return f"{100 * share:.0f}%" if share >= 0.01 else f"{100 * share:.2g}%"  # free form: 1 in 41,105 is 0.0024%


def _pct_ci(row: Mapping[str, Any]) -> str:
    low, high = row["interval"]
    return f"{100 * row['accuracy']:.1f}% [{100 * low:.1f}, {100 * high:.1f}]"


def guard_shortcuts(source: str, kg: Any, dataset: Any, max_shortcut: float | None, allow: bool) -> dict:
    """Check a generated dataset (kgreason.tasks.generate.GeneratedDataset) before it is written: raise
    InputError with the refusal paragraph, or record the check in its manifest (`shortcut_check`, with
    `allowed` true when --allow-shortcuts let a failing dataset through) and return it."""
    from kgreason.io import InputError

    held_out = [s["name"] for s in dataset.manifest["config"]["splits"] if s.get("held_out")]
    # the data stage may have scored this very dataset already (tasks/build.py): the same inputs give
    # the same check (seeded intervals), so it is reused when its limit is the one asked for
    check = dataset.manifest.get("shortcut_check")
    limit = shortcut_limit([t for tasks in dataset.splits.values() for t in tasks], max_shortcut)
    if not isinstance(check, dict) or check.get("limit") != limit or not set(check.get("held_out") or {}) <= set(held_out):
        check = check_shortcuts(kg, dataset.splits, held_out, max_shortcut)
    check["allowed"] = bool(allow and not check["passed"])
    if not check["passed"] and not allow:
        raise InputError(refusal_paragraph(source, check,
                                           image_decoys=bool(dataset.manifest["config"].get("image_decoys"))))
    dataset.manifest["shortcut_check"] = check
    if check["allowed"]:  # one warning for every caller (tasks generate, kgreason run, experiments)
        import sys

        print(f"WARNING: written with --allow-shortcuts: shortcut baselines above {100 * check['limit']:.0f}% "
              f"({over_summary(check)}); results on these items measure the shortcut as much as reasoning",
              file=sys.stderr)
    return check
