#!/usr/bin/env python3
"""Independent shortcut audit for kgreason multiple-choice multi-hop questions.

Reads only files on disk (kg.json and the JSONL splits written by `kgreason tasks generate`) and
never imports `kgreason`, so it shares none of the generator's code or assumptions.

For one split it scores many "shortcut" rules that ignore the stated relation chain (or its
order), each as an *expected* accuracy: an item scores 1/k when the gold option is one of k
options tied for the best score, 0 otherwise (no random tie-breaking, fully deterministic). It
also scores two oracles that follow the stated chain (in the KG, and in open mode in the prompt's
context facts); both must be 100%.

Exit status: 0 when every rule is <= --max and every oracle is 100%; 1 otherwise; 2 on bad input.

Rule families (every scalar feature is scored twice: `:max` picks the highest score, `:min` the
lowest; binary features therefore cover "has property" and "lacks property"):
  kg.*     structure of the KG around the start and the options (distances, walks, degrees,
           tails of the last relation, types, the chain followed from other entities, ...)
  train.*  statistics of the training files (train_easy + train_hard, minus the scored split)
  text.*   labels, letters, word overlap with the question
  ctx.*    open mode: the facts in the prompt, parsed back into (head, relation, tail) triples
  learned  a conditional-logit model over all the features above, fit on the training files
Rules invented for this audit (beyond the brief's list) are marked "[new]" in RULE_DOCS.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections import Counter, defaultdict, deque
from collections.abc import Iterable
from pathlib import Path

import numpy as np

SIMPLE_PATH_BUDGET = 200_000  # DFS expansions per item before the simple-path rule gives up (ties)

RULE_DOCS = {
    "kg.undirected_distance": "BFS distance from the start in the undirected KG (min = nearest)",
    "kg.directed_distance": "[new] shortest directed path length from the start",
    "kg.reach_walk_k": "reachable from the start by a directed walk of exactly hop_len edges, any relations",
    "kg.reach_simple_path_k": "reachable by a directed simple path of exactly hop_len edges, any relations",
    "kg.reach_walk_le_k": "reachable by a directed walk of 1..hop_len edges",
    "kg.reach_undirected_walk_k": "reachable by an undirected walk of exactly hop_len edges",
    "kg.random_walk_prob": "[new] probability that a uniform random walk of hop_len steps from the start ends there",
    "kg.walk_count_k": "[new] number of directed walks of exactly hop_len edges from the start",
    "kg.in_degree": "in-degree in the KG",
    "kg.out_degree": "out-degree in the KG",
    "kg.degree": "in + out degree in the KG",
    "kg.is_tail_of_last_rel": "option is ever the tail of the last stated relation",
    "kg.in_edges_last_rel": "number of in-edges with the last stated relation",
    "kg.type_matches_last_rel": "option's type is the most common type of the last relation's tails",
    "kg.type_prob_last_rel": "share of the last relation's tails that have the option's type",
    "kg.same_type_as_start": "[new] option has the start's type",
    "kg.type_rarity_in_options": "[new] odd type out: how many other options share the option's type",
    "kg.chain_from_others": "number of entities other than the start from which the stated chain reaches it",
    "kg.suffix2_from_any": "[new] entities from which the last two relations reach it (reads only the chain's tail)",
    "kg.first_hop_then_any": "[new] reachable by the first stated relation, then any hop_len-1 relations",
    "kg.reversed_chain": "[new] reached by following the chain in reverse order from the start",
    "kg.bag_chain": "[new] reached by a walk whose relations are a permutation of the chain (order ignored)",
    "kg.adjacent_options": "[new] how many other options are KG neighbours (distractors drawn near the path)",
    "kg.in_edge_from_option": "[new] has an in-edge from another option",
    "train.gold_count": "times it is the gold answer in the training files (train prior)",
    "train.answer_rate": "[new] (gold + 1) / (appearances as an option + 4) in training",
    "train.option_count": "[new] appearances as an option in training",
    "train.path_count": "[new] appearances on training gold paths (traces a model is trained on)",
    "train.gold_with_same_start": "[new] gold for a training item with the same start (memorised pair)",
    "train.gold_with_last_rel": "[new] gold for training items ending with the same relation",
    "text.word_overlap_question": "label words shared with the question",
    "text.word_overlap_start": "[new] label words shared with the start's label",
    "text.trigram_sim_start": "[new] character-trigram Jaccard similarity of label and start label",
    "text.label_length": "label length in characters",
    "text.alphabetical": "label sort order (max = alphabetically last)",
    "text.letter_prior": "how often the option's letter is correct in training",
    "ctx.mentions": "number of context facts mentioning it",
    "ctx.first_mention": "index of the first fact mentioning it (min = first mentioned)",
    "ctx.last_mention": "index of the last fact mentioning it",
    "ctx.in_degree": "context facts with it as tail",
    "ctx.out_degree": "context facts with it as head",
    "ctx.directed_depth": "directed BFS depth from the start over context facts (-1 unreachable)",
    "ctx.undirected_depth": "undirected BFS depth from the start over context facts (-1 unreachable)",
    "ctx.reachable": "directed-reachable from the start in the context",
    "ctx.same_component": "in the start's weakly connected component of the context",
    "ctx.reach_walk_k": "reachable by a context walk of exactly hop_len facts, any relations",
    "ctx.random_walk_prob": "[new] random walk of hop_len steps over context facts",
    "ctx.incoming_last_rel": "context facts (x, last relation, option)",
    "ctx.bag_overlap": "max over context paths start->option of relations shared with the chain as a bag",
    "ctx.bag_exact": "a context path start->option uses exactly the chain's relations in some order",
    "ctx.busiest_first_branch": "context facts below the start's child on the option's branch",
    "ctx.busiest_divergence": "context facts below the point where the option's branch leaves the others'",
    "ctx.chain_from_others": "context heads other than the start from which the chain reaches it",
    "ctx.option_neighbours": "[new] other options adjacent to it in the context",
    "ctx.tail_only": "[new] a tail in the context but never a head (a leaf)",
    "ctx.last_fact_tail": "[new] index of the last fact that has it as tail",
    "learned.logit": "[new] conditional logit over all features above, fit on the training files",
    "learned.logit_chainblind": "[new] the same over the features that never read the chain (no '*')",
}

# Rules that read part of the stated chain (its last relation(s), first relation, its relations as
# a bag or reversed, or the question text that spells it out): they ignore the chain's order or most
# of it rather than all of it. Marked "*" in the table; `learned.logit_chainblind` leaves them out.
READS_CHAIN = {
    "kg.is_tail_of_last_rel", "kg.in_edges_last_rel", "kg.type_matches_last_rel", "kg.type_prob_last_rel",
    "kg.chain_from_others", "kg.suffix2_from_any", "kg.first_hop_then_any", "kg.reversed_chain",
    "kg.bag_chain", "train.gold_with_last_rel", "text.word_overlap_question", "ctx.incoming_last_rel",
    "ctx.bag_overlap", "ctx.bag_exact", "ctx.chain_from_others", "learned.logit",
}  # fmt: skip

# --------------------------------------------------------------------------------------------
# Loading


def read_jsonl(path: Path) -> list[dict]:
    items = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise SystemExit(f"error: {path}:{n}: not JSON ({exc})") from exc
    return items


def words_of(text: str) -> list[str]:
    """Lower-cased words of a label or sentence; CamelCase and snake_case are split."""
    return [w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", text)]


class Graph:
    """A multigraph from kg.json: entities (id, label, type, aliases), relations, edges."""

    def __init__(self, data: dict):
        if not isinstance(data, dict) or "edges" not in data:
            raise SystemExit("error: the KG file must be a JSON object with 'entities' and 'edges'")
        self.label: dict[str, str] = {}
        self.type: dict[str, str | None] = {}
        self.names: dict[str, str] = {}  # any surface form (label, id, alias) -> id
        for ent in data.get("entities", []):
            eid = str(ent["id"])
            self.label[eid] = str(ent.get("label", eid))
            self.type[eid] = ent.get("type")
            for name in [self.label[eid], eid, *(ent.get("aliases") or [])]:
                self.names.setdefault(str(name), eid)
        self.phrase: dict[str, tuple[str, bool]] = {}  # surface phrase -> (relation, forward?)
        for rel in data.get("relations", []) or []:
            rid = str(rel["id"])
            for key in ("phrase", "label"):
                if rel.get(key):
                    self.phrase.setdefault(str(rel[key]), (rid, True))
            if rel.get("inverse_phrase") and rel["inverse_phrase"] not in self.phrase:
                self.phrase[str(rel["inverse_phrase"])] = (rid, False)
        self.out: dict[str, list[tuple[str, str]]] = defaultdict(list)
        self.inn: dict[str, list[tuple[str, str]]] = defaultdict(list)
        self.und: dict[str, set[str]] = defaultdict(set)
        self.tail_types: dict[str, Counter] = defaultdict(Counter)
        for e in data["edges"]:
            s, r, d = str(e["src"]), str(e["rel"]), str(e["dst"])
            for x in (s, d):
                if x not in self.label:
                    self.label[x] = x
                    self.type[x] = None
                    self.names.setdefault(x, x)
            self.phrase.setdefault(r.replace("_", " "), (r, True))
            self.out[s].append((r, d))
            self.inn[d].append((r, s))
            self.und[s].add(d)
            self.und[d].add(s)
            self.tail_types[r][self.type[d]] += 1
        self.edge_set = {(s, r, d) for s in self.out for r, d in self.out[s]}
        self.has_types = any(t is not None for t in self.type.values())


def parse_fact(text: str, g: Graph) -> tuple[str, str, str] | None:
    """'Head phrase Tail.' -> (head id, relation, tail id), matching known names and phrases."""
    words = text.strip().rstrip(".").split()
    n = len(words)
    for i in range(1, n):
        head = " ".join(words[:i])
        if head not in g.names:
            continue
        for j in range(n - 1, i, -1):
            tail = " ".join(words[j:])
            if tail not in g.names:
                continue
            rel = g.phrase.get(" ".join(words[i:j]))
            if rel is None:
                continue
            h, t = g.names[head], g.names[tail]
            return (h, rel[0], t) if rel[1] else (t, rel[0], h)
    return None


# --------------------------------------------------------------------------------------------
# Graph helpers (work on any adjacency: dict node -> list[(rel, dst)])


def follow(adj, sources: Iterable[str], chain: list[str]) -> set[str]:
    cur = set(sources)
    for rel in chain:
        cur = {d for s in cur for r, d in adj.get(s, ()) if r == rel}
    return cur


def bfs(neigh, start: str) -> dict[str, int]:
    dist = {start: 0}
    q = deque([start])
    while q:
        u = q.popleft()
        for v in neigh(u):
            if v not in dist:
                dist[v] = dist[u] + 1
                q.append(v)
    return dist


def walk_sets(neigh, start: str, k: int) -> list[set[str]]:
    """sets[i] = nodes at the end of some walk of exactly i steps."""
    sets = [{start}]
    for _ in range(k):
        sets.append({v for u in sets[-1] for v in neigh(u)})
    return sets


def walk_weights(adj, start: str, k: int, uniform: bool) -> dict[str, float]:
    """uniform: random-walk end probability; else number of walks of exactly k edges."""
    cur = {start: 1.0}
    for _ in range(k):
        nxt: dict[str, float] = defaultdict(float)
        for u, p in cur.items():
            outs = adj.get(u, ())
            if not outs:
                continue
            share = p / len(outs) if uniform else p
            for _r, v in outs:
                nxt[v] += share
        cur = nxt
    return cur


def simple_path_ends(adj, start: str, k: int) -> set[str] | None:
    ends: set[str] = set()
    budget = [SIMPLE_PATH_BUDGET]
    on_path = {start}

    def dfs(u: str, depth: int) -> bool:
        budget[0] -= 1
        if budget[0] < 0:
            return False
        if depth == k:
            ends.add(u)
            return True
        for _r, v in adj.get(u, ()):
            if v not in on_path:
                on_path.add(v)
                ok = dfs(v, depth + 1)
                on_path.discard(v)
                if not ok:
                    return False
        return True

    return ends if dfs(start, 0) else None


def bag_reach(adj, start: str, chain: list[str]) -> set[str]:
    """Ends of walks from start whose relation sequence is any permutation of chain."""
    ends: set[str] = set()
    seen: set[tuple] = set()
    stack = [(start, tuple(sorted(Counter(chain).items())))]
    while stack:
        u, rem = stack.pop()
        if (u, rem) in seen:
            continue
        seen.add((u, rem))
        if not rem:
            ends.add(u)
            continue
        left = dict(rem)
        for r, v in adj.get(u, ()):
            if left.get(r, 0) > 0:
                nl = dict(left)
                nl[r] -= 1
                stack.append((v, tuple(sorted((a, b) for a, b in nl.items() if b))))
    return ends


def backward_count(inn, target: str, chain: list[str], exclude: str) -> int:
    """How many entities (other than `exclude`) reach `target` by following chain."""
    cur = {target}
    for rel in reversed(chain):
        cur = {s for d in cur for r, s in inn.get(d, ()) if r == rel}
    cur.discard(exclude)
    return len(cur)


# --------------------------------------------------------------------------------------------
# Training statistics


class TrainStats:
    def __init__(self, items: list[dict]):
        self.gold = Counter()
        self.opt = Counter()
        self.path = Counter()
        self.start_gold = Counter()
        self.last_gold = Counter()
        self.letter = Counter()
        for it in items:
            self._add(it, +1)

    def _add(self, it: dict, sign: int) -> None:
        gold = it["answer_id"]
        self.gold[gold] += sign
        for oid in it["option_ids"].values():
            self.opt[oid] += sign
        for e in set((it.get("path_star") or {}).get("entities", [])[1:]):
            self.path[e] += sign
        self.start_gold[(it["start"], gold)] += sign
        self.last_gold[(it["relation_chain"][-1], gold)] += sign
        self.letter[it["answer_star"]] += sign

    def without(self, it: dict) -> None:
        """Leave one item out (for fitting on training items); undo with restore()."""
        self._add(it, -1)

    def restore(self, it: dict) -> None:
        self._add(it, +1)


# --------------------------------------------------------------------------------------------
# Features: dict name -> list of per-option scores (None = rule undefined for this item)


def prep_item(it: dict, g: Graph) -> dict:
    letters = sorted(it["options"])
    ids = it.get("option_ids") or {}
    oids = []
    for L in letters:
        oid = ids.get(L) or g.names.get(it["options"][L])
        if oid is None:
            raise SystemExit(
                f"error: item {it.get('id')}: option {L} ({it['options'][L]!r}) is not in the KG"
            )
        oids.append(str(oid))
    if "answer_id" not in it:
        it["answer_id"] = oids[letters.index(it["answer_star"])]
    it["_letters"], it["_oids"] = letters, oids
    it["_gold"] = letters.index(it["answer_star"])
    it["hop_len"] = int(it.get("hop_len") or len(it["relation_chain"]))
    return it


def kg_features(it: dict, g: Graph) -> dict[str, list]:
    s, chain, k, oids = it["start"], list(it["relation_chain"]), it["hop_len"], it["_oids"]
    last = chain[-1]
    f: dict[str, list] = {}
    inf = float("inf")
    und = bfs(lambda u: g.und.get(u, ()), s)
    f["kg.undirected_distance"] = [und.get(o, inf) for o in oids]
    dird = bfs(lambda u: (v for _r, v in g.out.get(u, ())), s)
    f["kg.directed_distance"] = [dird.get(o, inf) for o in oids]
    ws = walk_sets(lambda u: (v for _r, v in g.out.get(u, ())), s, k)
    f["kg.reach_walk_k"] = [o in ws[k] for o in oids]
    within = set().union(*ws[1:])
    f["kg.reach_walk_le_k"] = [o in within for o in oids]
    sp = simple_path_ends(g.out, s, k)
    f["kg.reach_simple_path_k"] = [None] * 4 if sp is None else [o in sp for o in oids]
    uw = walk_sets(lambda u: g.und.get(u, ()), s, k)
    f["kg.reach_undirected_walk_k"] = [o in uw[k] for o in oids]
    rw = walk_weights(g.out, s, k, uniform=True)
    f["kg.random_walk_prob"] = [rw.get(o, 0.0) for o in oids]
    wc = walk_weights(g.out, s, k, uniform=False)
    f["kg.walk_count_k"] = [wc.get(o, 0.0) for o in oids]
    f["kg.in_degree"] = [len(g.inn.get(o, ())) for o in oids]
    f["kg.out_degree"] = [len(g.out.get(o, ())) for o in oids]
    f["kg.degree"] = [a + b for a, b in zip(f["kg.in_degree"], f["kg.out_degree"], strict=True)]
    last_in = [sum(1 for r, _ in g.inn.get(o, ()) if r == last) for o in oids]
    f["kg.is_tail_of_last_rel"] = [c > 0 for c in last_in]
    f["kg.in_edges_last_rel"] = last_in
    if g.has_types:
        tt = g.tail_types.get(last, Counter())
        total = sum(tt.values()) or 1
        top = tt.most_common(1)[0][0] if tt else None
        types = [g.type.get(o) for o in oids]
        f["kg.type_matches_last_rel"] = [t == top for t in types]
        f["kg.type_prob_last_rel"] = [tt.get(t, 0) / total for t in types]
        f["kg.same_type_as_start"] = [t == g.type.get(s) for t in types]
        f["kg.type_rarity_in_options"] = [types.count(t) - 1 for t in types]
    f["kg.chain_from_others"] = [backward_count(g.inn, o, chain, s) for o in oids]
    f["kg.suffix2_from_any"] = [backward_count(g.inn, o, chain[-2:], "") for o in oids]
    first = follow(g.out, [s], chain[:1])
    rest = set(first)
    for _ in range(k - 1):
        rest = {v for u in rest for _r, v in g.out.get(u, ())}
    f["kg.first_hop_then_any"] = [o in rest for o in oids]
    rev = follow(g.out, [s], chain[::-1])
    f["kg.reversed_chain"] = [o in rev for o in oids]
    bag = bag_reach(g.out, s, chain)
    f["kg.bag_chain"] = [o in bag for o in oids]
    f["kg.adjacent_options"] = [sum(1 for p in oids if p != o and p in g.und.get(o, ())) for o in oids]
    f["kg.in_edge_from_option"] = [
        any(src in oids and src != o for _r, src in g.inn.get(o, ())) for o in oids
    ]
    return f


def train_features(it: dict, ts: TrainStats) -> dict[str, list]:
    oids, s, last = it["_oids"], it["start"], it["relation_chain"][-1]
    return {
        "train.gold_count": [ts.gold[o] for o in oids],
        "train.answer_rate": [(ts.gold[o] + 1) / (ts.opt[o] + 4) for o in oids],
        "train.option_count": [ts.opt[o] for o in oids],
        "train.path_count": [ts.path[o] for o in oids],
        "train.gold_with_same_start": [ts.start_gold[(s, o)] for o in oids],
        "train.gold_with_last_rel": [ts.last_gold[(last, o)] for o in oids],
        "text.letter_prior": [ts.letter[L] for L in it["_letters"]],
    }


def trigrams(text: str) -> set[str]:
    t = f"  {text.lower()} "
    return {t[i : i + 3] for i in range(len(t) - 2)}


def text_features(it: dict, g: Graph) -> dict[str, list]:
    labels = [it["options"][L] for L in it["_letters"]]
    qwords = set(words_of(it.get("question", "")))
    start_label = g.label.get(it["start"], it["start"])
    swords = set(words_of(start_label))
    strig = trigrams(start_label)
    order = {lab: i for i, lab in enumerate(sorted(labels, key=str.lower))}
    return {
        "text.word_overlap_question": [len(set(words_of(lab)) & qwords) for lab in labels],
        "text.word_overlap_start": [len(set(words_of(lab)) & swords) for lab in labels],
        "text.trigram_sim_start": [len(trigrams(lab) & strig) / len(trigrams(lab) | strig) for lab in labels],
        "text.label_length": [len(lab) for lab in labels],
        "text.alphabetical": [order[lab] for lab in labels],
    }


def context_features(it: dict, g: Graph, stats: Counter) -> dict[str, list]:
    facts = it.get("context_facts") or []
    s, chain, k, oids = it["start"], list(it["relation_chain"]), it["hop_len"], it["_oids"]
    triples = []
    for i, text in enumerate(facts):
        t = parse_fact(text, g)
        stats["facts"] += 1
        if t is None:
            stats["unparsed"] += 1
            continue
        triples.append((i, *t))
    out: dict[str, list[tuple[str, str]]] = defaultdict(list)
    inn: dict[str, list[tuple[str, str]]] = defaultdict(list)
    und: dict[str, set[str]] = defaultdict(set)
    mention_idx: dict[str, list[int]] = defaultdict(list)
    tail_idx: dict[str, list[int]] = defaultdict(list)
    for i, h, r, t in triples:
        out[h].append((r, t))
        inn[t].append((r, h))
        und[h].add(t)
        und[t].add(h)
        mention_idx[h].append(i)
        if t != h:
            mention_idx[t].append(i)
        tail_idx[t].append(i)
    f: dict[str, list] = {}
    n = len(facts)
    f["ctx.mentions"] = [len(mention_idx[o]) for o in oids]
    f["ctx.first_mention"] = [min(mention_idx[o], default=n) for o in oids]
    f["ctx.last_mention"] = [max(mention_idx[o], default=-1) for o in oids]
    f["ctx.last_fact_tail"] = [max(tail_idx[o], default=-1) for o in oids]
    f["ctx.in_degree"] = [len(inn[o]) for o in oids]
    f["ctx.out_degree"] = [len(out[o]) for o in oids]
    f["ctx.tail_only"] = [bool(inn[o]) and not out[o] for o in oids]
    dd = bfs(lambda u: (v for _r, v in out.get(u, ())), s)
    ud = bfs(lambda u: und.get(u, ()), s)
    f["ctx.directed_depth"] = [dd.get(o, -1) for o in oids]
    f["ctx.undirected_depth"] = [ud.get(o, -1) for o in oids]
    f["ctx.reachable"] = [o in dd and o != s for o in oids]
    f["ctx.same_component"] = [o in ud for o in oids]
    ws = walk_sets(lambda u: (v for _r, v in out.get(u, ())), s, k)
    f["ctx.reach_walk_k"] = [o in ws[k] for o in oids]
    rw = walk_weights(out, s, k, uniform=True)
    f["ctx.random_walk_prob"] = [rw.get(o, 0.0) for o in oids]
    last = chain[-1]
    f["ctx.incoming_last_rel"] = [sum(1 for r, _ in inn[o] if r == last) for o in oids]
    # bag-of-relations overlap over directed simple context paths (length <= hop_len + 2)
    cbag = Counter(chain)
    best = {o: -1 for o in oids}
    exact = {o: False for o in oids}
    limit = k + 2

    def dfs(u: str, rels: list[str], seen: set[str]) -> None:
        if u in best:
            ov = sum((Counter(rels) & cbag).values())
            best[u] = max(best[u], ov)
            if Counter(rels) == cbag:
                exact[u] = True
        if len(rels) >= limit:
            return
        for r, v in out.get(u, ()):
            if v not in seen:
                seen.add(v)
                rels.append(r)
                dfs(v, rels, seen)
                rels.pop()
                seen.discard(v)

    dfs(s, [], {s})
    f["ctx.bag_overlap"] = [best[o] for o in oids]
    f["ctx.bag_exact"] = [exact[o] for o in oids]
    # branches of the undirected BFS tree from the start
    parent: dict[str, str | None] = {s: None}
    q = deque([s])
    while q:
        u = q.popleft()
        for v in sorted(und.get(u, ())):
            if v not in parent:
                parent[v] = u
                q.append(v)
    children: dict[str, list[str]] = defaultdict(list)
    for v, p in parent.items():
        if p is not None:
            children[p].append(v)

    def subtree(root: str) -> set[str]:
        nodes, st = set(), [root]
        while st:
            x = st.pop()
            nodes.add(x)
            st.extend(children[x])
        return nodes

    def facts_below(root: str) -> int:
        nodes = subtree(root)
        return sum(1 for _i, h, _r, t in triples if h in nodes or t in nodes)

    def tree_path(o: str) -> list[str]:
        path = []
        while o is not None:
            path.append(o)
            o = parent[o]
        return path[::-1]  # start ... option

    paths = {o: tree_path(o) for o in oids if o in parent}
    first_branch, divergence = [], []
    for o in oids:
        if o not in paths or o == s:
            first_branch.append(-1)
            divergence.append(-1)
            continue
        p = paths[o]
        first_branch.append(facts_below(p[1]))
        others = set().union(*[set(paths[x]) for x in paths if x != o]) if len(paths) > 1 else set()
        div = next((x for x in p if x not in others), p[-1])
        divergence.append(facts_below(div))
    f["ctx.busiest_first_branch"] = first_branch
    f["ctx.busiest_divergence"] = divergence
    heads = {h for _i, h, _r, _t in triples} - {s}
    f["ctx.chain_from_others"] = [len({x for x in heads if o in follow(out, [x], chain)}) for o in oids]
    f["ctx.option_neighbours"] = [sum(1 for p in oids if p != o and p in und.get(o, ())) for o in oids]
    it["_ctx_out"] = out
    return f


def all_features(it: dict, g: Graph, ts: TrainStats | None, ctx_stats: Counter) -> dict[str, list]:
    f = kg_features(it, g)
    f.update(text_features(it, g))
    if ts is not None:
        f.update(train_features(it, ts))
    if it.get("context_facts"):
        f.update(context_features(it, g, ctx_stats))
    return f


# --------------------------------------------------------------------------------------------
# Scoring


def num(x) -> float:
    if x is None:
        return 0.0
    return float(x)


def expected_hit(scores: list, gold: int, highest: bool) -> float:
    """1/k when gold is among the k options tied for the best score; a rule with all scores None
    (undefined) ties every option."""
    if all(x is None for x in scores):
        return 1.0 / len(scores)
    vals = [num(x) if highest else -num(x) for x in scores]
    top = max(vals)
    tied = [i for i, v in enumerate(vals) if v == top]
    return 1.0 / len(tied) if gold in tied else 0.0


def wilson(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, centre - half), min(1.0, centre + half))


def oracle_hit(adj, it: dict) -> tuple[float, int]:
    """Expected accuracy of following the stated chain from the start; number of options reached."""
    reached = follow(adj, [it["start"]], list(it["relation_chain"]))
    hits = [i for i, o in enumerate(it["_oids"]) if o in reached]
    return (1.0 / len(hits) if it["_gold"] in hits else 0.0), len(hits)


# --------------------------------------------------------------------------------------------
# Learned combination (conditional logit, numpy)


def feature_matrix(feats: list[dict[str, list]], names: list[str]) -> np.ndarray:
    """items x 4 options x (3 * features): tied-best vote, tied-worst vote, within-item z-score."""
    n_opt = 4
    X = np.zeros((len(feats), n_opt, 3 * len(names)))
    for a, f in enumerate(feats):
        for b, name in enumerate(names):
            sc = f.get(name)
            if sc is None or len(sc) != n_opt or all(x is None for x in sc):
                continue
            v = np.array([num(x) for x in sc], dtype=float)
            v = np.where(np.isinf(v), np.nan, v)
            if np.all(np.isnan(v)):
                continue
            fill = np.nanmax(v) + 1
            v = np.where(np.isnan(v), fill, v)
            mx, mn = v.max(), v.min()
            X[a, :, 3 * b] = (v == mx) / max(1, (v == mx).sum())
            X[a, :, 3 * b + 1] = (v == mn) / max(1, (v == mn).sum())
            sd = v.std()
            X[a, :, 3 * b + 2] = (v - v.mean()) / sd if sd > 0 else 0.0
    return X


def fit_logit(X: np.ndarray, y: np.ndarray, l2: float = 1e-2, steps: int = 400) -> np.ndarray:
    from scipy.optimize import minimize

    d = X.shape[2]

    def loss(w):
        z = X @ w
        z = z - z.max(axis=1, keepdims=True)
        lp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        p = np.exp(lp)
        nll = -lp[np.arange(len(y)), y].mean() + l2 * (w @ w)
        onehot = np.zeros_like(p)
        onehot[np.arange(len(y)), y] = 1
        grad = -np.einsum("io,iod->d", onehot - p, X) / len(y) + 2 * l2 * w
        return nll, grad

    res = minimize(loss, np.zeros(d), jac=True, method="L-BFGS-B", options={"maxiter": steps})
    return res.x


# --------------------------------------------------------------------------------------------
# Main


def run(kg_path: Path, data: Path, split: str, max_acc: float) -> dict:
    g = Graph(json.loads(kg_path.read_text(encoding="utf-8")))
    files = {p.stem: p for p in data.glob("*.jsonl") if p.stem != "facts"}
    if split not in files:
        raise SystemExit(f"error: no {split}.jsonl in {data} (found {sorted(files)})")
    items = [prep_item(it, g) for it in read_jsonl(files[split])]
    if not items:
        raise SystemExit(f"error: {files[split]} is empty")
    train_names = [n for n in ("train_easy", "train_hard") if n in files and n != split]
    train = [prep_item(it, g) for n in train_names for it in read_jsonl(files[n])]
    ts = TrainStats(train) if train else None
    ctx_stats: Counter = Counter()
    feats = [all_features(it, g, ts, ctx_stats) for it in items]
    names = sorted({k for f in feats for k in f})

    hops = sorted({it["hop_len"] for it in items})
    n = len(items)
    n_opts = Counter(len(it["_oids"]) for it in items)
    chance = sum(1.0 / len(it["_oids"]) for it in items) / n

    def summarise(hits: list[float]) -> dict:
        acc = sum(hits) / len(hits)
        lo, hi = wilson(acc, len(hits))
        by_hop = {}
        for h in hops:
            hh = [x for x, it in zip(hits, items, strict=True) if it["hop_len"] == h]
            by_hop[str(h)] = sum(hh) / len(hh)
        return {"acc": acc, "lo": lo, "hi": hi, "by_hop": by_hop}

    rules: dict[str, dict] = {}
    for name in names:
        for highest in (True, False):
            hits = [
                expected_hit(f[name], it["_gold"], highest) if name in f else 1.0 / len(it["_oids"])
                for f, it in zip(feats, items, strict=True)
            ]
            rules[f"{name}:{'max' if highest else 'min'}"] = summarise(hits)

    # learned combination, fit on the training items (leave-one-out train statistics)
    if train and all(len(it["_oids"]) == 4 for it in items + train):
        same_hops = [it for it in train if it["hop_len"] in set(hops)]
        fit_on = same_hops if len(same_hops) >= 200 else train
        tr_feats = []
        for it in fit_on:
            ts.without(it)
            tr_feats.append(all_features(it, g, ts, Counter()))
            ts.restore(it)
        y = np.array([it["_gold"] for it in fit_on])
        for rule, cols in (
            ("learned.logit", names),
            ("learned.logit_chainblind", [x for x in names if x not in READS_CHAIN]),
        ):
            w = fit_logit(feature_matrix(tr_feats, cols), y)
            scores = feature_matrix(feats, cols) @ w
            rules[f"{rule}:max"] = summarise(
                [
                    expected_hit(list(np.round(sc, 9)), it["_gold"], True)
                    for sc, it in zip(scores, items, strict=True)
                ]
            )
            rules[f"{rule}:max"]["fit_on"] = len(fit_on)

    kg_or = [oracle_hit(g.out, it) for it in items]
    bad_paths = 0
    for it in items:
        ps = it.get("path_star") or {}
        edges = ps.get("edges") or []
        if edges and (
            [e["rel"] for e in edges] != list(it["relation_chain"])
            or any((e["src"], e["rel"], e["dst"]) not in g.edge_set for e in edges)
            or edges[0]["src"] != it["start"]
            or edges[-1]["dst"] != it["answer_id"]
        ):
            bad_paths += 1
    oracles = {
        "kg": summarise([h for h, _ in kg_or])
        | {
            "ambiguous": sum(1 for _, c in kg_or if c > 1),
            "gold_unreached": sum(1 for h, _ in kg_or if h == 0),
            "bad_path_star": bad_paths,
        }
    }
    with_ctx = [it for it in items if it.get("context_facts")]
    if with_ctx:
        co = [oracle_hit(it["_ctx_out"], it) for it in with_ctx]
        oracles["context"] = {
            "acc": sum(h for h, _ in co) / len(co),
            "items": len(co),
            "ambiguous": sum(1 for _, c in co if c > 1),
            "gold_unreached": sum(1 for h, _ in co if h == 0),
            "facts": ctx_stats["facts"],
            "unparsed_facts": ctx_stats["unparsed"],
        }
    failed = sorted(r for r, v in rules.items() if v["acc"] > max_acc + 1e-12)
    oracle_fail = [k for k, v in oracles.items() if v["acc"] < 1.0 - 1e-12]
    return {
        "kg": str(kg_path),
        "data": str(data),
        "split": split,
        "n": n,
        "options": dict(n_opts),
        "mode": Counter(it.get("mode", "?") for it in items).most_common(1)[0][0],
        "hops": {str(h): sum(1 for it in items if it["hop_len"] == h) for h in hops},
        "train_files": train_names,
        "chance": chance,
        "max": max_acc,
        "oracles": oracles,
        "rules": rules,
        "failed_rules": failed,
        "failed_oracles": oracle_fail,
        "ok": not failed and not oracle_fail,
    }


def print_report(rep: dict) -> None:
    hops = list(rep["hops"])
    print(
        f"split {rep['split']} ({rep['data']}): {rep['n']} items, mode {rep['mode']}, "
        f"hops {rep['hops']}, options {rep['options']}; train stats from {rep['train_files'] or 'none'}"
    )
    print(f"chance {rep['chance']:.1%}; a rule fails above {rep['max']:.0%}")
    o = rep["oracles"]["kg"]
    print(
        f"KG oracle (follow the stated chain from the start): {o['acc']:.1%}  "
        f"[ambiguous {o['ambiguous']}, gold unreached {o['gold_unreached']}, bad path_star {o['bad_path_star']}]"
    )
    if "context" in rep["oracles"]:
        c = rep["oracles"]["context"]
        print(
            f"context oracle (follow the chain over the prompt's facts): {c['acc']:.1%}  "
            f"[ambiguous {c['ambiguous']}, gold unreached {c['gold_unreached']}, "
            f"unparsed facts {c['unparsed_facts']}/{c['facts']}]"
        )
    head = f"{'rule':38s} {'acc':>6s} {'95% CI':>15s} " + " ".join(f"{'hop' + h:>6s}" for h in hops)
    print(head)
    print("-" * len(head))
    note = "(* = reads part of the chain: last/first relation, bag or reverse of it, the question text)"
    for name, v in sorted(rep["rules"].items(), key=lambda kv: (-kv[1]["acc"], kv[0])):
        flag = "  FAIL" if name in rep["failed_rules"] else ""
        cells = " ".join(f"{v['by_hop'][h]:6.1%}" for h in hops)
        star = "*" if name.rsplit(":", 1)[0] in READS_CHAIN else " "
        print(f"{name + star:38s} {v['acc']:6.1%} [{v['lo']:5.1%},{v['hi']:6.1%}] {cells}{flag}")
    print(note)
    print()
    if rep["ok"]:
        print(f"OK: no rule above {rep['max']:.0%}, oracles 100%")
    else:
        if rep["failed_rules"]:
            print(
                f"FAIL: {len(rep['failed_rules'])} rule(s) above {rep['max']:.0%}: {', '.join(rep['failed_rules'])}"
            )
        for k in rep["failed_oracles"]:
            print(f"FAIL: {k} oracle below 100% ({rep['oracles'][k]['acc']:.1%})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kg", required=True, type=Path, help="kg.json")
    ap.add_argument("--data", required=True, type=Path, help="folder written by `kgreason tasks generate`")
    ap.add_argument("--split", default="eval", help="split to score (default: eval)")
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    ap.add_argument("--max", type=float, default=0.35, help="highest allowed rule accuracy (default: 0.35)")
    args = ap.parse_args(argv)
    try:
        rep = run(args.kg, args.data, args.split, args.max)
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 2
    except (OSError, KeyError, ValueError, TypeError) as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(rep, indent=1))
    else:
        print_report(rep)
    return 0 if rep["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
