"""Independent re-scorer for kgreason eval outputs: stdlib only, imports nothing from kgreason.

Re-reads each raw completion of RUN_DIR/eval/<PHASE>/predictions.jsonl against RUN_DIR/data/eval.jsonl
and RUN_DIR/data/kg.json and checks (1) accuracy: after a ``TRACE:``, the first line starting with
``ANSWER:``/``Final answer:`` that names an option names exactly one letter and it equals answer_star
(hedges, an answer before the trace, or no answer line are wrong); (2) faithful: the trace's claimed hops
(affirmative clauses "<head> <relation phrase> <tail>", one per step) are real KG edges, start at the
task's start entity, follow relation_chain in order, are exactly as many, and end at the chosen
option's entity; (3) for 2+ phases, the paired accuracy difference (each phase minus the first) with a
95% percentile bootstrap interval over shared items (2000 resamples, seed 0). The stored scoring
(``reward`` per line, metrics.json) is read only for the side-by-side comparison and disagreements.

Usage: python3 scripts/rescore_predictions.py RUN_DIR PHASE [PHASE ...]
"""

import json
import random
import re
import sys
from itertools import product
from pathlib import Path

MARKER = re.compile(r"^[ \t*_]*(?:answer|final[ \t]+answer)[ \t*_]*:[ \t*_]*(.*)$", re.I)
TOKEN = re.compile(r"[A-Za-z0-9_]+(?:[-'][A-Za-z0-9_]+)*")
CONNECTIVES = set(
    re.findall(
        r"\w+",
        "or and nor either neither maybe perhaps possibly probably not vs versus option options also but then than"
        " otherwise likely",
    )
)
GLUE = set("/&.+|")
STEP = re.compile(
    r"\(\d+\)|(?i:\b(?:step|hop)[ \t]*\d+[ \t]*[:.)\-]?)|(?<![\w.(])\d+\)"
    r"|(?:^|(?<=[.!?;:\n]))[ \t*_]*\d+\.(?=\s|$)"
)
BREAK = re.compile(r"[.!?](?=\s|$)|;|\n")
CUES = re.compile(
    r"n't\b|\?|\bi (?:think|believe|guess)\b|\b(?:not|no|never|false|wrong|none|neither|nor|"
    r"cannot|incorrect|untrue|might|may|maybe|perhaps|probably|possibly|likely|unlikely|could|"
    r"would|should|if|whether|or|unless|suppose|assume|seems?)\b",
    re.I,
)
QWORDS = set(
    re.findall(
        r"\w+",
        "does do did is are was were can could will would should what which who whom whose where when why how",
    )
)
AUX = ("is ", "are ", "was ", "were ", "be ", "been ")


def letters_named(rest):
    """Option letters an answer line's remainder names: (own letter or None, set of letters)."""
    toks = [(m.start(), m.end(), m.group()) for m in TOKEN.finditer(rest)]

    def is_letter(i):
        return len(toks[i][2]) == 1 and toks[i][2].upper() in "ABCD"

    def sep(i, j):  # text between token i and token j (j = i +- 1)
        lo, hi = (toks[i][1], toks[j][0]) if j > i else (toks[j][1], toks[i][0])
        return rest[lo:hi]

    def in_name(i):  # rule 1: next to a word that is neither a connective nor a letter (letters glue)
        for d in (-1, 1):
            j = i
            while 0 <= j + d < len(toks):
                s, k = sep(j, j + d).strip("*_"), j + d
                if s.strip(" \t") == "" and not is_letter(k):
                    if toks[k][2].lower() not in CONNECTIVES:
                        return True
                    break
                if (s.strip(" \t") == "" or s in GLUE) and is_letter(k):
                    j = k
                    continue
                break
        return False

    own, own_i = None, None
    lead = re.match(r"[ \t*_]*([(\[])?[ \t]*([A-Da-d])(?![\w'-])[ \t]*([)\]])?", rest)
    if lead and toks and toks[0][2] == lead.group(2):
        bracketed = lead.group(1) or lead.group(3)
        if bracketed or not (re.match(r"[ \t*_]*[A-Za-z0-9]", rest[lead.end() :]) or in_name(0)):
            own, own_i = lead.group(2).upper(), 0
    if own is None:
        b = re.search(r"[(\[][ \t]*([A-Da-d])[ \t]*[)\]]", rest)
        if b:
            own = b.group(1).upper()
            own_i = next(i for i, t in enumerate(toks) if t[0] == b.start(1))
    named = {own} if own else set()
    for i, (_, _, w) in enumerate(toks):
        if not is_letter(i) or i == own_i:
            continue
        rule2 = False
        if w.isupper() and (own_i is None or i > own_i) and i > 0:  # rule 2: upper case after connective
            s = sep(i - 1, i)
            rule2 = (s.strip(" \t*_") == "" and toks[i - 1][2].lower() in CONNECTIVES) or any(
                c in s for c in ",/;|&+"
            )
        if rule2 or not in_name(i):
            named.add(w.upper())
    return own, named


def read_completion(text):
    """-> (letter or None, trace or None, why): letter is set only for a well-formed completion."""
    if not isinstance(text, str):
        return None, None, "not text"
    pos, markers, answer = 0, [], None
    for line in text.split("\n"):
        m = MARKER.match(line)
        if m:
            markers.append(pos)
            own, named = letters_named(m.group(1))
            if len(named) > 1:
                return None, None, "hedge " + "/".join(sorted(named))
            if named:
                answer = (named.pop(), pos)
                break
        pos += len(line) + 1
    if answer is None:
        return None, None, "no answer line"
    t = re.search(r"TRACE:", text[: answer[1]], re.I)
    if not t:
        return None, None, f"answer {answer[0]} without a TRACE before it"
    return answer[0], text[t.end() : min(p for p in markers if p >= t.end())], "ok"


UNREAD = ("?", None, "?", False)  # a claim read as no hop


class Graph:
    def __init__(self, kg):
        self.edges = {(e["src"], e["rel"], e["dst"]) for e in kg["edges"]}
        self.ents, self.rels = {}, {}
        for e in kg["entities"]:
            forms = [e["id"], e.get("label", e["id"])] + list(e.get("aliases") or [])
            longer = any(len(f.strip()) > 1 for f in forms)
            for f in forms:
                if f and not (longer and len(f.strip()) == 1):
                    self.ents.setdefault(" ".join(f.lower().split()), set()).add(e["id"])
        for r in kg["relations"]:
            forward = [r.get("phrase") or r.get("label"), r["id"], r["id"].replace("_", " ")]
            for fwd, p in [(True, f) for f in forward] + [(False, r.get("inverse_phrase"))]:
                if not p:
                    continue
                p = " ".join(p.lower().split())
                bare = next((p[len(a) :] for a in AUX if p.startswith(a)), None)
                for form in filter(None, (p, bare)):
                    self.rels.setdefault(form, set()).add((r["id"], fwd))
        self.ent_re, self.rel_re = self._pattern(self.ents), self._pattern(self.rels)

    @staticmethod
    def _pattern(forms):
        alts = sorted(forms, key=len, reverse=True)
        body = "|".join(r"[ \t]+".join(map(re.escape, f.split(" "))) for f in alts)
        return re.compile(rf"(?<!\w)(?:{body})(?!\w)", re.I)

    @staticmethod
    def find(pattern, text, table):
        """Longest match wins, then leftmost; returns [(start, end, values)]."""
        found = [m for st in range(len(text)) if (m := pattern.match(text, st))]
        cands = [(m.start(), m.end(), table[" ".join(m.group().lower().split())]) for m in found]
        chosen = []
        for c in sorted(cands, key=lambda c: (c[0] - c[1], c[0])):
            if all(c[1] <= o[0] or c[0] >= o[1] for o in chosen):
                chosen.append(c)
        return sorted(chosen)

    def hops(self, trace):
        """Claimed hops [(head, rel, tail, valid)] of a trace, read from affirmative clauses."""
        # a step label inside a longer entity name ("Bad Gateway (502)", "1. FC Nuernberg") is part of the name
        names = [(s, e) for s, e, _ in self.find(self.ent_re, trace, self.ents)]

        def blank(m):
            if any(s <= m.start() and m.end() <= e and (s, e) != m.span() for s, e in names):
                return m.group()
            return "\n" + " " * (len(m.group()) - 1)

        text = STEP.sub(blank, trace)
        ments = self.find(self.ent_re, text, self.ents)
        phrases = self.find(self.rel_re, text, self.rels)
        # a name that is a word of a phrase ("film" in "has the film") is part of the phrase there
        ments = [m for m in ments if not any(p[0] <= m[0] and m[1] <= p[1] and p[1] - p[0] > m[1] - m[0]
                                             for p in phrases)]
        phrases = [p for p in phrases if all(p[1] <= m[0] or p[0] >= m[1] for m in ments)]
        cuts = [b.end() for b in BREAK.finditer(text) if not any(m[0] < b.start() < m[1] for m in ments)]
        out, lo = [], 0
        for hi in cuts + [len(text)]:
            cm = [m for m in ments if lo <= m[0] < hi]
            spans = cm + [p for p in phrases if lo <= p[0] < hi]
            bare = list(text[lo:hi])
            for s, e, _ in spans:
                bare[s - lo : e - lo] = ["\0"] * (e - s)
            bare = "".join(bare)
            first = re.match(r"[\s*_,\"'(]*([A-Za-z]+)", bare)
            claims = not CUES.search(bare) and not (first and first.group(1).lower() in QWORDS)
            if claims:
                used = set()
                for a, b in zip(cm, cm[1:], strict=False):
                    between = next((p for p in phrases if p[0] >= a[1] and p[1] <= b[0]), None)
                    if a[2] == b[2] and between is None:
                        continue  # one entity named twice; with a phrase between, a claimed self-loop
                    if between is not None:
                        used.add(between[0])
                    out.append(self._reading(a[2], b[2], between and between[2]))
                # a phrase no hop was read from claims what the graph cannot check (an unknown name)
                out += [UNREAD] * sum(1 for p in phrases if lo <= p[0] < hi and p[0] not in used)
            lo = hi
        return out

    def _reading(self, heads, tails, rel):
        if rel is None:
            return (sorted(heads)[0], None, sorted(tails)[0], False)
        order = sorted(rel, key=lambda x: (not x[1], x[0]))  # forward readings first
        readings = [
            (h, r, t) if f else (t, r, h) for (r, f), h, t in product(order, sorted(heads), sorted(tails))
        ]
        best = next((x for x in readings if x in self.edges), readings[0])
        return best + (best in self.edges,)


def faithful(task, letter, hops):
    if letter is None:
        return False, "no answer"
    if UNREAD in hops:
        return False, f"{hops.count(UNREAD)} relation phrase(s) with no known entity on a side"
    hops = [h for h in hops if h != UNREAD]
    chain = task.get("relation_chain")
    target = (task.get("option_ids") or task["options"]).get(letter)
    cur = task.get("start") or task["path_star"]["entities"][0]
    if chain is not None and len(hops) != len(chain):
        return False, f"{len(hops)} hops for a {len(chain)}-relation chain"
    if not hops:
        return False, "no hops"
    for i, (h, r, t, ok) in enumerate(hops, 1):
        why = "" if ok else f"({h} {r} {t}) is not an edge"
        why = why or (h != cur and f"starts at {h}, not {cur}") or ""
        why = why or (chain is not None and r != chain[i - 1] and f"uses {r}, chain says {chain[i - 1]}")
        if why:
            return False, f"hop {i} {why}"
        cur = t
    return (cur == target), ("ok" if cur == target else f"ends at {cur}, option {letter} is {target}")


def bootstrap_diff(a, b, n=2000, seed=0):
    rng, d = random.Random(seed), [y - x for x, y in zip(a, b, strict=True)]
    means = sorted(sum(d[rng.randrange(len(d))] for _ in d) / len(d) for _ in range(n))
    return sum(d) / len(d), means[int(0.025 * n)], means[int(0.975 * n) - 1]


def rescore(run, phase, tasks, graph):
    path = run / "eval" / phase / "predictions.jsonl"
    recs = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    rows = {r["task_id"]: r for r in reversed(recs)}  # the first line of a task id counts
    res, dup = {}, len(recs) - len(rows)
    for tid, r in sorted(rows.items()):
        task = tasks[tid]
        letter, trace, why = read_completion(r.get("completion"))
        hops = graph.hops(trace) if letter else []
        ok, fwhy = faithful(task, letter, hops)
        res[tid] = {"correct": letter == task["answer_star"], "faithful": ok, "letter": letter, "why": why}
        res[tid]["nofmt"] = letter is None
        res[tid].update(fwhy=fwhy, hops=hops, stored=r.get("reward") or {}, text=r.get("completion", ""))
    n = len(res)
    mets = run / "eval" / phase / "metrics.json"
    m = json.loads(mets.read_text()) if mets.exists() else {}

    def get(*keys):
        v = m
        for k in keys:
            v = v.get(k) if isinstance(v, dict) else None
        return v if isinstance(v, (int, float)) else None

    print(f"== {phase}: {path}\n  n={n} (duplicate lines ignored: {dup})")
    print(f"  {'':18}{'mine':>9}{'stored/lines':>14}{'metrics.json':>14}")
    rows = [
        ("accuracy", "correct", "correct", "accuracy"),
        ("faithful share", "faithful", "faithful", "trace"),
    ]
    for name, key, skey, mkey in rows + [("format failures", "nofmt", "format_ok", "format_failure_rate")]:
        my = sum(bool(v[key]) for v in res.values()) / n
        st = sum(bool(v["stored"].get(skey)) != (key == "nofmt") for v in res.values()) / n
        mv = get(mkey, "faithful_share", "mean") if mkey == "trace" else get(mkey, "mean")
        print(f"  {name:18}{my:9.4f}{st:14.4f}{'n/a' if mv is None else f'{mv:.4f}':>14}")
    for key in ("correct", "faithful"):
        diff = [(t, v) for t, v in res.items() if v[key] != bool(v["stored"].get(key))]
        print(f"  {key} verdicts differing from stored: {len(diff)}")
        for t, v in diff[:5]:
            s = v["stored"]
            why = f"letter={v['letter']} ({v['why']}), gold={tasks[t]['answer_star']}"
            mine = why if key == "correct" else v["fwhy"]
            print(
                f"    {t}: mine={v[key]} [{mine}]; stored={s.get(key)} [answer={s.get('answer')}, "
                f"format_ok={s.get('format_ok')}, hops={len(s.get('claimed_hops') or [])}]; "
                f"text={v['text'][:140]!r}"
            )
    return res


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    run = Path(argv[0])
    lines = (run / "data" / "eval.jsonl").read_text().splitlines()
    tasks = {t["id"]: t for t in map(json.loads, filter(str.strip, lines))}
    graph = Graph(json.loads((run / "data" / "kg.json").read_text()))
    results = {p: rescore(run, p, tasks, graph) for p in argv[1:]}
    first = argv[1]
    for p in argv[2:]:
        ids = sorted(set(results[first]) & set(results[p]))
        a = [float(results[first][t]["correct"]) for t in ids]
        b = [float(results[p][t]["correct"]) for t in ids]
        d, lo, hi = bootstrap_diff(a, b)
        print(
            f"== paired accuracy difference {p} - {first} over {len(ids)} shared items: "
            f"{d:+.4f} [95% bootstrap {lo:+.4f}, {hi:+.4f}] (2000 resamples, seed 0)"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
