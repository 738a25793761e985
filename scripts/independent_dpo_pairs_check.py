#!/usr/bin/env python3
"""Independent check of the DPO preference pairs of a kgreason run folder.

Usage: ``python3 scripts/independent_dpo_pairs_check.py RUN [--json] [--pairs-cap N] [--show N]``

Reads only the files of RUN (episodes.jsonl, metrics.jsonl, adapters/<phase>/pairs.jsonl,
data/kg.json, data/train_hard.jsonl and data/train_easy.jsonl, config.json, summary.json) and
checks:

1. every pair of pairs.jsonl names real episodes (same task id and sample indices, phase "dpo",
   round 1) and carries exactly their completion texts and reward objects; the pairs of each
   question equal the "pairs" list of its metrics line;
2. the chosen side is correct by this script's own reading of the answer line
   (``ANSWER: <entity> (<letter>)`` and the looser shapes docs/reward.md allows) against the
   task's gold letter (``answer_star``); the rejected side is wrong, unparsable or unfaithful by
   this script's reading where it can tell, and never looks correct *and* fully faithful;
3. faithfulness of the chosen side by its own reading of the trace: every clause that names two
   graph entities joined by a relation phrase (or its inverse phrase) must be an edge of kg.json;
   when every clause of a trace could be read, the hops must also walk the task's stated relation
   chain from its start entity to the entity of the chosen letter (the reward's definition of a
   faithful trace);
4. per question: pairs <= the `pairs` cap of config.json; a question with at least one
   chosen-eligible sample (format_ok, correct and faithful, by the episodes' own reward fields)
   and at least one other sample has a pair; a question lacking either side has none; the
   metrics line's chosen/rejected counts and pass rate match its episodes;
5. counts: questions, pairs, questions with pairs, and the agreement of this script's correctness
   verdict with the recorded "correct" field over every DPO episode.

Warnings (printed, not failing): a pair count other than min(cap, chosen x rejected), a first pair
that is not the best chosen with the worst rejected, "kept" flags that disagree with the pairs,
duplicate episodes (a resumed sampling pass), episodes of questions that have no metrics line.

Why it is independent: standard library only, it never imports kgreason, and it recomputes
correctness and faithfulness from the completion text, the tasks and the graph. It trusts the
episodes' reward fields only where the brief defines eligibility by them (check 4) and to
report how often its own reading agrees with them.

What it cannot read (reported, never forced into agreement): clauses that name two entities
with no relation phrase between them, negated / hedged / question clauses, entity names that a
model misspells or abbreviates, and answer lines in shapes other than the documented ones. A
trace with such a clause counts as "partly read": its readable hops are still checked against
the graph, but its chain walk is not judged.

Exit status: 0 when there is no violation, 1 otherwise (missing or unreadable files included).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

LETTERS = "ABCD"
_END = None  # trie key marking the end of a surface form


# --- files ------------------------------------------------------------------------------------------
def read_jsonl(path: Path) -> tuple[list[dict], list[str]]:
    """Objects of a JSON-lines file and one message per line that is not an object."""
    rows: list[dict] = []
    bad: list[str] = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                bad.append(f"{path.name}:{n}: not JSON ({exc.msg})")
                continue
            if isinstance(obj, dict):
                rows.append(obj)
            else:
                bad.append(f"{path.name}:{n}: not an object")
    return rows, bad


def norm_text(text: str) -> str:
    """Lower case (one character per character, so offsets hold), runs of horizontal space as one
    space, new lines kept (they end clauses)."""
    text = re.sub(r"[^\S\n]+", " ", text)
    text = re.sub(r" ?\n[\s]*", "\n", text)
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


def norm_surface(text: str) -> str:
    return " ".join(norm_text(text).split())


def is_word(c: str) -> bool:
    return c.isalnum() or c == "_"


# --- phrase finding ---------------------------------------------------------------------------------
class Trie:
    """Surface forms (normalised) -> values; finds non-overlapping, word-bounded matches in a text,
    leftmost first and, at one start, the longest."""

    def __init__(self) -> None:
        self.root: dict = {}

    def add(self, surface: str, value: object) -> None:
        s = norm_surface(surface)
        if not s:
            return
        node = self.root
        for ch in s:
            node = node.setdefault(ch, {})
        node.setdefault(_END, set()).add(value)

    def lookup(self, surface: str) -> set:
        node = self.root
        for ch in norm_surface(surface):
            node = node.get(ch)
            if node is None:
                return set()
        return set(node.get(_END, set()))

    def find(self, text: str, lo: int = 0, hi: int | None = None) -> list[tuple[int, int, frozenset]]:
        hi = len(text) if hi is None else hi
        out: list[tuple[int, int, frozenset]] = []
        i = lo
        while i < hi:
            if i > 0 and is_word(text[i]) and is_word(text[i - 1]):
                i += 1
                continue
            node, j, best = self.root, i, None
            while j < hi and text[j] in node:
                node = node[text[j]]
                j += 1
                if _END in node and not (j < len(text) and is_word(text[j - 1]) and is_word(text[j])):
                    best = (j, node[_END])
            if best is None:
                i += 1
                continue
            out.append((i, best[0], frozenset(best[1])))
            i = best[0]
        return out


class Graph:
    """kg.json read directly: entity surface forms, relation phrases (forward and inverse), edges."""

    def __init__(self, data: dict) -> None:
        self.notes: list[str] = []
        self.labels: dict[str, str] = {}
        self.entities = Trie()
        for e in data.get("entities", []):
            if isinstance(e, str):
                e = {"id": e}
            eid = str(e["id"])
            self.labels[eid] = str(e.get("label") or eid)
            for name in (eid, e.get("label"), *(e.get("aliases") or [])):
                if isinstance(name, str) and name.strip():
                    self.entities.add(name, eid)
        self.edges: set[tuple[str, str, str]] = set()
        for e in data.get("edges", []):
            if isinstance(e, dict):
                self.edges.add((str(e["src"]), str(e["rel"]), str(e["dst"])))
            else:
                self.edges.add((str(e[0]), str(e[1]), str(e[2])))
        rels = data.get("relations")
        if rels is None:
            rels = [{"id": r} for r in sorted({r for _, r, _ in self.edges})]
        self.symmetric: set[str] = set()
        self.phrases = Trie()
        guessed = []
        for r in rels:
            if isinstance(r, str):
                r = {"id": r}
            rid = str(r["id"])
            phrase = r.get("phrase")
            if not (isinstance(phrase, str) and phrase.strip()):
                guessed.append(rid)
                phrase = r.get("label") if isinstance(r.get("label"), str) else rid.replace("_", " ")
            inverse = r.get("inverse_phrase")
            if r.get("symmetric") is True:
                self.symmetric.add(rid)
                inverse = phrase
            for surface in _aux_variants(phrase):
                self.phrases.add(surface, (rid, False))
            if isinstance(inverse, str) and inverse.strip():
                for surface in _aux_variants(inverse):
                    self.phrases.add(surface, (rid, True))
        if guessed:
            self.notes.append(f"relations without a 'phrase' (read from label/id, may differ from the reward's): "
                              f"{', '.join(guessed[:5])}")

    def has_edge(self, head: str, rel: str, tail: str) -> bool:
        return (head, rel, tail) in self.edges or (rel in self.symmetric and (tail, rel, head) in self.edges)


def _aux_variants(phrase: str) -> list[str]:
    """A phrase and the forms a model writes with its leading auxiliary changed or dropped."""
    p = norm_surface(phrase)
    out = [p]
    m = re.match(r"(?:is|are|was|were) (.+)$", p)
    if m:
        out += [f"{aux} {m.group(1)}" for aux in ("is", "are", "was", "were")] + [m.group(1)]
    return list(dict.fromkeys(out))


# --- the answer line -------------------------------------------------------------------------------
_MARKER_RE = re.compile(r"^[^\S\n]*[*_]{0,3}[^\S\n]*(?:final[^\S\n]+)?answer[^\S\n]*[*_]{0,3}[^\S\n]*[:：]",
                        re.IGNORECASE | re.MULTILINE)
_TRACE_RE = re.compile(r"(?<![A-Za-z0-9])[*_]{0,3}trace[*_]{0,3}\s*[:：]", re.IGNORECASE)
_GLUE = r"\w\-'’/+#&@"
_BRACKETED_RE = re.compile(r"[(\[]\s*[*_]{0,2}([A-Da-d])[*_]{0,2}\s*(?:[)\]]|$)")
# Letter first: "D", "(D)", "D) jstat", "D. jstat", "D (jstat)", "D - jstat"; not "A tool", "D-Bus".
_LEAD_RE = re.compile(rf"^[(\[]?\s*[*_]{{0,2}}([A-Da-d])[*_]{{0,2}}(?![{_GLUE}])(?=\s*$|\s*[^\w\s]|[^\w\s])")
_PAIR_RE = re.compile(rf"(?<![{_GLUE}])\(?([A-D])\)?\s*(?:,|/|;|\||&|\bor\b|\band\b|\bvs\.?)\s*"
                      rf"(?:(?:maybe|perhaps|possibly|option)\s+)?\(?([A-D])\)?(?![{_GLUE}])")


class Answer:
    """This script's reading of a completion: verdict 'correct' | 'wrong' | 'unparsable'."""

    def __init__(self, letter: str | None, why: str, trace: str | None, named: str = "") -> None:
        self.letter = letter
        self.why = why  # why unparsable ("" otherwise)
        self.trace = trace  # the trace text (None when there is no TRACE: marker before the answer)
        self.named = named  # the text on the answer line besides the letter


def read_answer(text: str, options: dict[str, str]) -> Answer:
    if not isinstance(text, str):
        return Answer(None, "completion is not text", None)
    for m in _MARKER_RE.finditer(text):
        end = text.find("\n", m.end())
        end = len(text) if end < 0 else end
        core = " ".join(text[m.end():end].strip(" \t\r*_").split())
        letters: list[str] = []
        for key, name in options.items():
            if core.casefold() == f"{' '.join(str(name).split())} ({key})".casefold():
                letters = [key.upper()]
                break
        else:
            lead = _LEAD_RE.match(core)
            found = ([lead.group(1)] if lead else []) + _BRACKETED_RE.findall(core)
            for a, b in _PAIR_RE.findall(core):
                found += [a, b]
            letters = list(dict.fromkeys(x.upper() for x in found))
        if not letters:
            continue  # an answer marker naming no option: not decisive, read on
        trace_m = _TRACE_RE.search(text, 0, m.start())
        trace = None
        if trace_m is not None:
            stop = _MARKER_RE.search(text, trace_m.end(), m.start())
            trace = text[trace_m.end(): stop.start() if stop else m.start()].strip()
        if len(letters) > 1:
            return Answer(None, f"answer line names several options ({'/'.join(letters)})", trace)
        named = re.sub(r"[(\[]\s*[A-Da-d]\s*[)\]]", "", core).strip(" .:-")
        if trace is None:
            return Answer(letters[0], "no TRACE: marker before the answer line", None, named)
        return Answer(letters[0], "", trace, named)
    return Answer(None, "no answer line with a letter", None)


def verdict(ans: Answer, gold: str) -> str:
    if ans.why or ans.letter is None:
        return "unparsable"
    return "correct" if ans.letter == gold.strip().upper() else "wrong"


# --- the trace ---------------------------------------------------------------------------------------
_CLAUSE_END_RE = re.compile(r"[.!?](?=\s|$)|[;\n]")
_STEP_RE = re.compile(r"(?<![\w.])(?:(?:step|hop)\s*#?\d{1,3}\s*[:.)\-]?|\(\d{1,3}\)|\d{1,3}[.)])(?=\s|$)")
_CUES = frozenset({"not", "no", "never", "cannot", "neither", "nor", "maybe", "perhaps", "possibly", "probably",
                   "might", "may", "could", "unlikely", "if", "unless", "whether", "or", "false", "unclear"})
_QUESTION_FIRST = frozenset({"what", "which", "who", "why", "how", "where", "when", "does", "do", "did", "is",
                             "are", "can", "should"})


class Hop:
    def __init__(self, surface: str, readings: list[tuple[str, str, str, bool]]) -> None:
        self.surface = surface  # the clause text that claims it
        self.readings = readings  # (head, relation, tail, is an edge), in the graph's direction

    @property
    def valid(self) -> bool:
        return any(r[3] for r in self.readings)

    @property
    def best(self) -> tuple[str, str, str]:
        r = next((r for r in self.readings if r[3]), self.readings[0])
        return r[0], r[1], r[2]


class Reading:
    def __init__(self) -> None:
        self.hops: list[Hop] = []
        self.no_phrase: list[str] = []  # clause pieces naming two entities with no relation phrase
        self.skipped: list[str] = []  # negated, hedged or question clauses naming two entities

    @property
    def complete(self) -> bool:
        return bool(self.hops) and not self.no_phrase and not self.skipped

    @property
    def bad_hops(self) -> list[Hop]:
        return [h for h in self.hops if not h.valid]


def read_trace(g: Graph, trace: str) -> Reading:
    text = norm_text(trace)
    mentions = g.entities.find(text)

    def inside(pos: int, spans: list[tuple[int, int, frozenset]]) -> bool:
        return any(s <= pos < e for s, e, _ in spans)

    cuts = sorted({m.start() for m in _CLAUSE_END_RE.finditer(text) if not inside(m.start(), mentions)}
                  | {m.start() for m in _STEP_RE.finditer(text) if not inside(m.start(), mentions)})
    bounds = [0, *cuts, len(text)]
    reading = Reading()
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        group = [m for m in mentions if lo <= m[0] and m[1] <= hi]
        merged: list[tuple[int, int, frozenset]] = []
        for m in group:  # the same entity named twice in a row is no hop
            if merged and merged[-1][2] & m[2]:
                continue
            merged.append(m)
        if len(merged) < 2:
            continue
        phrases = [p for a, b in zip(merged, merged[1:], strict=False) for p in g.phrases.find(text, a[1], b[0])]
        clause = text[lo:hi].strip(" .;\n")
        covered = group + phrases
        words = [(w.start(), w.group()) for w in re.finditer(r"[a-z]+(?:n't|n’t)?", text[lo:hi])]
        cue = any(w in _CUES or w.endswith(("n't", "n’t")) for p, w in words if not inside(lo + p, covered))
        first = next((w for p, w in words), "")
        if cue or "?" in text[lo:hi] or (first in _QUESTION_FIRST and not inside(lo + words[0][0], covered)):
            reading.skipped.append(clause)
            continue
        for a, b in zip(merged, merged[1:], strict=False):
            found = g.phrases.find(text, a[1], b[0])
            if not found:
                reading.no_phrase.append(text[a[0]:b[1]])
                continue
            readings = []
            for rel, inverse in sorted(found[0][2]):
                for x in sorted(a[2]):
                    for y in sorted(b[2]):
                        head, tail = (y, x) if inverse else (x, y)
                        readings.append((head, rel, tail, g.has_edge(head, rel, tail)))
            reading.hops.append(Hop(text[a[0]:b[1]], readings))
    return reading


def walks_chain(reading: Reading, start: str, chain: list[str], end: str | None) -> tuple[bool, str]:
    """Whether the hops, in order, go from `start` along `chain` (one hop per relation) to `end`."""
    current = start
    for i, hop in enumerate(reading.hops):
        want = chain[i] if i < len(chain) else None
        if chain and want is None:
            return False, f"{len(reading.hops)} hops for a chain of {len(chain)}"
        step = next((r for r in hop.readings if r[3] and r[0] == current and (want is None or r[1] == want)), None)
        if step is None:
            return False, f"hop {i + 1} ({hop.surface!r}) does not continue from {current!r} along {want!r}"
        current = step[2]
    if chain and len(reading.hops) != len(chain):
        return False, f"{len(reading.hops)} hops for a chain of {len(chain)}"
    if end is not None and current != end:
        return False, f"ends at {current!r}, not at the chosen option {end!r}"
    return True, ""


# --- the run ------------------------------------------------------------------------------------------
class Task:
    def __init__(self, d: dict, g: Graph) -> None:
        self.id = str(d["id"])
        self.gold = str(d.get("answer_star", "")).strip().upper()
        self.options = {str(k).upper(): str(v) for k, v in (d.get("options") or {}).items()}
        path = d.get("path_star") or {}
        ents = [str(x) for x in path.get("entities") or []]
        edges = path.get("edges") or []
        self.hop_len = int(d.get("hop_len", len(edges)))
        self.start = str(d.get("start") or (ents[0] if ents else ""))
        chain = d.get("relation_chain") or [e["rel"] if isinstance(e, dict) else e[1] for e in edges]
        self.chain = [str(r) for r in chain]
        answer_id = str(d.get("answer_id") or (ents[-1] if ents else ""))
        self.option_ids: dict[str, str] = {}
        for letter, label in self.options.items():
            given = (d.get("option_ids") or {}).get(letter)
            if given:
                self.option_ids[letter] = str(given)
            elif letter == self.gold and answer_id:
                self.option_ids[letter] = answer_id
            else:
                ids = g.entities.lookup(label)
                if len(ids) == 1:
                    self.option_ids[letter] = next(iter(ids))


def eligible(reward: dict) -> bool:
    return bool(reward.get("format_ok") and reward.get("correct") and reward.get("faithful"))


def pairs_cap(run: Path, phase: str) -> tuple[int | None, str]:
    for name, keys in (("config.json", (phase, "options", "pairs")), ("config.json", ("pipeline", phase, "pairs")),
                       ("summary.json", (phase, "options", "pairs"))):
        path = run / name
        if not path.exists():
            continue
        try:
            node = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, int) and not isinstance(node, bool):
            return node, f"{name} {'.'.join(keys)}"
    return None, "not found"


class Report:
    def __init__(self, show: int) -> None:
        self.show = show
        self.violations: dict[str, list[str]] = defaultdict(list)
        self.warnings: dict[str, list[str]] = defaultdict(list)
        self.notes: list[str] = []
        self.counts: dict[str, object] = {}

    def bad(self, kind: str, detail: str) -> None:
        self.violations[kind].append(detail)

    def warn(self, kind: str, detail: str) -> None:
        self.warnings[kind].append(detail)


def check(run: Path, phase: str, round_: int, cap_override: int | None, show: int) -> Report:
    rep = Report(show)
    need = {"episodes": run / "episodes.jsonl", "metrics": run / "metrics.jsonl",
            "pairs": run / "adapters" / phase / "pairs.jsonl", "kg": run / "data" / "kg.json"}
    missing = [str(p) for p in need.values() if not p.exists()]
    if missing:
        rep.bad("missing files", ", ".join(missing))
        return rep
    g = Graph(json.loads(need["kg"].read_text(encoding="utf-8")))
    rep.notes += g.notes
    tasks: dict[str, Task] = {}
    for name in ("train_hard.jsonl", "train_easy.jsonl"):
        path = run / "data" / name
        if path.exists():
            rows, bad = read_jsonl(path)
            rep.notes += bad
            for d in rows:
                tasks.setdefault(str(d.get("id")), Task(d, g))
    if not tasks:
        rep.bad("missing files", f"no tasks in {run / 'data'}/train_hard.jsonl or train_easy.jsonl")

    # episodes: the last line of a (task, sample) wins, as a resumed pass rewrites a question
    all_eps, bad = read_jsonl(need["episodes"])
    rep.notes += bad
    dpo_eps = [e for e in all_eps if e.get("phase") == phase and int(e.get("round", 0) or 0) == round_]
    episodes: dict[tuple[str, int], dict] = {}
    for e in dpo_eps:
        episodes[(str(e.get("task_id")), int(e.get("sample_index", 0)))] = e
    if len(episodes) != len(dpo_eps):
        rep.warn("duplicate episodes", f"{len(dpo_eps) - len(episodes)} repeated (task, sample) lines; the last "
                                       "of each is used")
    by_task: dict[str, list[dict]] = defaultdict(list)
    for (tid, _), e in sorted(episodes.items()):
        by_task[tid].append(e)

    # 5. correctness agreement over every dpo episode line
    verdicts: Counter[str] = Counter()
    agree = disagree = untasked = 0
    for e in dpo_eps:
        task = tasks.get(str(e.get("task_id")))
        if task is None:
            untasked += 1
            continue
        v = verdict(read_answer(e.get("completion", ""), task.options), task.gold)
        verdicts[v] += 1
        recorded = bool((e.get("reward") or {}).get("correct"))
        if (v == "correct") == recorded:
            agree += 1
        else:
            disagree += 1
            rep.warn("correctness disagreement", f"{e.get('task_id')} sample {e.get('sample_index')}: mine "
                     f"{v}, recorded correct={recorded}")
    if untasked:
        rep.bad("unknown task", f"{untasked} dpo episodes name a task that is in neither train file")

    # metrics lines of finished questions
    metrics_rows, bad = read_jsonl(need["metrics"])
    rep.notes += bad
    questions: dict[str, dict] = {}
    for m in metrics_rows:
        if m.get("phase") == phase and "task_id" in m and "pairs" in m and int(m.get("round", 0) or 0) == round_:
            if str(m["task_id"]) in questions:
                rep.warn("repeated metrics line", str(m["task_id"]))
            questions[str(m["task_id"])] = m
    unfinished = sorted(set(by_task) - set(questions))
    if unfinished:
        rep.warn("unfinished questions", f"{len(unfinished)} with episodes but no metrics line, e.g. {unfinished[0]}")

    cap, cap_from = (cap_override, "--pairs-cap") if cap_override is not None else pairs_cap(run, phase)
    if cap is None:
        rep.notes.append("pairs cap not found in config.json or summary.json: cap not checked (pass --pairs-cap)")

    # 1-3. the pairs file
    pair_rows, bad = read_jsonl(need["pairs"])
    for b in bad:
        rep.bad("pairs.jsonl unreadable line", b)
    file_pairs: dict[str, list[tuple[int, int]]] = defaultdict(list)
    chosen_stats = Counter()
    rejected_stats: Counter[str] = Counter()
    for n, row in enumerate(pair_rows, start=1):
        tid = str(row.get("task_id"))
        try:
            cs, rs = int(row["chosen_sample"]), int(row["rejected_sample"])
        except (KeyError, TypeError, ValueError):
            rep.bad("pair fields", f"pairs.jsonl:{n}: no integer chosen_sample/rejected_sample")
            continue
        where = f"pairs.jsonl:{n} {tid} ({cs} over {rs})"
        file_pairs[tid].append((cs, rs))
        if cs == rs:
            rep.bad("pair of one sample", where)
        ep_c, ep_r = episodes.get((tid, cs)), episodes.get((tid, rs))
        for side, ep, sample in (("chosen", ep_c, cs), ("rejected", ep_r, rs)):
            if ep is None:
                rep.bad("pair names no episode", f"{where}: no {phase} round-{round_} episode for {side} sample {sample}")
                continue
            if row.get(side) != ep.get("completion"):
                rep.bad("pair text differs from episode", f"{where}: {side} text")
            if row.get(f"{side}_reward") != ep.get("reward"):
                rep.bad("pair reward differs from episode", f"{where}: {side}_reward")
        if ep_c is not None and not eligible(ep_c.get("reward") or {}):
            rep.bad("chosen not eligible by its reward", where)
        if ep_r is not None and eligible(ep_r.get("reward") or {}):
            rep.bad("rejected eligible by its reward", where)
        task = tasks.get(tid)
        if task is None:
            rep.bad("unknown task", where)
            continue
        if row.get("hop_len") is not None and int(row["hop_len"]) != task.hop_len:
            rep.bad("hop_len differs from task", f"{where}: {row['hop_len']} vs {task.hop_len}")

        # 2-3. chosen side
        ans = read_answer(row.get("chosen", ""), task.options)
        v = verdict(ans, task.gold)
        chosen_stats["pairs"] += 1
        if v != "correct":
            reason = ans.why or f"answers {ans.letter}, gold {task.gold}"
            rep.bad("chosen side not correct (independent reading)", f"{where}: {v}: {reason}")
        if ans.trace is not None:
            reading = read_trace(g, ans.trace)
            chosen_stats["hops read"] += len(reading.hops)
            chosen_stats["hops not in graph"] += len(reading.bad_hops)
            for h in reading.bad_hops:
                rep.bad("chosen hop not in the graph", f"{where}: {h.surface!r}")
            if reading.no_phrase or reading.skipped:
                chosen_stats["partly read"] += 1
                for piece in reading.no_phrase + reading.skipped:
                    rep.warn("chosen clause not read", f"{where}: {piece!r}")
            elif not reading.hops:
                chosen_stats["no hops found"] += 1
            else:
                ok, why = walks_chain(reading, task.start, task.chain, task.option_ids.get(ans.letter or ""))
                if ok and not reading.bad_hops:
                    chosen_stats["verified"] += 1
                elif not ok:
                    rep.bad("chosen trace does not walk the stated chain", f"{where}: {why}")
                recorded = [(h.get("head"), h.get("relation"), h.get("tail"))
                            for h in (row.get("chosen_reward") or {}).get("claimed_hops") or []]
                chosen_stats["hops match recorded claimed_hops"] += [h.best for h in reading.hops] == recorded
        if ans.letter and ans.named and task.options.get(ans.letter) and \
                norm_surface(ans.named) != norm_surface(task.options[ans.letter]):
            rep.warn("chosen answer line names another entity than its letter's option", f"{where}: {ans.named!r}")

        # 2. rejected side: wrong, unparsable or unfaithful
        ans_r = read_answer(row.get("rejected", ""), task.options)
        v_r = verdict(ans_r, task.gold)
        if v_r != "correct":
            rejected_stats[v_r] += 1
            continue
        reading = read_trace(g, ans_r.trace or "")
        if reading.bad_hops:
            rejected_stats["unfaithful: hop not in graph"] += 1
        elif reading.no_phrase:
            rejected_stats["unfaithful: two entities with no relation phrase"] += 1
        elif not reading.hops and not reading.skipped:
            rejected_stats["unfaithful: no hop claimed"] += 1
        elif reading.skipped:
            rejected_stats["unconfirmed (clause not read)"] += 1
            rep.warn("rejected side unconfirmed", f"{where}: correct answer, a clause this script cannot read")
        else:
            ok, why = walks_chain(reading, task.start, task.chain, task.option_ids.get(ans_r.letter or ""))
            if ok:
                rep.bad("rejected side correct and faithful (independent reading)", where)
            else:
                rejected_stats["unfaithful: chain walk"] += 1

    # 4. per question
    for tid, m in questions.items():
        eps = by_task.get(tid, [])
        if not eps:
            rep.bad("question without episodes", tid)
            continue
        n_c = sum(eligible(e.get("reward") or {}) for e in eps)
        n_r = len(eps) - n_c
        listed = [tuple(int(x) for x in p) for p in m.get("pairs") or []]
        if cap is not None and len(listed) > cap:
            rep.bad("more pairs than the cap", f"{tid}: {len(listed)} > {cap}")
        if n_c and n_r and not listed:
            rep.bad("no pair although both sides exist", f"{tid}: {n_c} chosen-eligible, {n_r} not")
        if (not n_c or not n_r) and listed:
            rep.bad("pair although one side is empty", f"{tid}: {n_c} chosen-eligible, {n_r} not, {len(listed)} pairs")
        if len(set(listed)) != len(listed):
            rep.bad("duplicate pair", tid)
        if Counter(listed) != Counter(file_pairs.get(tid, [])):
            rep.bad("metrics pairs differ from pairs.jsonl", f"{tid}: {listed} vs {file_pairs.get(tid, [])}")
        if m.get("chosen") != n_c or m.get("rejected") != n_r:
            rep.bad("metrics counts differ from episodes",
                    f"{tid}: chosen/rejected {m.get('chosen')}/{m.get('rejected')} vs {n_c}/{n_r}")
        passed = sum(bool((e.get("reward") or {}).get("format_ok") and (e.get("reward") or {}).get("correct"))
                     for e in eps) / len(eps)
        if not isinstance(m.get("pass_rate"), (int, float)) or abs(float(m["pass_rate"]) - passed) > 1e-9:
            rep.bad("pass_rate differs from episodes", f"{tid}: {m.get('pass_rate')} vs {passed}")
        if cap is not None and len(listed) != min(cap, n_c * n_r):
            rep.warn("pair count not min(cap, chosen x rejected)", f"{tid}: {len(listed)}")
        total = {int(e.get("sample_index", 0)): float((e.get("reward") or {}).get("total", 0.0)) for e in eps}
        if listed and n_c and n_r:
            best = max(total[i] for i in total if eligible(episodes[(tid, i)].get("reward") or {}))
            worst = min(total[i] for i in total if not eligible(episodes[(tid, i)].get("reward") or {}))
            c0, r0 = listed[0]
            if total.get(c0) != best or total.get(r0) != worst:
                rep.warn("first pair is not best chosen x worst rejected", tid)
        in_pairs = {i for p in listed for i in p}
        for e in eps:
            if bool(e.get("kept")) != (int(e.get("sample_index", 0)) in in_pairs):
                rep.warn("kept flag disagrees with the pairs", f"{tid} sample {e.get('sample_index')}")
    for tid in sorted(set(file_pairs) - set(questions)):
        rep.bad("pairs of a question without a metrics line", tid)

    rep.counts = {
        "questions": len(questions),
        "questions_with_pairs": sum(1 for m in questions.values() if m.get("pairs")),
        "pairs": len(pair_rows),
        "pairs_cap": cap,
        "pairs_cap_from": cap_from,
        "dpo_episodes": len(dpo_eps),
        "dpo_episodes_unique": len(episodes),
        "my_verdicts": dict(verdicts),
        "correct_agreement": agree,
        "correct_compared": agree + disagree,
        "correct_agreement_rate": round(agree / (agree + disagree), 6) if agree + disagree else None,
        "chosen": dict(chosen_stats),
        "rejected": dict(rejected_stats),
    }
    return rep


def print_report(run: Path, rep: Report) -> None:
    c = rep.counts
    print(f"independent DPO pairs check: {run}")
    if c:
        rate = c["correct_agreement_rate"]
        ch: dict = c["chosen"]  # type: ignore[assignment]
        print(f"  questions {c['questions']}, with pairs {c['questions_with_pairs']}, pairs {c['pairs']} "
              f"(cap {c['pairs_cap']}, from {c['pairs_cap_from']})")
        print(f"  dpo episodes {c['dpo_episodes']} ({c['dpo_episodes_unique']} unique); my verdicts {c['my_verdicts']}")
        print(f"  correctness agreement with recorded 'correct': {c['correct_agreement']}/{c['correct_compared']}"
              + (f" = {100 * rate:.2f}%" if rate is not None else ""))
        print(f"  chosen traces: {ch.get('pairs', 0)}, fully read and verified {ch.get('verified', 0)}, partly read "
              f"{ch.get('partly read', 0)}, no hop found {ch.get('no hops found', 0)}; hops read {ch.get('hops read', 0)}, "
              f"not in graph {ch.get('hops not in graph', 0)}; hops equal to recorded claimed_hops in "
              f"{ch.get('hops match recorded claimed_hops', 0)} fully read traces")
        print(f"  rejected sides: {c['rejected']}")
    for note in rep.notes:
        print(f"  note: {note}")
    for title, groups in (("WARNING", rep.warnings), ("VIOLATION", rep.violations)):
        for kind, items in groups.items():
            print(f"  {title} {kind}: {len(items)}")
            for item in items[: rep.show]:
                print(f"    - {item}")
    n = sum(len(v) for v in rep.violations.values())
    print(f"  result: {'FAIL' if n else 'OK'} ({n} violation(s), {sum(len(v) for v in rep.warnings.values())} "
          f"warning(s))")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("run", type=Path, help="the run folder")
    ap.add_argument("--phase", default="dpo", help="phase name of the episodes and metrics lines (default dpo)")
    ap.add_argument("--round", type=int, default=1, help="round of the sampling pass (default 1)")
    ap.add_argument("--pairs-cap", type=int, default=None, help="pairs cap per question (default: config.json)")
    ap.add_argument("--show", type=int, default=5, help="examples printed per kind of finding")
    ap.add_argument("--json", action="store_true", help="print a JSON object instead of the text report")
    args = ap.parse_args(argv)
    rep = check(args.run, args.phase, args.round, args.pairs_cap, args.show)
    if args.json:
        print(json.dumps({"counts": rep.counts, "notes": rep.notes,
                          "violations": dict(rep.violations),
                          "warnings": {k: len(v) for k, v in rep.warnings.items()}}, indent=1))
    else:
        print_report(args.run, rep)
    return 1 if rep.violations else 0


if __name__ == "__main__":
    sys.exit(main())
