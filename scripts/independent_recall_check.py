#!/usr/bin/env python3
"""Independent re-computation of the fact-recall figures in a kgreason ``recall.json``.

Checks, from ``facts.jsonl`` (the ground truth) and the model completions in ``answers.jsonl``:

1. all-edge recall: over every edge of facts.jsonl, the share whose tail label is listed by the
   completion for that edge's prompt;
2. precision: true tails listed / distinct items listed, summed over prompts (micro average);
3. exact: share of prompts whose listed set equals the true tail set;
4. gold-path edge recall: over the distinct (src, rel, dst) edges of every eval.jsonl
   ``path_star``, the share whose dst label is listed by the completion for (src, rel)'s prompt.

A completion is parsed as: first line, stripped, one trailing "." dropped, split on ";", each item
stripped, empty items dropped.

Why it is independent: it uses the standard library only, never imports ``kgreason``, and ignores
the ``tails`` / ``recalled`` fields that answers.jsonl carries; the truth is rebuilt from
facts.jsonl alone. It also reports data oddities (prompts missing on either side, a prompt shared
by several (head, relation) pairs, labels containing ";", items listed twice, ...).

Exit status: 0 when every compared figure matches within 1e-9 (or nothing is compared), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

TOL = 1e-9


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                rows.append(json.loads(line))
    return rows


def parse_items(completion: str) -> list[str]:
    """Items a completion lists, in order, duplicates kept (empty items dropped)."""
    lines = completion.splitlines()
    text = lines[0].strip() if lines else ""
    if text.endswith("."):
        text = text[:-1]
    return [item.strip() for item in text.split(";") if item.strip()]


def ratio(num: float, den: float) -> float:
    return num / den if den else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--facts", type=Path, required=True)
    ap.add_argument("--eval", type=Path, required=True)
    ap.add_argument("--answers", type=Path, required=True)
    ap.add_argument("--recall-json", type=Path, default=None)
    args = ap.parse_args(argv)

    facts = read_jsonl(args.facts)
    evals = read_jsonl(args.eval)
    answers = read_jsonl(args.answers)
    notes: list[str] = []

    # --- truth from facts.jsonl -------------------------------------------------------------
    label_of: dict[str, str] = {}
    label_clash: set[str] = set()
    prompt_pairs: dict[str, set[tuple[str, str]]] = defaultdict(set)
    pair_prompts: dict[tuple[str, str], set[str]] = defaultdict(set)
    truth: dict[str, set[str]] = defaultdict(set)  # prompt -> true tail labels
    edge_counter: Counter[tuple[str, str, str]] = Counter()
    edge_set: set[tuple[str, str, str]] = set()
    for f in facts:
        for ent, lab in ((f["head"], f["head_label"]), (f["tail"], f["tail_label"])):
            if label_of.setdefault(ent, lab) != lab:
                label_clash.add(ent)
        prompt_pairs[f["prompt"]].add((f["head"], f["relation"]))
        pair_prompts[(f["head"], f["relation"])].add(f["prompt"])
        truth[f["prompt"]].add(f["tail_label"])
        edge_counter[(f["head"], f["relation"], f["tail"])] += 1
        edge_set.add((f["head"], f["relation"], f["tail"]))
        expected_prompt = f"Complete the fact: {f['head_label']} {f['relation_phrase']}"
        if f["prompt"] != expected_prompt:
            notes.append(f"prompt not in the stated form: {f['prompt']!r}")
    if label_clash:
        notes.append(f"{len(label_clash)} entity ids with several labels: {sorted(label_clash)[:5]}")
    dup_edges = {e: n for e, n in edge_counter.items() if n > 1}
    if dup_edges:
        notes.append(f"{len(dup_edges)} duplicated edges in facts.jsonl: {list(dup_edges)[:3]}")
    shared = {p: s for p, s in prompt_pairs.items() if len(s) > 1}
    if shared:
        notes.append(f"{len(shared)} prompts shared by several (head, relation) pairs: {list(shared)[:3]}")
    multi = {k: v for k, v in pair_prompts.items() if len(v) > 1}
    if multi:
        notes.append(f"{len(multi)} (head, relation) pairs with several prompts: {list(multi)[:3]}")
    semi = sorted({lab for lab in label_of.values() if ";" in lab or lab.strip() != lab or lab.endswith(".")})
    if semi:
        notes.append(f"{len(semi)} labels containing ';', a trailing '.' or outer space: {semi[:5]}")
    same_label = Counter(label_of.values())
    dup_labels = [lab for lab, n in same_label.items() if n > 1]
    if dup_labels:
        notes.append(f"{len(dup_labels)} labels shared by several entity ids: {dup_labels[:5]}")

    # --- completions --------------------------------------------------------------------------
    listed: dict[str, list[str]] = {}
    for a in answers:
        p = a["prompt"]
        if p in listed:
            notes.append(f"prompt repeated in answers.jsonl: {p!r}")
            continue
        listed[p] = parse_items(a["completion"])
        if "\n" in a["completion"].strip():
            notes.append(f"multi-line completion (only line 1 scored): {p!r}")
        if "tails" in a and set(a["tails"]) != truth.get(p, set()):
            notes.append(f"answers.jsonl 'tails' differs from facts.jsonl truth for {p!r}")
    missing_answers = sorted(set(truth) - set(listed))
    extra_answers = sorted(set(listed) - set(truth))
    if missing_answers:
        notes.append(
            f"{len(missing_answers)} fact prompts with no answer (scored as empty): {missing_answers[:3]}"
        )
    if extra_answers:
        notes.append(f"{len(extra_answers)} answer prompts not in facts.jsonl (ignored): {extra_answers[:3]}")
    twice = {p: [i for i, n in Counter(items).items() if n > 1] for p, items in listed.items()}
    twice = {p: d for p, d in twice.items() if d}
    if twice:
        ex = list(twice.items())[:3]
        notes.append(f"{len(twice)} completions list an item more than once, e.g. {ex}")
    empty = [p for p in truth if not listed.get(p)]
    if empty:
        notes.append(f"{len(empty)} fact prompts with an empty listed set")
    unknown = Counter(i for p in truth for i in set(listed.get(p, [])) if i not in same_label)
    if unknown:
        notes.append(
            f"{sum(unknown.values())} listed items are not any entity label, e.g. {list(unknown)[:5]}"
        )
    max_items = max((len(set(listed.get(p, []))) for p in truth), default=0)

    # --- 1-3: all facts ---------------------------------------------------------------------
    hits = sum(1 for f in facts if f["tail_label"] in set(listed.get(f["prompt"], [])))
    true_listed = listed_total = exact = 0
    for p, gold in truth.items():
        got = set(listed.get(p, []))
        true_listed += len(got & gold)
        listed_total += len(got)
        exact += got == gold
    mine: dict[str, float] = {
        "all.edge_recall": ratio(hits, len(facts)),
        "all.precision": ratio(true_listed, listed_total),
        "all.exact": ratio(exact, len(truth)),
    }

    # --- 4: gold-path edges -----------------------------------------------------------------
    path_edges: set[tuple[str, str, str]] = set()
    for q in evals:
        for e in q["path_star"]["edges"]:
            path_edges.add((e["src"], e["rel"], e["dst"]))
    not_in_kg = [e for e in path_edges if e not in edge_set]
    if not_in_kg:
        notes.append(f"{len(not_in_kg)} gold-path edges absent from facts.jsonl: {not_in_kg[:3]}")
    path_hits = 0
    for src, rel, dst in path_edges:
        prompts = pair_prompts.get((src, rel), set())
        lab = label_of.get(dst)
        if lab is not None and any(lab in set(listed.get(p, [])) for p in prompts):
            path_hits += 1
    mine["eval_path_edges.edge_recall"] = ratio(path_hits, len(path_edges))

    print(
        f"facts: {len(facts)} edges, {len(truth)} prompts; answers: {len(answers)}; "
        f"eval: {len(evals)} questions, {len(path_edges)} distinct gold-path edges"
    )
    print(
        f"all: {hits}/{len(facts)} edges recalled; {true_listed}/{listed_total} listed items true; "
        f"{exact}/{len(truth)} exact; most distinct items in one completion: {max_items}"
    )
    print(f"gold-path edges: {path_hits}/{len(path_edges)} recalled")

    status = 0
    theirs: dict[str, Any] = {}
    if args.recall_json is not None:
        theirs = json.loads(args.recall_json.read_text(encoding="utf-8"))
    print(f"{'metric':32s} {'independent':>14s} {'recall.json':>14s}  verdict")
    for key, val in mine.items():
        if not theirs:
            print(f"{key:32s} {val:14.10f}")
            continue
        node: Any = theirs
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, (int, float)):
            print(f"{key:32s} {val:14.10f} {'missing':>14s}  MISSING")
            status = 1
            continue
        ok = abs(node - val) <= TOL
        status |= 0 if ok else 1
        print(f"{key:32s} {val:14.10f} {node:14.10f}  {'ok' if ok else 'DIFFERS'}")

    print("notes:" if notes else "notes: none")
    for n in notes:
        print(f"  - {n}")
    return status


if __name__ == "__main__":
    sys.exit(main())
