"""Markdown reports and PNG plots (matplotlib, Agg backend) for evaluations and experiments.

Reports are meant to be read on their own, in a terminal or a Git host, without the web demo:
every number in a table carries its interval and item count, and every plot is referenced from
report.md by a relative path.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kgreason.evaluate.bootstrap import Interval
from kgreason.io import atomic_write_text

ACCURACY_PNG = "accuracy_by_hop.png"
CONFUSION_PNG = "confusion_2x2.png"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display; safe in CI and under ssh
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> None:
    """Write the figure to a temp file in the same folder, then rename (no half-written PNGs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    os.replace(tmp, path)
    _pyplot().close(fig)


def pct(iv: Mapping[str, Any] | Interval | None, digits: int = 1) -> str:
    """'37.5% [30.1, 44.9] (n=120)' from an Interval or its dict."""
    if iv is None:
        return "–"
    if not isinstance(iv, Interval):
        iv = Interval.from_dict(dict(iv))
    return iv.fmt(percent=True, digits=digits)


def num(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.{digits}f}"


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(str(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# --- plots --------------------------------------------------------------------------------------
def plot_accuracy_by_hop(
    series: Mapping[str, Mapping[str, Mapping[str, Any]]], path: str | os.PathLike, title: str,
    chance: float | None = 0.25,
) -> Path:
    """Grouped bars: for each series (a model, an arm, a reference row) accuracy per hop with its
    95% interval as an error bar. `series[label][hop] = {"mean", "low", "high", "n"}`. `chance`: the
    dotted line (multiple choice's 1 in 4 by default)."""
    plt = _pyplot()
    hops = sorted({int(h) for by_hop in series.values() for h in by_hop})
    labels = list(series)
    width = 0.8 / max(1, len(labels))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.3 * len(hops) * max(1, len(labels)) ** 0.5 + 2), 3.6))
    for k, label in enumerate(labels):
        xs, ys, err_lo, err_hi = [], [], [], []
        for i, h in enumerate(hops):
            iv = series[label].get(str(h))
            if not iv or not iv.get("n"):
                continue
            xs.append(i - 0.4 + width * (k + 0.5))
            ys.append(100 * iv["mean"])
            err_lo.append(100 * (iv["mean"] - iv["low"]))
            err_hi.append(100 * (iv["high"] - iv["mean"]))
        ax.bar(xs, ys, width=width * 0.95, label=label, yerr=[err_lo, err_hi], capsize=2)
    if chance is not None:
        ax.axhline(100 * chance, color="grey", linestyle=":", linewidth=1,
                   label="chance (4 options)" if chance == 0.25 else f"chance ({100 * chance:.2g}%)")
    ax.set_xticks(range(len(hops)), [f"{h} hop{'s' if h > 1 else ''}" for h in hops])
    ax.set_ylim(0, 105)
    ax.set_ylabel("accuracy (%), 95% CI")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    out = Path(path)
    _save(fig, out)
    return out


def plot_confusion(counts: Mapping[str, int], path: str | os.PathLike, title: str) -> Path:
    """The (answer correct) x (trace faithful) table as an annotated heatmap of shares."""
    plt = _pyplot()
    grid = [
        [counts.get("correct_faithful", 0), counts.get("correct_unfaithful", 0)],
        [counts.get("wrong_faithful", 0), counts.get("wrong_unfaithful", 0)],
    ]
    total = sum(map(sum, grid)) or 1
    fig, ax = plt.subplots(figsize=(3.8, 3.2))
    ax.imshow([[c / total for c in row] for row in grid], cmap="Blues", vmin=0, vmax=1)
    for r in range(2):
        for c in range(2):
            share = grid[r][c] / total
            ax.text(c, r, f"{grid[r][c]}\n{100 * share:.1f}%", ha="center", va="center",
                    color="white" if share > 0.5 else "black")
    ax.set_xticks([0, 1], ["faithful trace", "unfaithful trace"])
    ax.set_yticks([0, 1], ["correct answer", "wrong answer"])
    ax.set_title(title, fontsize=9)
    out = Path(path)
    _save(fig, out)
    return out


# --- the eval report ----------------------------------------------------------------------------
def eval_tables(m: Mapping[str, Any]) -> str:
    """The markdown body of one evaluation (shared by report.md and `eval --compare`)."""
    hops = sorted(m.get("by_hop", {}), key=int)
    parts = []
    rows = [["model", pct(m["accuracy"]), *(pct(m["by_hop"].get(h)) for h in hops)]]
    for name, ref in (m.get("references") or {}).items():
        rows.append([name, pct(ref["accuracy"]), *(pct(ref["by_hop"].get(h)) for h in hops)])
    # a metrics.json from before shares got Wilson intervals says so in its heading
    method = "Wilson score" if (m.get("bootstrap") or {}).get("shares") == "wilson" else "percentile-bootstrap"
    parts.append(f"## Accuracy (95% {method} intervals)\n\n"
                 + md_table(["", "all", *(f"{h} hops" for h in hops)], rows))
    t = m.get("trace", {})
    parts.append("## Format and trace\n\n" + md_table(["metric", "value"], [
        ["format failures", pct(m.get("format_failure_rate"))],
        ["path coverage (mean share of gold-path entities named)", pct(t.get("path_coverage"))],
        ["claimed hops that are real KG edges (pooled)", pct(t.get("valid_hop_share"))],
        ["faithful chains (start → chosen answer along the stated relations)", pct(t.get("faithful_share"))],
        ["mean reward", num(m.get("mean_reward"))],
    ]))
    lengths = m.get("trace_length_by_hop") or {}
    if lengths:  # absent from metrics.json files written before it was measured
        parts.append("## Trace length against the hops asked\n\n" + md_table(
            ["hops asked", "items", "claims exactly that many", "fewer", "more", "median claimed"],
            [[h, v["n"], pct(v["exact"]), f"{100 * v['short']:.1f}%", f"{100 * v['long']:.1f}%", f"{v['median']:g}"]
             for h, v in sorted(lengths.items(), key=lambda kv: int(kv[0]))]))
    c, r = m.get("confusion", {}), m.get("confusion_rates", {})
    parts.append("## Answer correct × trace faithful\n\n" + md_table(["", "faithful", "unfaithful"], [
        ["correct", c.get("correct_faithful", 0), c.get("correct_unfaithful", 0)],
        ["wrong", c.get("wrong_faithful", 0), c.get("wrong_unfaithful", 0)],
    ]) + f"\n\nP(correct | faithful) = {num(r.get('p_correct_given_faithful'))}, "
        f"P(correct | unfaithful) = {num(r.get('p_correct_given_unfaithful'))}, "
        f"P(faithful | correct) = {num(r.get('p_faithful_given_correct'))}.")
    s = m.get("shuffle")
    if s:
        d = s["difference"]
        parts.append(
            "## Shuffle robustness (options deranged: the correct letter always moves)\n\n"
            + md_table(["metric", "value"], [
                ["accuracy, original order", pct(s["accuracy_original"])],
                ["accuracy, shuffled", pct(s["accuracy_shuffled"])],
                ["paired difference (shuffled − original)",
                 f"{100 * d['diff']:+.1f} pts [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}], p={num(d['p_value'], 3)}"],
                ["items whose chosen entity changed", pct(s["entity_changed_share"])],
                ["items whose correct letter moved", num(s.get("correct_letter_moved_share"), 3)],
            ]))
    dr = m.get("drift")
    if dr:
        entropy = (f" Next-token entropy along the same tokens: {dr['mean_entropy']:.3f} nats (model), "
                   f"{dr['base_mean_entropy']:.3f} (base)." if dr.get("mean_entropy") is not None else "")
        parts.append(f"## Drift from the base model\n\nmean per-token KL(model ‖ base) = {dr['mean_kl']:.3g} nats "
                     f"over {dr['tokens']} tokens of {dr['items']} items ({dr['method']}).{entropy}")
    elif "drift_note" in m:
        parts.append(f"## Drift from the base model\n\n{m['drift_note']}")
    return "\n\n".join(parts)


def _interval_methods(b: Mapping[str, Any]) -> str:
    """How the report's 95% intervals were computed; files written before shares got Wilson
    intervals have no "shares" key and used the bootstrap for everything."""
    boot = f"{b['method']} bootstrap, {b['n_resamples']} resamples, seed {b['seed']}"
    if b.get("shares") == "wilson":
        return f"Wilson score for shares (accuracy, faithful, format failures); {boot} for other means and differences"
    return boot


def write_eval_report(out_dir: str | os.PathLike, m: Mapping[str, Any], plots: bool = True) -> Path:
    """report.md (+ accuracy_by_hop.png, confusion_2x2.png) for one evaluation."""
    out = Path(out_dir)
    head = [f"# Evaluation: {m.get('model', '?')}" + (f" + {m['adapter']}" if m.get("adapter") else "")]
    head.append(md_table(["", ""], [
        ["tasks", f"{m.get('tasks_file', '–')} ({m['n_items']} items scored of {m.get('n_tasks', m['n_items'])})"],
        ["decoding", m.get("decoding", "greedy")],
        ["reward preset", m.get("reward_preset", "–")],
        ["intervals", _interval_methods(m["bootstrap"])],
        ["wall seconds", num(m.get("wall_seconds"), 1)],
    ]))
    images = []
    if plots and m["n_items"]:
        series = {"model": m["by_hop"]}
        for name, ref in (m.get("references") or {}).items():
            series[name] = ref["by_hop"]
        plot_accuracy_by_hop(series, out / ACCURACY_PNG, "Accuracy by hop count", m.get("chance", 0.25))
        plot_confusion(m["confusion"], out / CONFUSION_PNG, "answer correct × trace faithful")
        images = [f"![accuracy by hop]({ACCURACY_PNG})", f"![2x2 table]({CONFUSION_PNG})"]
    text = "\n\n".join([*head, eval_tables(m), *images]) + "\n"
    atomic_write_text(out / "report.md", text)
    return out / "report.md"


def plot_confusion_grid(tables: Mapping[str, Mapping[str, int]], path: str | os.PathLike, title: str) -> Path:
    """One small 2x2 heatmap per label (e.g. per experiment arm), side by side."""
    plt = _pyplot()
    labels = list(tables)
    cols = min(4, max(1, len(labels)))
    rows = (len(labels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.1 * cols, 2.8 * rows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= len(labels):
            ax.axis("off")
            continue
        c = tables[labels[k]]
        grid = [[c.get("correct_faithful", 0), c.get("correct_unfaithful", 0)],
                [c.get("wrong_faithful", 0), c.get("wrong_unfaithful", 0)]]
        total = sum(map(sum, grid)) or 1
        ax.imshow([[v / total for v in row] for row in grid], cmap="Blues", vmin=0, vmax=1)
        for r in range(2):
            for cc in range(2):
                share = grid[r][cc] / total
                ax.text(cc, r, f"{grid[r][cc]}\n{100 * share:.0f}%", ha="center", va="center", fontsize=8,
                        color="white" if share > 0.5 else "black")
        ax.set_xticks([0, 1], ["faithful", "unfaithful"], fontsize=7)
        ax.set_yticks([0, 1], ["correct", "wrong"], fontsize=7)
        ax.set_title(labels[k], fontsize=8)
    fig.suptitle(title, fontsize=10)
    out = Path(path)
    _save(fig, out)
    return out


def plot_curve_panels(
    panels: Mapping[str, tuple[str, Mapping[str, Sequence[Sequence[float]]]]], path: str | os.PathLike
) -> Path | None:
    """Several line plots in one figure: panels[title] = (x label, {series label: [[x, y], ...]})."""
    panels = {t: (xl, {k: v for k, v in s.items() if v}) for t, (xl, s) in panels.items()}
    panels = {t: p for t, p in panels.items() if p[1]}
    if not panels:
        return None
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.2), squeeze=False)
    for ax, (title, (xlabel, series)) in zip(axes.flat, panels.items(), strict=True):
        for label, points in series.items():
            xs = [p[0] for p in points]
            ys = [p[1] for p in points]
            ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3, label=label)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps and rounds are whole numbers
        ax.legend(fontsize=6)
    out = Path(path)
    _save(fig, out)
    return out
