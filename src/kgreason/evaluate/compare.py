"""`kgreason eval --compare A B ...`: evaluations side by side, with paired bootstrap differences.

Each argument is an eval folder (metrics.json + predictions.jsonl), a run folder, whose
eval/<phase>/ folders all become columns (in the order summary.json lists the phases), or an
experiment folder (every finished arm-seed run). Every
column is compared with the first on the items both answered: the difference is paired by item,
so it is far tighter than the difference of two independent intervals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kgreason.evaluate.bootstrap import DEFAULT_RESAMPLES, PairedDifference, paired_bootstrap_difference
from kgreason.evaluate.report import md_table, num, pct
from kgreason.evaluate.runner import METRICS, PREDICTIONS, read_episodes
from kgreason.io import InputError, read_json
from kgreason.records import Episode


@dataclass
class LoadedEval:
    label: str
    path: Path
    metrics: dict
    episodes: dict[str, Episode]

    @property
    def hops(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.metrics.get("item_hops", {}).items()}


def load_eval(folder: Path, label: str) -> LoadedEval:
    metrics = read_json(folder / METRICS)
    return LoadedEval(label, folder, metrics, read_episodes(folder / PREDICTIONS))


def load_evals(path: str | Path) -> list[LoadedEval]:
    """One eval folder, every evaluated phase of a run folder, or every arm-seed of an experiment folder."""
    p = Path(path)
    if (p / METRICS).is_file():
        return [load_eval(p, p.name if p.parent.name != "eval" else f"{p.parent.parent.name}/{p.name}")]
    eval_root = p / "eval"
    if eval_root.is_dir():
        phases = [d for d in eval_root.iterdir() if (d / METRICS).is_file()]
        order: list[str] = []
        if (p / "summary.json").is_file():
            order = list(read_json(p / "summary.json").get("phases", {}))
        def rank(d: Path) -> tuple[int, str]:
            # summary.json names an evaluation either by its folder or as "<phase>_eval" (kgreason run)
            for name in (d.name, f"{d.name}_eval"):
                if name in order:
                    return order.index(name), d.name
            return len(order), d.name

        phases.sort(key=rank)
        if phases:
            return [load_eval(d, f"{p.name}/{d.name}") for d in phases]
    if (p / "experiment.json").is_file() and (p / "runs").is_dir():  # an experiment: every finished arm-seed
        found = [e for run in sorted((p / "runs").iterdir()) if (run / "eval").is_dir() for e in load_evals(run)]
        if found:
            return found
    raise InputError(f"{p}: neither an eval folder (no {METRICS}) nor a run folder with eval/<phase>/{METRICS}")


def paired_difference(a: LoadedEval, b: LoadedEval, field: str, hop: int | None = None, seed: int = 0,
                      n_resamples: int = DEFAULT_RESAMPLES) -> PairedDifference:
    """b minus a on the items both answered (optionally those of `hop` hops), paired by item;
    `field` is a RewardBreakdown field read as 0/1 or a number (correct, faithful, total)."""
    shared = [t for t in a.episodes if t in b.episodes and (hop is None or a.hops.get(t) == hop)]
    xa = [float(getattr(a.episodes[t].reward, field)) for t in shared]
    xb = [float(getattr(b.episodes[t].reward, field)) for t in shared]
    return paired_bootstrap_difference(xa, xb, seed=seed, n_resamples=n_resamples)


def _kl(x: float | None) -> str:
    return "–" if x is None else f"{x:.3g}"


def _fmt_diff(d) -> str:
    if d.n == 0:
        return "– (no shared items)"
    return f"{100 * d.diff:+.1f} pts [{100 * d.low:+.1f}, {100 * d.high:+.1f}] p={d.p_value:.3f} (n={d.n})"


def compare_markdown(evals: Sequence[LoadedEval], seed: int = 0, n_resamples: int = DEFAULT_RESAMPLES) -> str:
    """Side-by-side table of headline metrics, then paired differences of each run vs the first."""
    if len(evals) < 2:
        raise InputError("--compare needs at least two evaluations (eval folders or run folders)")
    hops = sorted({int(h) for e in evals for h in e.metrics.get("by_hop", {})})
    labels = [e.label for e in evals]

    def row(name: str, get) -> list[str]:
        return [name, *(get(e.metrics) for e in evals)]

    rows = [
        row("accuracy", lambda m: pct(m.get("accuracy"))),
        *(row(f"accuracy, {h} hops", lambda m, h=h: pct(m.get("by_hop", {}).get(str(h)))) for h in hops),
        row("format failures", lambda m: pct(m.get("format_failure_rate"))),
        row("faithful chains", lambda m: pct(m.get("trace", {}).get("faithful_share"))),
        row("real-edge share of claimed hops", lambda m: pct(m.get("trace", {}).get("valid_hop_share"))),
        row("path coverage", lambda m: pct(m.get("trace", {}).get("path_coverage"))),
        row("accuracy, shuffled options", lambda m: pct((m.get("shuffle") or {}).get("accuracy_shuffled"))),
        row("drift KL (nats/token)", lambda m: _kl((m.get("drift") or {}).get("mean_kl"))),
        row("mean reward", lambda m: num(m.get("mean_reward"))),
    ]
    parts = ["# Comparison", md_table(["metric", *labels], rows)]
    base = evals[0]
    diff_rows = []
    for other in evals[1:]:
        diff_rows.append([f"{other.label} − {base.label}", "accuracy",
                          _fmt_diff(paired_difference(base, other, "correct", None, seed, n_resamples))])
        for h in hops:
            diff_rows.append(["", f"accuracy, {h} hops",
                              _fmt_diff(paired_difference(base, other, "correct", h, seed + h, n_resamples))])
        diff_rows.append(["", "faithful chains",
                          _fmt_diff(paired_difference(base, other, "faithful", None, seed + 99, n_resamples))])
    parts.append("## Paired bootstrap differences (same items, 95% percentile intervals)\n\n"
                 + md_table(["runs", "metric", "difference"], diff_rows))
    return "\n\n".join(parts) + "\n"
