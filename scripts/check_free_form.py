#!/usr/bin/env python3
"""Standalone audit of a free-form multi-hop dataset and its grader verdicts.

Standard library only; does not import kgreason.

Usage: python3 scripts/check_free_form.py /tmp/ffcheck [--max-examples 20]

Reads kg.json, eval.jsonl, train_easy.jsonl, train_hard.jsonl and
completions_scored.jsonl from the folder, checks data claims A1-A6 and
re-grades every completion (correct / format_ok / faithful) from the
contract, then prints disagreements and a PASS/FAIL line per claim.
"""
# ruff: noqa: UP031  (printf-style messages: this checker is written apart from kgreason, in its own style)
import argparse
import json
import os
import re
import sys
from collections import defaultdict

SPLITS = ("eval", "train_easy", "train_hard")
EMPH = "*_"
QUOTES = [('"', '"'), ("'", "'"), ("\u201c", "\u201d"), ("\u2018", "\u2019")]


def norm(s):
    """Case-insensitive, whitespace runs collapsed."""
    return " ".join(s.split()).casefold()


def strip_emph(s):
    return s.strip().strip(EMPH + " \t").strip()


def load_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# ---------------------------------------------------------------- graph
class KG:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
        self.entities = {}
        for e in raw["entities"]:
            self.entities[e["id"]] = e
        self.relations = {r["id"]: r for r in raw["relations"]}
        self.edges = set()
        self.out = defaultdict(set)  # (src, rel) -> {dst}
        for e in raw["edges"]:
            s = e.get("src", e.get("head"))
            r = e.get("rel", e.get("relation"))
            d = e.get("dst", e.get("tail"))
            self.edges.add((s, r, d))
            self.out[(s, r)].add(d)
        # normalised name -> {entity ids}
        self.by_name = defaultdict(set)
        for eid in self.entities:
            for n in self.names(eid):
                self.by_name[norm(n)].add(eid)
        # normalised phrase -> {relation ids}
        self.by_phrase = defaultdict(set)
        for rid, r in self.relations.items():
            for key in ("phrase", "label"):
                if r.get(key):
                    self.by_phrase[norm(r[key])].add(rid)

    def names(self, eid):
        e = self.entities[eid]
        return [e["id"], e.get("label", e["id"])] + list(e.get("aliases") or [])

    def norm_names(self, eid):
        return {norm(n) for n in self.names(eid)}

    def label(self, eid):
        return self.entities[eid].get("label", eid)

    def follow(self, start, chain):
        frontier = {start}
        for r in chain:
            nxt = set()
            for x in frontier:
                nxt |= self.out.get((x, r), set())
            frontier = nxt
        return frontier


# ---------------------------------------------------------------- grader
ANSWER_RE = re.compile(
    r"^[ \t]*[*_]*[ \t]*(?:answer|final[ \t]+answer)[ \t]*[*_]*[ \t]*:(.*)$",
    re.IGNORECASE,
)


def find_answer(text):
    """Return (line_index, raw_answer) of the first answer line naming something."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        m = ANSWER_RE.match(line)
        if not m:
            continue
        val = m.group(1)
        if strip_emph(val) == "":
            continue  # empty ANSWER: line is skipped
        return i, val
    return None, None


def answer_candidates(raw, reapply_emph=True):
    """Normalised candidate names for an answer string.

    reapply_emph=True : emphasis is stripped again after removing a final '.'
                        or wrapping quotes (so '**X**.' -> 'X').
    reapply_emph=False: strictly strip emphasis once, then optionally remove
                        one final '.' or one pair of wrapping quotes.
    """
    s = strip_emph(raw)
    cands = {s}
    if s.endswith("."):
        t = s[:-1].strip()
        cands.add(strip_emph(t) if reapply_emph else t)
    for a, b in QUOTES:
        if len(s) >= 2 and s.startswith(a) and s.endswith(b):
            t = s[1:-1].strip()
            cands.add(strip_emph(t) if reapply_emph else t)
    return {norm(c) for c in cands if c}


def grade_answer(kg, item, text, reapply_emph=True):
    idx, raw = find_answer(text)
    if raw is None:
        return None, False, set()
    cands = answer_candidates(raw, reapply_emph)
    correct = bool(cands & kg.norm_names(item["answer_id"]))
    named = set()
    for c in cands:
        named |= kg.by_name.get(c, set())
    return idx, correct, named


def format_ok_of(text):
    idx, raw = find_answer(text)
    if raw is None:
        return False
    lines = text.split("\n")
    before = "\n".join(lines[:idx])
    return "TRACE:" in before


CLAUSE_SPLIT = re.compile(r"(?:(?<=\s)|^)(\d+)\.\s+")


def parse_clauses(trace):
    """Split '1. a. 2. b.' into ['a.', 'b.']; None if numbering is not 1..n."""
    trace = trace.strip()
    parts = CLAUSE_SPLIT.split(trace)
    # parts = [pre, n1, c1, n2, c2, ...]
    if parts[0].strip():
        return None
    nums = parts[1::2]
    clauses = parts[2::2]
    if [int(n) for n in nums] != list(range(1, len(nums) + 1)):
        return None
    return [c.strip() for c in clauses]


def read_clause(kg, clause):
    """All (head_ids, rel_id, tail_ids) readings of '<head> <phrase> <tail>.'"""
    c = clause.strip()
    if c.endswith("."):
        c = c[:-1]
    c = norm(c)
    out = []
    for phrase, rids in kg.by_phrase.items():
        pat = " " + phrase + " "
        start = 0
        while True:
            j = c.find(pat, start)
            if j < 0:
                break
            h, t = c[:j].strip(), c[j + len(pat):].strip()
            hs, ts = kg.by_name.get(h, set()), kg.by_name.get(t, set())
            if hs and ts:
                for r in rids:
                    out.append((hs, r, ts))
            start = j + 1
    return out


def faithful_of(kg, item, text, reapply_emph=True):
    if not format_ok_of(text):
        return False, "format"
    lines = text.split("\n")
    # the trace ends at the first answer-like line (an empty "ANSWER:" included)
    first = next(i for i, line in enumerate(lines) if ANSWER_RE.match(line))
    trace = "\n".join(lines[:first]).split("TRACE:", 1)[1]
    clauses = parse_clauses(trace)
    chain = item["relation_chain"]
    if clauses is None:
        return False, "numbering"
    if len(clauses) != len(chain):
        return False, "hops=%d want %d" % (len(clauses), len(chain))
    cur = {item["start"]}
    for i, (cl, rel) in enumerate(zip(clauses, chain, strict=False)):
        nxt = set()
        for hs, r, ts in read_clause(kg, cl):
            if r != rel:
                continue
            for h in hs & cur:
                for t in ts:
                    if (h, r, t) in kg.edges:
                        nxt.add(t)
        if not nxt:
            return False, "hop %d unreadable/not an edge: %r" % (i + 1, cl)
        cur = nxt
    _, _, named = grade_answer(kg, item, text, reapply_emph)
    if not (cur & named):
        return False, f"last tail {sorted(cur)} != answer {sorted(named)}"
    return True, "ok"


# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--max-examples", type=int, default=20)
    args = ap.parse_args()
    D = args.folder
    kg = KG(os.path.join(D, "kg.json"))
    data = {s: load_jsonl(os.path.join(D, s + ".jsonl")) for s in SPLITS}
    items = {it["id"]: it for s in SPLITS for it in data[s]}
    n_items = sum(len(v) for v in data.values())
    print("KG: %d entities, %d relations, %d edges" % (
        len(kg.entities), len(kg.relations), len(kg.edges)))
    print("items: " + ", ".join("%s=%d" % (s, len(data[s])) for s in SPLITS))
    results = {}
    MAXE = args.max_examples

    def report(name, bad, checked):
        print("\n[%s] checked=%d failures=%d" % (name, checked, len(bad)))
        for b in bad[:MAXE]:
            print("   - " + b)
        results[name] = not bad

    # A1
    bad = []
    for s in SPLITS:
        for it in data[s]:
            if it.get("family") != "free_form":
                bad.append("{} family={!r}".format(it["id"], it.get("family")))
            if it.get("options") not in ({}, None) or it.get("option_ids") not in ({}, None):
                bad.append("{} options={!r} option_ids={!r}".format(it["id"], it.get("options"), it.get("option_ids")))
            if it.get("options") is None:
                bad.append("{} options missing".format(it["id"]))
            if it.get("answer_star") != "":
                bad.append("{} answer_star={!r}".format(it["id"], it.get("answer_star")))
            if it.get("split") != s:
                bad.append("{} split={!r} in file {}".format(it["id"], it.get("split"), s))
    report("A1 family/options/answer_star", bad, n_items)

    # A2
    bad = []
    for s in SPLITS:
        for it in data[s]:
            if it["start"] not in kg.entities:
                bad.append("{} unknown start {}".format(it["id"], it["start"]))
                continue
            fr = kg.follow(it["start"], it["relation_chain"])
            if fr != {it["answer_id"]}:
                bad.append("%s reach=%s (n=%d) answer=%s" % (
                    it["id"], sorted(fr)[:6], len(fr), it["answer_id"]))
    report("A2 unique answer over all edges", bad, n_items)

    # A3
    bad = []
    for s in SPLITS:
        for it in data[s]:
            ps = it["path_star"]
            ents, edges, chain = ps["entities"], ps["edges"], it["relation_chain"]
            why = []
            if it["hop_len"] != len(chain):
                why.append("hop_len %d != len(chain) %d" % (it["hop_len"], len(chain)))
            if len(edges) != len(chain) or len(ents) != len(chain) + 1:
                why.append("lengths edges=%d ents=%d chain=%d" % (len(edges), len(ents), len(chain)))
            if not ents or ents[0] != it["start"] or ents[-1] != it["answer_id"]:
                why.append(f"endpoints {ents[:1]}..{ents[-1:]}")
            if len(set(ents)) != len(ents):
                why.append("not simple (repeated entity)")
            for i, e in enumerate(edges):
                tr = (e["src"], e["rel"], e["dst"])
                if tr not in kg.edges:
                    why.append("edge %d %s not in KG" % (i, tr))
                if i < len(chain) and e["rel"] != chain[i]:
                    why.append("edge %d rel %s != chain %s" % (i, e["rel"], chain[i]))
                if i + 1 < len(ents) and (e["src"], e["dst"]) != (ents[i], ents[i + 1]):
                    why.append("edge %d does not link entities[%d..%d]" % (i, i, i + 1))
            if why:
                bad.append("{}: {}".format(it["id"], "; ".join(why)))
    report("A3 path_star valid simple path, hop_len", bad, n_items)

    # A4
    bad = []
    for s in SPLITS:
        for it in data[s]:
            a = it["answer_id"]
            if a not in kg.entities:
                bad.append("{} answer_id {} not in KG".format(it["id"], a))
                continue
            if it.get("answer_label") != kg.label(a):
                bad.append("{} answer_label {!r} != label {!r}".format(it["id"], it.get("answer_label"), kg.label(a)))
            clash = kg.by_name.get(norm(it.get("answer_label", "")), set()) - {a}
            if clash:
                bad.append("{} answer_label {!r} also names {}".format(it["id"], it["answer_label"], sorted(clash)))
    # also: any other name of the answer shared with another entity (info)
    report("A4 answer_label correct and unambiguous", bad, n_items)
    shared = {n: ids for n, ids in kg.by_name.items() if len(ids) > 1}
    print("   info: names shared by >1 entity in the whole KG: %d%s" % (
        len(shared), (" e.g. " + str(list(shared.items())[:5])) if shared else ""))

    # A5
    bad = []
    for s in SPLITS:
        for it in data[s]:
            prompt = it.get("prompt", "")
            if re.search(r"^\s*Options\s*:", prompt, re.IGNORECASE | re.MULTILINE):
                bad.append("{} prompt has an Options: line".format(it["id"]))
            lab = it.get("answer_label", "")
            pat = r"(?<!\w)" + re.escape(lab) + r"(?!\w)"
            for fld in ("question", "prompt"):
                if lab and re.search(pat, it.get(fld, ""), re.IGNORECASE):
                    bad.append("{} {} contains answer label {!r}: {!r}".format(it["id"], fld, lab, it[fld][:160]))
    report("A5 no options in prompt, answer not leaked in question", bad, n_items)

    # A6
    bad = []
    train = data["train_easy"] + data["train_hard"]
    key_sc = {(t["start"], tuple(t["relation_chain"])): t["id"] for t in train}
    key_path = {tuple((e["src"], e["rel"], e["dst"]) for e in t["path_star"]["edges"]): t["id"] for t in train}
    key_q = {norm(t["question"]): t["id"] for t in train}
    for it in data["eval"]:
        k1 = (it["start"], tuple(it["relation_chain"]))
        k2 = tuple((e["src"], e["rel"], e["dst"]) for e in it["path_star"]["edges"])
        k3 = norm(it["question"])
        if k1 in key_sc:
            bad.append("{} shares (start, chain) with {}".format(it["id"], key_sc[k1]))
        if k2 in key_path:
            bad.append("{} shares gold path with {}".format(it["id"], key_path[k2]))
        if k3 in key_q:
            bad.append("{} shares question with {}".format(it["id"], key_q[k3]))
    # also within-eval duplicates (info)
    seen, dup = {}, []
    for it in data["eval"]:
        k = (it["start"], tuple(it["relation_chain"]))
        if k in seen:
            dup.append((seen[k], it["id"]))
        seen[k] = it["id"]
    report("A6 eval/train disjoint", bad, len(data["eval"]))
    print("   info: duplicate (start, chain) within eval: %d %s" % (len(dup), dup[:5]))

    # B grading
    comps = load_jsonl(os.path.join(D, "completions_scored.jsonl"))
    missing = [c["task_id"] for c in comps if c["task_id"] not in items]
    dis = {"correct": [], "format_ok": [], "faithful": []}
    strict_dis, strict_fa_dis = [], []
    n = 0
    by_variant = defaultdict(lambda: defaultdict(int))
    for c in comps:
        it = items.get(c["task_id"])
        if it is None:
            continue
        n += 1
        text = c["text"]
        _, mine_c, _ = grade_answer(kg, it, text)
        _, strict_c, _ = grade_answer(kg, it, text, reapply_emph=False)
        mine_f = format_ok_of(text)
        mine_fa, why = faithful_of(kg, it, text)
        rec = (c["task_id"], c["variant"], text)
        for name, mine, why_ in (("correct", mine_c, ""), ("format_ok", mine_f, ""),
                                 ("faithful", mine_fa, why)):
            if bool(c[name]) != mine:
                dis[name].append((rec, c[name], mine, why_))
                by_variant[name][c["variant"]] += 1
        if bool(c["correct"]) != strict_c:
            strict_dis.append(rec)
        if bool(c["faithful"]) != faithful_of(kg, it, text, reapply_emph=False)[0]:
            strict_fa_dis.append(rec)
    print("\nB grading: %d completions checked (%d with unknown task_id)" % (n, len(missing)))
    for name in ("correct", "format_ok", "faithful"):
        lst = dis[name]
        print("\n[B %s] disagreements=%d (by variant: %s)" % (
            name, len(lst), dict(sorted(by_variant[name].items()))))
        for (tid, var, text), rec_v, mine, why in lst[:MAXE]:
            print("   - {} v{} recorded={} mine={}{}\n     text={!r}".format(
                tid, var, rec_v, mine, (" (" + why + ")") if why else "", text))
        results["B " + name] = not lst
    print("\n   info: under the strict reading (strip emphasis once, then drop a"
          " final '.', no re-strip) disagreements: correct=%d faithful=%d" % (
              len(strict_dis), len(strict_fa_dis)))

    print("\n=== SUMMARY ===")
    for k, v in results.items():
        print("{}: {}".format("PASS" if v else "FAIL", k))
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
