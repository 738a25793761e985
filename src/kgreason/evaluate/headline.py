"""The one sentence a run is made for, and the figures behind it.

`kgreason run` prints it last, report.md starts with it and the demo's landing page opens with it
(beside a chart of the same figures), so the three can never disagree: each calls
`run_headline(run_dir)`. It reads only the run folder's files (eval/<phase>/metrics.json and
predictions.jsonl, data/eval.jsonl), so it works on a run made by an older version too.

The sentence names the last trained phase's held-out accuracy against the phase it started from
(a paired interval over the same items), chance, the strongest shortcut baseline in plain words,
the share of faithful traces and the KG oracle; and it says so when the phase did not help or did
not clear the shortcut, because that is the result a user most needs to see.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kgreason.evaluate.bootstrap import bootstrap_mean
from kgreason.evaluate.compare import LoadedEval, load_eval, paired_difference
from kgreason.evaluate.diagnosis import (
    DIAGNOSIS_SCHEMA,
    UNTRAINED,
    diagnose,
    phase_name,
    phase_stem,
)
from kgreason.evaluate.runner import METRICS
from kgreason.io import InputError
from kgreason.phases import phase_order


@dataclass(frozen=True)
class PhaseFigures:
    """One evaluated phase: shares over the held-out items it answered (Wilson intervals)."""

    phase: str
    accuracy: dict  # Interval.to_dict()
    faithful: dict
    format_failure: dict
    by_hop: dict[str, dict] = field(default_factory=dict)


@dataclass(frozen=True)
class Headline:
    """What a run shows, as figures and as the sentence built from them (JSON: `to_dict`)."""

    run: str
    phases: list[PhaseFigures]
    final: str | None  # the last trained phase, the one the sentence is about
    baseline_phase: str | None  # the phase it is compared with (paired, same items)
    gain: dict | None  # PairedDifference.to_dict() of accuracy, final minus baseline_phase
    chance: float | None  # 1 / options per item
    shortcut: dict | None  # {"name", "description", "accuracy": Interval dict}
    oracle: dict | None  # Interval dict of the KG oracle on the same items
    hops: list[str]
    sentence: str
    # when the two compared phases answered different items: both accuracies over the items both
    # answered ({"n", "before", "final"}), the ones the paired gain is about; else None
    shared: dict | None = None
    unreadable: list[str] = field(default_factory=list)  # eval folders whose files could not be read
    # what went wrong, when something did (evaluate/diagnosis.py): Diagnosis.to_dict(), else None
    diagnosis: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)


_INTERVAL = {"type": "object", "required": ["mean", "low", "high", "n"],
             "properties": {"mean": {"type": "number"}, "low": {"type": "number"}, "high": {"type": "number"},
                            "n": {"type": "integer"}}}
_MAYBE_INTERVAL = {"anyOf": [_INTERVAL, {"type": "null"}]}
# the JSON of Headline.to_dict() (docs/schemas.md; the demo's /api/run carries it as `headline`)
HEADLINE_SCHEMA: dict = {
    "type": "object",
    "required": ["run", "phases", "final", "baseline_phase", "gain", "chance", "shortcut", "oracle", "hops", "sentence"],
    "properties": {
        "run": {"type": "string"},
        "phases": {"type": "array", "items": {
            "type": "object", "required": ["phase", "accuracy", "faithful", "format_failure", "by_hop"],
            "properties": {"phase": {"type": "string"}, "accuracy": _INTERVAL, "faithful": _INTERVAL,
                           "format_failure": _INTERVAL,
                           "by_hop": {"type": "object", "additionalProperties": _INTERVAL}}}},
        "final": {"type": ["string", "null"]},
        "baseline_phase": {"type": ["string", "null"]},
        "gain": {"anyOf": [{"type": "null"}, {"type": "object", "required": ["diff", "low", "high", "n", "p_value"]}]},
        "chance": {"type": ["number", "null"]},
        "shortcut": {"anyOf": [{"type": "null"}, {"type": "object", "required": ["name", "description", "accuracy"],
                                                   "properties": {"name": {"type": "string"},
                                                                  "description": {"type": "string"},
                                                                  "accuracy": _INTERVAL}}]},
        "oracle": _MAYBE_INTERVAL,
        "hops": {"type": "array", "items": {"type": "string"}},
        "sentence": {"type": "string"},
        "unreadable": {"type": "array", "items": {"type": "string"}},
        "shared": {"anyOf": [{"type": "null"}, {"type": "object", "required": ["n", "before", "final"],
                                                 "properties": {"n": {"type": "integer"}, "before": _INTERVAL,
                                                                "final": _INTERVAL}}]},
        "diagnosis": {"anyOf": [{"type": "null"}, DIAGNOSIS_SCHEMA]},
    },
}


def _iv(values: list[float], seed: int) -> dict:
    return bootstrap_mean(values, seed=seed).to_dict()


def _figures(ev: LoadedEval) -> PhaseFigures:
    eps = list(ev.episodes.values())
    hops = ev.hops
    by_hop: dict[str, dict] = {}
    for h in sorted({hops[t] for t in ev.episodes if t in hops}):
        hits = [float(e.reward.correct) for t, e in ev.episodes.items() if hops.get(t) == h]
        by_hop[str(h)] = _iv(hits, seed=h)
    return PhaseFigures(
        phase=ev.path.name,
        accuracy=_iv([float(e.reward.correct) for e in eps], seed=0),
        faithful=_iv([float(e.reward.faithful) for e in eps], seed=1),
        format_failure=_iv([float(not e.reward.format_ok) for e in eps], seed=2),
        by_hop=by_hop,
    )


def _eval_items(data_dir: Path) -> list[dict]:
    """The run's eval items as dicts (DATA/eval.jsonl), or none when it has no such file."""
    try:
        with (data_dir / "eval.jsonl").open(encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError):
        return []


def _chance(items: list[dict], metrics: dict | None = None) -> float | None:
    """The expected accuracy of a random pick: the evaluation's own figure when it states one (a
    family without options: one in the number of entities), else the mean over the eval items of
    1 / their options."""
    if metrics and isinstance(metrics.get("chance"), int | float):
        return float(metrics["chance"])
    shares = [1.0 / len(it["options"]) for it in items
              if isinstance(it, dict) and isinstance(it.get("options"), dict) and it["options"]]
    return sum(shares) / len(shares) if shares else None


def _references(metrics: dict) -> tuple[dict | None, dict | None]:
    """The strongest shortcut baseline (by mean accuracy, with its registered description) and the
    KG oracle, from an evaluation's `references` as evaluate.runner writes them."""
    from kgreason.evaluate.references import oracle_row, strongest_shortcut

    refs = metrics.get("references")
    oracle = (oracle_row(refs) or {}).get("accuracy")
    best = strongest_shortcut(refs)
    if best is None or not isinstance(best[1].get("accuracy"), dict):
        return None, _share(oracle)
    name, row = best
    from kgreason.tasks.baselines import BASELINES

    description = BASELINES.get(name).description if name in BASELINES else name
    return {"name": name, "description": description, "accuracy": _share(row["accuracy"])}, _share(oracle)


def _share(stored: Any) -> dict | None:
    """A stored share interval as it should read (kgreason.stats.share_record: made Wilson where an
    old bootstrap collapsed it at 0/n or n/n; kept otherwise: a shortcut's ties score 1/k)."""
    from kgreason.stats import share_record

    return share_record(stored) if isinstance(stored, dict) else None


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _ci(iv: dict) -> str:
    return f"{_pct(iv['mean'])} [{100 * iv['low']:.1f}, {100 * iv['high']:.1f}]"


def _hop_words(hops: list[str]) -> str:
    if not hops:
        return ""
    ints = sorted(int(h) for h in hops)
    return f"{ints[0]}-{ints[-1]} hop " if len(ints) > 1 else f"{ints[0]}-hop "


def compose_sentence(h: Headline) -> str:
    """The sentence from the figures (kept apart so a test can check each wording)."""
    figures = {p.phase: p for p in h.phases}
    if not h.phases:
        if h.unreadable:
            return f"Run {h.run}'s evaluations could not be read: {', '.join(f'eval/{u}' for u in h.unreadable)}."
        return f"Run {h.run} has no held-out evaluation yet."
    hop = _hop_words(h.hops)
    if h.final is None:  # only the base model was evaluated
        p = h.phases[-1]
        return (f"Only {phase_name(p.phase)} has been evaluated so far: "
                f"{_ci(p.accuracy)} on held-out {hop}items, {_pct(p.format_failure['mean'])} of them without a "
                f"readable answer.")
    fin = figures[h.final]
    name = phase_name(h.final)
    parts: list[str] = []
    if h.baseline_phase and h.gain and h.gain.get("n"):
        before = figures[h.baseline_phase]
        g = h.gain
        diff = f"paired {100 * g['diff']:+.1f} points [{100 * g['low']:+.1f}, {100 * g['high']:+.1f}], n={g['n']}"
        # the accuracies beside a paired gain are over the items it is about
        acc_before, acc_final = (h.shared["before"], h.shared["final"]) if h.shared else (before.accuracy, fin.accuracy)
        where = f" on the {h.shared['n']} items both answered" if h.shared else ""
        was = f"{_ci(acc_before)} after {phase_name(h.baseline_phase)}"
        if phase_stem(h.baseline_phase) in UNTRAINED:
            was = f"{_ci(acc_before)} for {phase_name(h.baseline_phase)}"
        if g["low"] > 0:
            parts.append(f"{name} lifts held-out {hop}accuracy{where} from {was} to {_ci(acc_final)} ({diff})")
        elif g["high"] < 0:
            parts.append(f"{name} lowers held-out {hop}accuracy{where} from {was} to {_ci(acc_final)} ({diff})")
        else:
            parts.append(f"{name} does not measurably change held-out {hop}accuracy{where}: {was}, "
                         f"{_ci(acc_final)} after it ({diff}; the interval includes 0)")
    else:
        parts.append(f"{name} scores {_ci(fin.accuracy)} accuracy on held-out {hop}items")
    if h.shortcut:
        sc = h.shortcut["accuracy"]
        margin = 100 * (fin.accuracy["low"] - sc["mean"])
        rule = f"the strongest shortcut ({h.shortcut['description']}: {_pct(sc['mean'])})"
        if margin > 0:
            parts.append(f"its lower bound is {margin:.1f} points above {rule}")
        else:
            parts.append(f"it does not clear {rule}")
    if h.chance is not None:
        parts.append(f"chance is {_pct(h.chance)}")
    parts.append(f"{_pct(fin.faithful['mean'])} of its traces are faithful")
    if fin.format_failure["mean"] > 0.05:
        parts.append(f"{_pct(fin.format_failure['mean'])} give no readable answer")
    if h.oracle:
        parts.append(f"the KG oracle scores {_pct(h.oracle['mean'])}")
    if h.unreadable:
        parts.append(f"not counted: {', '.join(f'eval/{u}' for u in h.unreadable)}, whose files could not be read")
    return "; ".join(parts) + "."


def _pipeline_rank(folder: str) -> tuple[int, str]:
    stem = phase_stem(folder)
    order = phase_order()
    return (order.index(stem) if stem in order else len(order), folder)


def run_headline(run_dir: str | Path, seed: int = 0, n_resamples: int = 2000,
                 data_dir: str | Path | None = None) -> Headline:
    """The headline of the run folder `run_dir` (the phases it has evaluated, in pipeline order
    whatever summary.json says or lacks: without one, folders list alphabetically, grpo before sft).
    `data_dir` holds eval.jsonl (default run_dir/data; an experiment arm's is its experiment's).
    A folder whose files cannot be read is named in the sentence, not silently left out."""
    root = Path(run_dir)
    evals, unreadable = [], []
    folders = sorted(p for p in (root / "eval").glob("*") if (p / METRICS).is_file()) if (root / "eval").is_dir() else []
    for folder in folders:
        try:
            evals.append(load_eval(folder, f"{root.name}/{folder.name}"))
        except (InputError, KeyError, TypeError, ValueError):
            unreadable.append(folder.name)
    # an evaluation with no answers yet (an empty predictions.jsonl) has no figures to state
    evals = sorted((e for e in evals if e.path.parent.name == "eval" and e.episodes),
                   key=lambda e: _pipeline_rank(e.path.name))
    phases = [_figures(e) for e in evals]
    trained = [e for e in evals if phase_stem(e.path.name) not in UNTRAINED]
    final = trained[-1] if trained else None
    before = evals[evals.index(final) - 1] if final is not None and evals.index(final) > 0 else None
    gain = shared = None
    if final is not None and before is not None:
        gain = paired_difference(before, final, "correct", seed=seed, n_resamples=n_resamples).to_dict()
        common = [t for t in before.episodes if t in final.episodes]
        if not len(common) == len(before.episodes) == len(final.episodes):
            shared = {"n": len(common),
                      "before": _iv([float(before.episodes[t].reward.correct) for t in common], seed=0),
                      "final": _iv([float(final.episodes[t].reward.correct) for t in common], seed=0)}
    shortcut, oracle = _references((final or evals[-1]).metrics if evals else {})
    items = _eval_items(Path(data_dir) if data_dir is not None else root / "data")
    # the hops of the items the sentence is about: metrics.json records them per item; an
    # evaluation written without them has its tasks' own
    about = final or (evals[-1] if evals else None)
    hop_of = {it.get("id"): it.get("hop_len") for it in items if isinstance(it, dict)}
    hop_values = set(about.hops.values()) if about is not None and about.hops else (
        {hop_of.get(t) for t in about.episodes} if about is not None else set())
    hops = [str(h) for h in sorted(h for h in hop_values if isinstance(h, int))]
    head = Headline(run=root.name, phases=phases, final=final.path.name if final else None,
                    baseline_phase=before.path.name if before is not None else None, gain=gain,
                    chance=_chance(items, (final or evals[-1]).metrics if evals else None), shortcut=shortcut, oracle=oracle, hops=hops, sentence="",
                    shared=shared, unreadable=unreadable)
    try:
        found = diagnose(root, head, list(final.episodes.values()) if final is not None else None,
                         (final.hops or {t: h for t, h in hop_of.items() if isinstance(h, int)}) if final is not None
                         else {}, items)
    except (KeyError, TypeError, ValueError, AttributeError):  # a malformed file costs the diagnosis, not the headline
        found = None
    return Headline(**{**head.__dict__, "sentence": compose_sentence(head),
                       "diagnosis": found.to_dict() if found is not None else None})
