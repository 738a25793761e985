#!/usr/bin/env python3
"""Independent audit of free-form multi-hop KG questions for answer shortcuts.

Standard library only; does not import or read the `kgreason` package.

For every eval item, each "shortcut" rule scores every candidate entity
(candidates = all tails of edges whose relation is the LAST relation of the
item's chain). The rule's expected hit for the item is 1/(#tied at the best
score) if the answer is among the tied best, else 0. We report the mean
expected hit (%) with a 95% percentile-bootstrap interval over items.

Rules:
  random_walk_end            P(uniform random walk of hop_len steps over any
                             relation, from start, ends at candidate)
  reachable_any_relations    1 if reachable in exactly hop_len edges (any rel)
  first_relation_then_any    1 if reachable via chain[0] then hop_len-1 edges
                             of any relation
  chain_from_other_entities  #entities other than start whose exact chain
                             image contains the candidate
  train_answer_prior         #times candidate is answer_id in train_easy+hard
  most_common_answer_in_eval #eval items whose answer is the candidate
  max_in_degree              #incoming edges of the candidate (any relation)

Also checks well-posedness: chain image of the start == {answer_id}.

Usage:
  python3 check_free_form_shortcuts.py --kg KG.json --data DIR [--json]

Written by a helper session from a description of the rules only, to check
kgreason's audit and the free-form screen (kgreason/tasks/screen.py); the test
tests/test_families.py runs it on a small built-in dataset.
"""
# ruff: noqa: B023  (the rule lambdas are used in the same iteration that defines them)
import argparse
import json
import os
import random
from collections import Counter, defaultdict

RULES = [
    "random_walk_end",
    "reachable_any_relations",
    "first_relation_then_any",
    "chain_from_other_entities",
    "train_answer_prior",
    "most_common_answer_in_eval",
    "max_in_degree",
]

# Cap on intermediate entity-set size when evaluating a chain from another
# source entity (rule 4). If a set exceeds it, that source is dropped (counted
# in the report), rather than silently truncated.
CHAIN_SET_CAP = 20000


def load_jsonl(path):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                out.append(json.loads(line))
    return out


def load_kg(path):
    with open(path, encoding="utf-8") as f:
        d = json.load(f)
    ents = d.get("entities", [])
    ent_ids = [e["id"] if isinstance(e, dict) else e for e in ents]
    raw_edges = d.get("edges", [])
    edges = []
    for e in raw_edges:
        if isinstance(e, dict):
            h = e.get("src", e.get("head"))
            r = e.get("rel", e.get("relation"))
            t = e.get("dst", e.get("tail"))
        else:
            h, r, t = e
        edges.append((h, r, t))
    return d, ent_ids, edges


def chain_image(starts, chain, rel_out, cap=None):
    """Set of entities reached from `starts` by following `chain` exactly.
    Returns None if an intermediate set exceeds `cap`."""
    cur = set(starts)
    for r in chain:
        nxt = set()
        ro = rel_out.get(r)
        if ro is None:
            return set()
        for n in cur:
            nb = ro.get(n)
            if nb:
                nxt.update(nb)
        if cap is not None and len(nxt) > cap:
            return None
        cur = nxt
        if not cur:
            break
    return cur


def any_rel_reach(starts, steps, out_any):
    cur = set(starts)
    for _ in range(steps):
        nxt = set()
        for n in cur:
            nb = out_any.get(n)
            if nb:
                nxt.update(nb)
        cur = nxt
        if not cur:
            break
    return cur


def random_walk_dist(start, steps, out_edges_dst):
    """Distribution of the walk's end after exactly `steps` steps; mass that
    hits a node with no outgoing edge is dropped (walk stops, scores nothing)."""
    dist = {start: 1.0}
    for _ in range(steps):
        nd = defaultdict(float)
        for n, p in dist.items():
            dsts = out_edges_dst.get(n)
            if not dsts:
                continue
            w = p / len(dsts)
            for t in dsts:
                nd[t] += w
        dist = nd
        if not dist:
            break
    return dist


def expected_hit(cands, score_fn, answer):
    """cands: list of candidate ids; score_fn: id -> score."""
    best = None
    tied = []
    for c in cands:
        s = score_fn(c)
        if best is None or s > best:
            best = s
            tied = [c]
        elif s == best:
            tied.append(c)
    if not tied:
        return 0.0, 0, best
    hit = (1.0 / len(tied)) if answer in set(tied) else 0.0
    return hit, len(tied), best


def bootstrap_ci(values, n_boot=2000, seed=0, alpha=0.05):
    n = len(values)
    if n == 0:
        return (float("nan"), float("nan"))
    rng = random.Random(seed)
    means = []
    for _ in range(n_boot):
        s = 0.0
        for _ in range(n):
            s += values[rng.randrange(n)]
        means.append(s / n)
    means.sort()
    lo = means[int((alpha / 2) * n_boot)]
    hi = means[min(n_boot - 1, int((1 - alpha / 2) * n_boot) - 1)]
    return lo, hi


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kg", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--threshold", type=float, default=5.0,
                    help="pass threshold in percent (default 5)")
    ap.add_argument("--n-boot", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    kg, ent_ids, edges = load_kg(args.kg)
    ent_set = set(ent_ids)

    # ---- adjacency, built once ----
    out_edges_dst = defaultdict(list)        # node -> [dst per outgoing edge]
    out_any = defaultdict(set)               # node -> set of dsts
    rel_out = defaultdict(lambda: defaultdict(set))  # rel -> node -> dsts
    rel_tails = defaultdict(set)             # rel -> tails
    in_deg = Counter()
    for h, r, t in edges:
        out_edges_dst[h].append(t)
        out_any[h].add(t)
        rel_out[r][h].add(t)
        rel_tails[r].add(t)
        in_deg[t] += 1
    rel_out = {r: dict(m) for r, m in rel_out.items()}

    data_issues = Counter()
    kg_notes = {
        "entities": len(ent_ids),
        "distinct_entity_ids": len(ent_set),
        "edges": len(edges),
        "distinct_triples": len(set(edges)),
        "edges_with_unknown_endpoint": sum(1 for h, _, t in edges
                                           if h not in ent_set or t not in ent_set),
        "self_loops": sum(1 for h, _, t in edges if h == t),
    }

    ev = load_jsonl(os.path.join(args.data, "eval.jsonl"))
    tr = (load_jsonl(os.path.join(args.data, "train_easy.jsonl"))
          + load_jsonl(os.path.join(args.data, "train_hard.jsonl")))

    train_prior = Counter(x.get("answer_id") for x in tr)
    eval_prior = Counter(x.get("answer_id") for x in ev)

    # ---- sanity checks on data ----
    triple_set = set(edges)
    seen_q = Counter()
    for x in ev:
        ch = x.get("relation_chain") or []
        if x.get("hop_len") != len(ch):
            data_issues["hop_len_ne_chain_len"] += 1
        if x.get("start") not in ent_set:
            data_issues["start_not_entity"] += 1
        if x.get("answer_id") not in ent_set:
            data_issues["answer_not_entity"] += 1
        if x.get("answer_id") == x.get("start"):
            data_issues["answer_equals_start"] += 1
        if x.get("options") or x.get("option_ids"):
            data_issues["has_options"] += 1
        for r in ch:
            if r not in rel_out:
                data_issues["unknown_relation"] += 1
        ps = x.get("path_star") or {}
        pe = ps.get("edges") or []
        if pe:
            ok = (len(pe) == len(ch)
                  and all((e["src"], e["rel"], e["dst"]) in triple_set for e in pe)
                  and [e["rel"] for e in pe] == ch
                  and pe[0]["src"] == x.get("start")
                  and pe[-1]["dst"] == x.get("answer_id")
                  and all(pe[i]["dst"] == pe[i + 1]["src"] for i in range(len(pe) - 1)))
            if not ok:
                data_issues["path_star_inconsistent"] += 1
            ents_on_path = [pe[0]["src"]] + [e["dst"] for e in pe]
            if len(set(ents_on_path)) < len(ents_on_path):
                data_issues["path_star_revisits_entity"] += 1
        q = x.get("question") or ""
        alab = x.get("answer_label") or x.get("answer_id")
        if alab and alab in q:
            data_issues["answer_label_in_question"] += 1
        seen_q[(x.get("start"), tuple(ch))] += 1
    data_issues["duplicate_start_chain_in_eval"] = sum(v - 1 for v in seen_q.values() if v > 1)
    tr_keys = {(x.get("start"), tuple(x.get("relation_chain") or [])) for x in tr}
    tr_q = {x.get("question") for x in tr}
    data_issues["eval_start_chain_also_in_train"] = sum(
        1 for x in ev if (x.get("start"), tuple(x.get("relation_chain") or [])) in tr_keys)
    data_issues["eval_question_text_in_train"] = sum(1 for x in ev if x.get("question") in tr_q)
    data_issues["eval_answer_seen_as_train_answer"] = sum(
        1 for x in ev if train_prior.get(x.get("answer_id"), 0) > 0)
    tr_ents_on_paths = set()
    for x in tr:
        tr_ents_on_paths.add(x.get("start"))
        tr_ents_on_paths.add(x.get("answer_id"))
    data_issues["eval_start_is_train_start_or_answer"] = sum(
        1 for x in ev if x.get("start") in tr_ents_on_paths)

    # ---- rule 4 precompute: per distinct chain, count sources reaching c ----
    chain_counts = {}
    cap_dropped = Counter()
    max_set_seen = 0
    for ch in sorted({tuple(x.get("relation_chain") or []) for x in ev}):
        cnt = Counter()
        ro0 = rel_out.get(ch[0], {}) if ch else {}
        for s in ro0:  # only sources with an outgoing edge of chain[0]
            img = chain_image([s], ch, rel_out, cap=CHAIN_SET_CAP)
            if img is None:
                cap_dropped[ch] += 1
                continue
            if len(img) > max_set_seen:
                max_set_seen = len(img)
            for c in img:
                cnt[c] += 1
        chain_counts[ch] = cnt

    # ---- per-item evaluation ----
    per_rule_hits = {r: [] for r in RULES}
    per_rule_ties = {r: [] for r in RULES}
    illposed = []
    n_cands = []
    for x in ev:
        start = x["start"]
        ch = tuple(x.get("relation_chain") or [])
        L = int(x.get("hop_len", len(ch)))
        ans = x["answer_id"]
        img = chain_image([start], ch, rel_out)
        if img != {ans}:
            illposed.append({"id": x.get("id"), "image_size": len(img),
                             "answer_in_image": ans in img})
        cands = sorted(rel_tails.get(ch[-1], set())) if ch else []
        n_cands.append(len(cands))
        if ans not in set(cands):
            data_issues["answer_not_in_candidates"] += 1

        rw = random_walk_dist(start, L, out_edges_dst)
        reach = any_rel_reach([start], L, out_any)
        first = chain_image([start], ch[:1], rel_out)
        reach_first = any_rel_reach(first, L - 1, out_any)
        cc = chain_counts[ch]
        own = img  # start's own chain image, excluded from rule 4

        scorers = {
            "random_walk_end": lambda c: rw.get(c, 0.0),
            "reachable_any_relations": lambda c: 1 if c in reach else 0,
            "first_relation_then_any": lambda c: 1 if c in reach_first else 0,
            "chain_from_other_entities": lambda c: cc.get(c, 0) - (1 if c in own else 0),
            "train_answer_prior": lambda c: train_prior.get(c, 0),
            "most_common_answer_in_eval": lambda c: eval_prior.get(c, 0),
            "max_in_degree": lambda c: in_deg.get(c, 0),
        }
        for r in RULES:
            h, nt, _ = expected_hit(cands, scorers[r], ans)
            per_rule_hits[r].append(h)
            per_rule_ties[r].append(nt)

    results = []
    for r in RULES:
        v = per_rule_hits[r]
        n = len(v)
        mean = 100.0 * sum(v) / n if n else float("nan")
        lo, hi = bootstrap_ci(v, n_boot=args.n_boot, seed=args.seed)
        ties = sorted(per_rule_ties[r])
        results.append({
            "rule": r,
            "mean_pct": round(mean, 3),
            "ci95_pct": [round(100 * lo, 3), round(100 * hi, 3)],
            "items": n,
            "items_with_positive_hit": sum(1 for h in v if h > 0),
            "median_tied_at_best": ties[len(ties) // 2] if ties else None,
            "at_most_threshold": bool(mean <= args.threshold),
        })

    out = {
        "kg": args.kg,
        "data": args.data,
        "threshold_pct": args.threshold,
        "bootstrap": {"resamples": args.n_boot, "seed": args.seed, "method": "percentile"},
        "eval_items": len(ev),
        "train_items": len(tr),
        "eval_hop_lens": dict(sorted(Counter(x.get("hop_len") for x in ev).items())),
        "candidates_per_item": {"min": min(n_cands) if n_cands else None,
                                "max": max(n_cands) if n_cands else None},
        "results": results,
        "well_posedness": {"failures": len(illposed), "items": len(ev),
                           "failed": illposed[:20]},
        "chain_from_other_entities_cap": {
            "cap_on_intermediate_set": CHAIN_SET_CAP,
            "sources_dropped_by_cap": sum(cap_dropped.values()),
            "distinct_chains": len(chain_counts),
            "largest_final_image_seen": max_set_seen,
        },
        "eval_answer_max_repeat": max(eval_prior.values()) if eval_prior else 0,
        "data_checks": dict(sorted(data_issues.items())),
        "kg_checks": kg_notes,
    }

    if args.json:
        print(json.dumps(out, indent=2, sort_keys=False))
        return

    print(f"eval items: {len(ev)}  train items: {len(tr)}  hop_lens: {out['eval_hop_lens']}")
    print(f"candidates per item: {out['candidates_per_item']}")
    print()
    hdr = f"{'rule':28s} {'mean %':>8s}  {'95% CI (bootstrap)':>20s} {'items':>6s}  <= {args.threshold:g}%?"
    print(hdr)
    print("-" * len(hdr))
    for r in results:
        ci = f"[{r['ci95_pct'][0]:.2f}, {r['ci95_pct'][1]:.2f}]"
        print(f"{r['rule']:28s} {r['mean_pct']:8.2f}  {ci:>20s} {r['items']:6d}  "
              f"{'yes' if r['at_most_threshold'] else 'NO'}")
    print()
    wp = out["well_posedness"]
    print(f"well-posedness failures (chain image from start != {{answer_id}}): "
          f"{wp['failures']} / {wp['items']}")
    for f in wp["failed"]:
        print("   ", f)
    c = out["chain_from_other_entities_cap"]
    print(f"rule 4 cap: intermediate sets > {c['cap_on_intermediate_set']} -> source dropped; "
          f"dropped {c['sources_dropped_by_cap']} sources over {c['distinct_chains']} distinct chains; "
          f"largest final image {c['largest_final_image_seen']}")
    print(f"max times one answer repeats in eval: {out['eval_answer_max_repeat']}")
    print("data checks:", json.dumps(out["data_checks"]))
    print("kg checks:", json.dumps(out["kg_checks"]))


if __name__ == "__main__":
    main()
