"""What went wrong in a run, in one paragraph: the problem, its likely cause, what to try.

A run can end with a table that looks like a result and is not one: on a large lexical KG the
quick recipe scored below chance, RSFT kept no winner in either round, and `kgreason run` printed
"rsft vs sft +0.0" and nothing else. `diagnose` reads the run folder's files (the evaluations,
summary.json, the eval items) and returns a `Diagnosis` when a trained phase

- scores below the strongest shortcut baseline on the same items (or below chance),
- measurably lowers accuracy against the phase it started from,
- gives no readable answer for most items,
- found no winners in an RSFT round, so it trained nothing, or
- warned while training: its reward rose while the held-out probe fell, or the probe fell past
  its noise (the phase's own warning, kgreason.train.probe).

Its causes come from signals measured on the final phase's answers, each stated with its number:
answer lines that do not name an option, traces that stop before the hops the question asks,
entity names that the one-line answer contract reads poorly, RSFT pass rates. Each cause brings
what to try. `kgreason run` prints the paragraph after its headline, report.md carries it, and the
demo flags the run (evaluate/headline.py puts it in the Headline record every surface reads).
"""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kgreason.phases import phase_labels
from kgreason.reward.parse import parse_completion

# how the headline and the diagnosis name a phase; anything else keeps its folder name
UNTRAINED = ("base",)


def phase_stem(folder: str) -> str:
    """An eval folder's phase: `kgreason run` writes eval/base, older runs eval/base_eval."""
    return folder.removesuffix("_eval").removeprefix("eval_")


def phase_name(folder: str) -> str:
    return phase_labels().get(phase_stem(folder), folder)  # a plugin's phase included

# a cause is named when its signal is at least this large (shares of the final phase's answers)
UNREADABLE_SHARE = 0.10  # answers without a readable answer line
MOSTLY_UNREADABLE = 0.5  # a problem of its own when the lower bound of that share is above this
SHORT_TRACE_SHARE = 0.30  # traces with fewer hops than the question asks
ODD_NAME_SHARE = 0.10  # option names with brackets or commas, or longer than LONG_NAME characters
LONG_NAME = 40
_ODD_NAME_RE = re.compile(r"[()\[\],;:\"]")
_ANSWER_WORD_RE = re.compile(r"answer\s*[:：]", re.IGNORECASE)


@dataclass(frozen=True)
class Diagnosis:
    """Why a run's result is not what it looks like (JSON: `to_dict`; `Headline.diagnosis`)."""

    # {"code", "text"}: below_shortcut, below_chance, unreadable, lowers, no_winners, training_warning,
    # shortcuts_allowed
    problems: list[dict]
    causes: list[dict]  # {"code", "text"}: unreadable_answers, short_traces, odd_names, no_passes, unfaithful_passes
    advice: list[str]
    signals: dict  # the measured figures the causes are stated from
    paragraph: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


DIAGNOSIS_SCHEMA: dict = {
    "type": "object",
    "required": ["problems", "causes", "advice", "signals", "paragraph"],
    "properties": {
        "problems": {"type": "array", "items": {"type": "object", "required": ["code", "text"]}},
        "causes": {"type": "array", "items": {"type": "object", "required": ["code", "text"]}},
        "advice": {"type": "array", "items": {"type": "string"}},
        "signals": {"type": "object"},
        "paragraph": {"type": "string"},
    },
}


@dataclass
class _Findings:
    problems: list[dict] = field(default_factory=list)
    causes: list[dict] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)
    signals: dict = field(default_factory=dict)

    def problem(self, code: str, text: str) -> None:
        self.problems.append({"code": code, "text": text})

    def cause(self, code: str, text: str, *advice: str) -> None:
        self.causes.append({"code": code, "text": text})
        self.advice.extend(a for a in advice if a not in self.advice)


def _shown(name: str, limit: int = 60) -> str:
    """A name from the data as the paragraph quotes it: report.md renders markdown, so characters
    that would make a link or a code span are replaced, and a long name is cut."""
    safe = name.translate(str.maketrans({"[": "(", "]": ")", "`": "'", "<": "(", ">": ")"}))
    return safe if len(safe) <= limit else safe[: limit - 1] + "…"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


UNREADABLE_KINDS = {  # signal key -> how the paragraph says it
    "no_answer_line": "never reach one",
    "answer_line_without_option": "write one that names no option letter",
    "hedged": "name more than one option on it",
    "no_trace": "answer without a TRACE: before it",
}


def unreadable_kind(text: str, family: str | None = None) -> str:
    """Why an answer has no readable answer, by kgreason.reward.parse's own reading of it under the
    task family's rule (multiple choice by default)."""
    from kgreason.families import get_family

    fam = get_family(family)
    parsed = parse_completion(text, family=fam)
    if parsed.answer is not None:  # an answer was read, so what failed is the trace before it
        return "no_trace"
    line = fam.find_answer_line(text)
    if line is not None and fam.answer_of(line) is None:
        return "hedged"
    return "answer_line_without_option" if _ANSWER_WORD_RE.search(text or "") else "no_answer_line"


def answer_signals(episodes: list[Any], hops: dict[str, int], family: str | None = None) -> dict:
    """Measured on one evaluation's answers: how many have no readable answer (and why, by kind:
    `UNREADABLE_KINDS`), and how many hops the traces claim against the hops each question asks."""
    n = len(episodes)
    unreadable = [e for e in episodes if not e.reward.format_ok]
    kinds = dict.fromkeys(UNREADABLE_KINDS, 0)
    for e in unreadable:
        kinds[unreadable_kind(e.completion or "", family)] += 1
    # among the traces that claim any hop: an answer with no trace at all is counted as unreadable
    asked = [(hops[e.task_id], len(e.reward.claimed_hops)) for e in episodes
             if e.task_id in hops and e.reward.claimed_hops]
    short = sum(1 for want, wrote in asked if wrote < want)
    return {
        "answers": n,
        "unreadable": len(unreadable) / n if n else 0.0,
        **{key: count / n if n else 0.0 for key, count in kinds.items()},
        "short_traces": short / len(asked) if asked else 0.0,
        "median_hops_asked": statistics.median(w for w, _ in asked) if asked else None,
        "median_hops_written": statistics.median(h for _, h in asked) if asked else None,
    }


def name_signals(items: list[dict]) -> dict:
    """The eval items' option names: how many carry brackets, commas or quotes (which the answer
    line `ANSWER: <entity> (<letter>)` and the one-line facts read poorly) or run long."""
    names = {str(v) for it in items if isinstance(it, dict) and isinstance(it.get("options"), dict)
             for v in it["options"].values()}
    odd = [n for n in names if _ODD_NAME_RE.search(n) or len(n) > LONG_NAME]
    return {"option_names": len(names), "odd_names": len(odd) / len(names) if names else 0.0,
            "odd_name_examples": sorted(odd, key=len)[:2]}


def rsft_rounds(summary: dict) -> list[dict]:
    """Each RSFT round's pass rate and winners, as summary.json records them."""
    phases = summary.get("phases") if isinstance(summary.get("phases"), dict) else {}
    info = phases.get("rsft") if isinstance(phases.get("rsft"), dict) else {}
    rounds = info.get("rounds") if isinstance(info.get("rounds"), list) else []
    return [r for r in rounds if isinstance(r, dict) and isinstance(r.get("winners"), int)]


def _reasons(round_row: dict) -> dict:
    """A round's outcome counts (reason -> questions), {} when summary.json holds anything else."""
    reasons = round_row.get("reasons")
    return reasons if isinstance(reasons, dict) else {}


def phase_warnings(summary: dict) -> dict[str, str]:
    phases = summary.get("phases") if isinstance(summary.get("phases"), dict) else {}
    return {p: str(info["warning"]) for p, info in phases.items() if isinstance(info, dict) and info.get("warning")}


def shortcuts_allowed(manifest: Path) -> str | None:
    """'eval: chain_from_other_entities 95.6%' when the data folder's manifest says --allow-shortcuts let
    items through that a shortcut baseline answers above the limit (kgreason/tasks/refusal.py), else None."""
    from kgreason.tasks.refusal import over_summary

    try:
        check = json.loads(manifest.read_text(encoding="utf-8")).get("shortcut_check")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(check, dict) or not check.get("allowed"):
        return None
    try:
        return over_summary(check) or "a baseline above the limit"
    except (AttributeError, KeyError, TypeError):
        return "a baseline above the limit"


def diagnose(run_dir: str | Path, headline: Any, final_episodes: list[Any] | None, hops: dict[str, int],
             items: list[dict]) -> Diagnosis | None:
    """The diagnosis of a run folder from its headline's figures and the final phase's answers;
    None when nothing went wrong that it checks for."""
    root = Path(run_dir)
    try:
        summary = json.loads((root / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        summary = {}
    summary = summary if isinstance(summary, dict) else {}
    f = _Findings()
    figures = {p.phase: p for p in headline.phases}
    final = figures.get(headline.final) if headline.final else None
    if final is not None:
        name, acc = phase_name(headline.final), final.accuracy
        sc = headline.shortcut
        if sc and acc["mean"] < sc["accuracy"]["mean"]:
            f.problem("below_shortcut", f"{name} scores {_pct(acc['mean'])} on the held-out items, below the strongest "
                                        f"shortcut baseline ({sc['description']}: {_pct(sc['accuracy']['mean'])}), "
                                        "so its accuracy is no evidence that it follows the chains")
        if headline.chance is not None and acc["high"] < headline.chance:
            f.problem("below_chance", f"{name}'s accuracy ({_pct(acc['mean'])}, upper bound {_pct(acc['high'])}) "
                                      f"is below chance ({_pct(headline.chance)})")
        unreadable = final.format_failure
        if unreadable["low"] > MOSTLY_UNREADABLE:
            f.problem("unreadable", f"{name} gives no readable answer for {_pct(unreadable['mean'])} of the held-out "
                                    "items")
        gain = headline.gain
        if gain and gain.get("n") and gain["high"] < 0:
            f.problem("lowers", f"{name} lowers accuracy against {phase_name(headline.baseline_phase)} "
                                f"(paired {100 * gain['diff']:+.1f} points [{100 * gain['low']:+.1f}, "
                                f"{100 * gain['high']:+.1f}])")
    rounds = rsft_rounds(summary)
    empty = [r for r in rounds if r["winners"] == 0]
    if empty:
        which = ", ".join(str(r.get("round")) for r in empty)
        f.problem("no_winners", f"RSFT kept no winners in round{'s' if len(empty) > 1 else ''} {which} of "
                                f"{len(rounds)}, so it trained nothing there")
    for phase, note in phase_warnings(summary).items():
        f.problem("training_warning", f"{phase_name(phase)}: {note}")
    allowed = shortcuts_allowed(root / "data" / "manifest.json")
    if allowed:
        f.problem("shortcuts_allowed", f"the data was written with --allow-shortcuts ({allowed}), so accuracy on "
                                       "these held-out items is no evidence that the model follows the chains")
    if not f.problems:
        return None

    families = {it.get("family") or None for it in items if isinstance(it, dict)}
    signals = answer_signals(final_episodes or [], hops, families.pop() if len(families) == 1 else None)
    signals.update(name_signals(items))
    signals["rsft_rounds"] = [{"round": r.get("round"), "mean_pass_rate": r.get("mean_pass_rate"),
                               "winners": r["winners"], "reasons": _reasons(r)} for r in rounds]
    f.signals = signals
    if signals["unreadable"] >= UNREADABLE_SHARE:
        kinds = [f"{_pct(signals[key])} {words}" for key, words in UNREADABLE_KINDS.items() if signals[key] > 0]
        f.cause("unreadable_answers",
                f"{_pct(signals['unreadable'])} of the final answers have no readable answer line ({', '.join(kinds)})",
                "train SFT longer (--sft-max-steps) so the answer format is learnt",
                *(["raise --eval-max-new-tokens if answers run out of tokens before their answer line"]
                  if signals["no_answer_line"] > 0 else []))
    if signals["short_traces"] >= SHORT_TRACE_SHARE and signals["median_hops_asked"] is not None:
        f.cause("short_traces",
                f"traces stop early: {_pct(signals['short_traces'])} of those that claim hops claim fewer than the "
                f"question asks "
                f"(median {signals['median_hops_written']:g} written for {signals['median_hops_asked']:g} asked)",
                "give SFT longer chains to imitate (--sft-material easy,hard) and check the hops per trace in "
                "eval/<phase>/report.md")
    if signals["odd_names"] >= ODD_NAME_SHARE:
        examples = "; ".join(_shown(n) for n in signals["odd_name_examples"])
        f.cause("odd_names",
                f"{_pct(signals['odd_names'])} of the option names carry brackets, commas or quotes or run past "
                f"{LONG_NAME} characters (e.g. {examples}), which the answer line `ANSWER: <entity> (<letter>)` "
                "and the one-line facts read poorly",
                "give the graph's entities short, plain names before importing it (kgreason kg import)")
    if empty:
        rates = [r.get("mean_pass_rate") for r in empty if isinstance(r.get("mean_pass_rate"), (int, float))]
        rate = f" (mean pass rate {', '.join(f'{x:.2f}' for x in rates)})" if rates else ""
        reasons = [_reasons(r) for r in empty]
        if any(x.get("below_frontier") or x.get("above_frontier") for x in reasons):
            f.cause("frontier_filtered",
                    f"the frontier filter kept no question{rate}: each was either always or never solved",
                    "run RSFT without --rsft-frontier, or with more samples per question (-k) so pass rates "
                    "between 0 and 1 show")
        elif rates and any(rates) and all(x.get("none_eligible") for x in reasons):
            f.cause("unfaithful_passes",
                    f"RSFT's samples were sometimes right{rate} but none had a faithful trace, and the run keeps "
                    "faithful winners only",
                    "let RSFT keep right answers with unfaithful traces (--no-rsft-faithful-only), or train SFT "
                    "longer so traces follow the facts")
        elif rates and not any(rates):
            f.cause("no_passes", f"RSFT's samples were never right{rate}",
                    "start RSFT where the SFT model sometimes succeeds: --rsft-distribution easy or curriculum, "
                    "more samples per question (-k)")
    if not f.causes:
        f.advice.append("check the items with `kgreason tasks audit` and compare the phases with "
                        "`kgreason eval --compare` to see which answers changed")
    paragraph = (("; ".join(p["text"] for p in f.problems)) + ". "
                 + (("Likely cause: " + "; ".join(c["text"] for c in f.causes) + ". ") if f.causes else
                    "None of the signals checked (answer lines, trace length, entity names, RSFT pass rate) "
                    "explains it. ")
                 + "Try: " + "; ".join(f.advice) + ".")
    paragraph = paragraph[0].upper() + paragraph[1:]
    return Diagnosis(problems=f.problems, causes=f.causes, advice=f.advice, signals=f.signals, paragraph=paragraph)
