"""An experiment's results: per arm over its seeds (item-bootstrap intervals, the seed spread,
paired differences vs SFT and vs the arm each is compared to, training curves) into results.json,
and report.md with its plots, ending with one sentence per compared arm that answers the grid's
question with its interval. Reads finished arm-seed folders only, so it also serves `--report-only`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kgreason.experiments.arms import ARM_FILE, EVAL_PHASE, Arm, grid_reference, run_dir, seeds_for
from kgreason.io import atomic_write_json, read_json
from kgreason.options import to_dict
from kgreason.phases import PHASES

RESULTS_FILE = "results.json"


# --- aggregation ---------------------------------------------------------------------------------------
@dataclass
class SeedResult:
    seed: int
    folder: Path
    metrics: dict
    correct: dict[str, float]  # task id -> 0/1
    faithful: dict[str, float]
    format_fail: dict[str, float]
    # task id -> the model's mean per-token entropy along its greedy answer (eval/final/drift.jsonl;
    # empty when drift was not measured: `kgreason experiment GRID --drift` adds it)
    entropy: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0
    cpu: str = ""  # the CPU it trained on (arm.json; empty for arm-seeds finished before it was recorded)
    copied_from: str = ""  # the arm-seed folder of another experiment it was copied from (experiments/share.py)


def _load_seed(out: Path, arm: Arm, seed: int) -> SeedResult | None:
    from kgreason.evaluate.runner import METRICS, PREDICTIONS, read_drift_items, read_episodes

    folder = run_dir(out, arm, seed)
    if not (folder / ARM_FILE).is_file():
        return None
    eval_dir = folder / "eval" / EVAL_PHASE
    episodes = read_episodes(eval_dir / PREDICTIONS)
    record = read_json(folder / ARM_FILE)
    return SeedResult(
        seed=seed, folder=folder, metrics=read_json(eval_dir / METRICS),
        correct={k: float(e.reward.correct) for k, e in episodes.items()},
        faithful={k: float(e.reward.faithful) for k, e in episodes.items()},
        format_fail={k: float(not e.reward.format_ok) for k, e in episodes.items()},
        entropy={k: float(row["entropy"]) for k, row in read_drift_items(eval_dir).items()},
        wall_s=float(record.get("wall_s", 0.0)), cpu=str(record.get("cpu", "")),
        copied_from=str(record.get("copied_from") or ""),
    )


def _per_item_mean(seeds: list[SeedResult], field_name: str, ids: Sequence[str]) -> dict[str, float]:
    """Per item, the mean over the seeds that answered it."""
    out: dict[str, float] = {}
    for tid in ids:
        vals = [getattr(s, field_name)[tid] for s in seeds if tid in getattr(s, field_name)]
        if vals:
            out[tid] = sum(vals) / len(vals)
    return out


def _interval(values: dict[str, float], ids: Sequence[str], seed: int, n_resamples: int,
              per_seed: list[float] | None = None) -> dict:
    import numpy as np

    from kgreason.evaluate.bootstrap import bootstrap_mean

    iv = bootstrap_mean([values[t] for t in ids if t in values], seed=seed, n_resamples=n_resamples).to_dict()
    if per_seed is not None:
        iv["per_seed"] = per_seed
        known = [v for v in per_seed if v is not None]
        iv["seed_std"] = float(np.std(known, ddof=1)) if len(known) > 1 else None
    return iv


def _curves(seeds: list[SeedResult]) -> dict[str, list[list[float]]]:
    """Training curves from the runs' metrics.jsonl, averaged over seeds at each x.

    sft_loss: SFT loss per optimizer step; rsft_pass_rate / rsft_reward: per RSFT round, the mean
    pass rate over k samples and the mean sample reward; grpo_reward: GRPO mean reward per logged step.
    """
    from kgreason.runs.folder import Run

    acc: dict[str, dict[float, list[float]]] = {}

    def add(name: str, x: float, y: Any) -> None:
        if isinstance(y, (int, float)) and not isinstance(y, bool):
            acc.setdefault(name, {}).setdefault(float(x), []).append(float(y))

    curves = {p.name: p.curves for p in PHASES.values()}  # kgreason/phases.py: what each phase logs
    for s in seeds:
        for rec in Run(s.folder).read_metrics():
            for name, x_key, y_key in curves.get(rec.get("phase"), ()):
                if y_key in rec and x_key in rec:
                    add(name, rec[x_key], rec[y_key])
    return {name: [[x, sum(ys) / len(ys)] for x, ys in sorted(points.items())] for name, points in acc.items()}


def arm_result(arm: Arm, seeds: list[SeedResult], hops: dict[str, int], n_resamples: int) -> dict:
    ids = list(hops)
    by_hop_ids: dict[int, list[str]] = {}
    for tid, h in hops.items():
        by_hop_ids.setdefault(h, []).append(tid)
    correct = _per_item_mean(seeds, "correct", ids)
    per_seed_acc = [s.metrics["accuracy"]["mean"] for s in seeds]
    drifts = [(s.metrics.get("drift") or {}).get("mean_kl") for s in seeds]
    drift_vals = [d for d in drifts if d is not None]
    confusion: dict[str, int] = {}
    for s in seeds:
        for k, v in s.metrics.get("confusion", {}).items():
            confusion[k] = confusion.get(k, 0) + int(v)
    shuffled = [s.metrics["shuffle"]["accuracy_shuffled"]["mean"] for s in seeds if s.metrics.get("shuffle")]
    changed = [s.metrics["shuffle"]["entity_changed_share"]["mean"] for s in seeds if s.metrics.get("shuffle")]
    return {
        "name": arm.name, "label": arm.label, "kind": arm.kind, "description": arm.description,
        "compare_to": arm.compare_to, "overrides": dict(arm.overrides),
        "seeds_done": [s.seed for s in seeds],
        "accuracy": _interval(correct, ids, 0, n_resamples, per_seed_acc),
        "by_hop": {str(h): _interval(correct, t, h, n_resamples,
                                     [s.metrics["by_hop"].get(str(h), {}).get("mean") for s in seeds])
                   for h, t in sorted(by_hop_ids.items())},
        "faithful_share": _interval(_per_item_mean(seeds, "faithful", ids), ids, 1, n_resamples,
                                    [s.metrics["trace"]["faithful_share"]["mean"] for s in seeds]),
        "format_failure_rate": _interval(_per_item_mean(seeds, "format_fail", ids), ids, 2, n_resamples),
        # only when every seed measured it: a mean over some seeds would not pair with another arm's
        # per_seed: each seed's mean over items (not metrics.json's token-weighted mean), like the interval
        "entropy": (_interval(_per_item_mean(seeds, "entropy", ids), ids, 3, n_resamples,
                              [sum(s.entropy.values()) / len(s.entropy) for s in seeds])
                    if all(s.entropy for s in seeds) else None),
        "drift_kl": ({"mean": 0.0, "per_seed": [0.0], "note": "the base model itself"} if arm.kind == "base"
                     else {"mean": sum(drift_vals) / len(drift_vals), "per_seed": drift_vals} if drift_vals else None),
        "confusion": confusion,
        "shuffle": {"accuracy_shuffled": sum(shuffled) / len(shuffled), "entity_changed_share": sum(changed) / len(changed)}
        if shuffled else None,
        "mean_reward": _mean([s.metrics.get("mean_reward") for s in seeds]),
        # a copied arm-seed trained once, in the experiment it was copied from: not counted again
        "wall_s": round(sum(s.wall_s for s in seeds if not s.copied_from), 1),
        "copied": {str(s.seed): s.copied_from for s in seeds if s.copied_from},
        "cpus": sorted({s.cpu for s in seeds if s.cpu}),
        "runs": [str(s.folder.relative_to(s.folder.parent.parent)) for s in seeds],
        "curves": _curves(seeds),
        "_correct": correct,  # dropped before writing; used for paired differences
        "_seeds": seeds,  # dropped before writing; per-seed paired differences
    }


def _mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def vs_reference(arm: dict, ref: dict, hops: dict[str, int], n_resamples: int) -> dict:
    from kgreason.evaluate.bootstrap import paired_bootstrap_difference

    # Paired by seed too: only the seeds both arms finished (a partial experiment or --report-only
    # may hold more seeds of one arm than of the other), each item averaged over those seeds.
    mine, theirs = arm["_correct"], ref["_correct"]
    seeds = {s.seed for s in arm.get("_seeds", [])} & {s.seed for s in ref.get("_seeds", [])}
    if seeds and ({s.seed for s in arm["_seeds"]} != seeds or {s.seed for s in ref["_seeds"]} != seeds):
        mine = _per_item_mean([s for s in arm["_seeds"] if s.seed in seeds], "correct", list(hops))
        theirs = _per_item_mean([s for s in ref["_seeds"] if s.seed in seeds], "correct", list(hops))

    def diff(ids: list[str], seed: int, a: dict[str, float] = mine, b: dict[str, float] = theirs) -> dict:
        shared = [t for t in ids if t in a and t in b]
        return paired_bootstrap_difference([b[t] for t in shared], [a[t] for t in shared],
                                           seed=seed, n_resamples=n_resamples).to_dict()

    by_hop: dict[int, list[str]] = {}
    for tid, h in hops.items():
        by_hop.setdefault(h, []).append(tid)
    out = {"reference": ref["name"], "seeds": sorted(seeds), "accuracy": diff(list(hops), 0),
           "by_hop": {str(h): diff(ids, h) for h, ids in sorted(by_hop.items())}}
    # Entropy is paired only over seeds on which both arms measured it, and only when those are
    # all the shared seeds (a partial pairing would mix seeds into one arm's side only).
    both = [s for s in arm.get("_seeds", []) if s.seed in seeds and s.entropy]
    other = [s for s in ref.get("_seeds", []) if s.seed in seeds and s.entropy]
    if seeds and len(both) == len(other) == len(seeds):
        out["entropy"] = diff(list(hops), 3, _per_item_mean(both, "entropy", list(hops)),
                              _per_item_mean(other, "entropy", list(hops)))
    return out


def per_seed_rows(arm: dict, sft: dict | None, n_resamples: int, ref: dict | None = None) -> list[dict]:
    """Each seed on its own: accuracy and faithful share with Wilson intervals, and the
    paired difference from the SFT model of the same seed (the adapter this arm started from) and
    from the arm it is compared to (`ref`, same seed), so a reader can see whether the conclusion
    holds seed by seed, not only on the seed average."""
    from kgreason.evaluate.bootstrap import bootstrap_mean, paired_bootstrap_difference

    sft_by_seed = {s.seed: s for s in sft["_seeds"]} if sft and sft is not arm else {}
    ref_by_seed = {s.seed: s for s in ref["_seeds"]} if ref and ref is not arm else {}
    rows = []
    for s in arm["_seeds"]:
        ids = sorted(s.correct)
        row = {"seed": s.seed, "run": str(s.folder.relative_to(s.folder.parent.parent)),
               "accuracy": bootstrap_mean([s.correct[t] for t in ids], seed=s.seed, n_resamples=n_resamples).to_dict(),
               "faithful_share": bootstrap_mean([s.faithful[t] for t in ids if t in s.faithful], seed=s.seed,
                                                n_resamples=n_resamples).to_dict(),
               "vs_sft": None, "vs_compare": None}
        for key, other in (("vs_sft", sft_by_seed.get(s.seed)), ("vs_compare", ref_by_seed.get(s.seed))):
            if other is not None:
                shared = [t for t in ids if t in other.correct]
                row[key] = paired_bootstrap_difference([other.correct[t] for t in shared],
                                                       [s.correct[t] for t in shared],
                                                       seed=s.seed, n_resamples=n_resamples).to_dict()
                both = [t for t in ids if t in s.entropy and t in other.entropy]
                if both:  # the same seed's entropy difference, item by item (what the pooled figure averages)
                    row[key]["entropy"] = paired_bootstrap_difference(
                        [other.entropy[t] for t in both], [s.entropy[t] for t in both], seed=s.seed,
                        n_resamples=n_resamples).to_dict()
        if s.copied_from:
            row["copied_from"] = s.copied_from
        rows.append(row)
    return rows


def aggregate(out: Path, arms: Sequence[Arm], exp: Any, eval_tasks: Sequence[Any]) -> dict:
    # exp: distribution.Experiment (not imported: distribution imports this module)
    """results.json: per arm, mean accuracy (overall, per hop) with item-bootstrap intervals, the seed
    spread, faithfulness, drift, the summed 2x2 table, training curves, and paired differences vs SFT."""
    from kgreason.runs.folder import now_iso

    hops = {t.id: int(t.hop_len) for t in eval_tasks}
    arm_rows: list[dict] = []
    references: dict | None = None
    chance: float | None = None
    for arm in arms:
        seeds = [r for r in (_load_seed(out, arm, s) for s in seeds_for(arm, exp.seeds)) if r is not None]
        if not seeds:
            continue
        references = references or seeds[0].metrics.get("references")
        chance = chance if chance is not None else seeds[0].metrics.get("chance")  # a family without options states it
        arm_rows.append(arm_result(arm, seeds, hops, exp.recipe.eval.n_resamples))
    sft = next((a for a in arm_rows if a["name"] == "sft"), None)
    by_name = {a["name"]: a for a in arm_rows}
    for a in arm_rows:
        a["vs_sft"] = vs_reference(a, sft, hops, exp.recipe.eval.n_resamples) if sft and a is not sft else None
        ref = by_name.get(a["compare_to"])
        a["vs_compare"] = (vs_reference(a, ref, hops, exp.recipe.eval.n_resamples)
                           if ref is not None and ref is not sft else a["vs_sft"] if ref is sft else None)
        a["per_seed"] = per_seed_rows(a, sft, exp.recipe.eval.n_resamples, ref=by_name.get(a["compare_to"]))
    for a in arm_rows:
        a.pop("_correct")
        a.pop("_seeds")
    hop_counts: dict[str, int] = {}
    for h in hops.values():
        hop_counts[str(h)] = hop_counts.get(str(h), 0) + 1
    return {
        "experiment": exp.grid.name,
        "question": exp.grid.question,
        "grid": grid_reference(exp.grid.source),
        "schema_version": 1,
        "generated": now_iso(),
        "scale": exp.config.scale,
        "mode": exp.recipe.data.mode,
        "model": exp.recipe.model,
        "seeds": exp.seeds,
        "settings": to_dict(exp.recipe),
        "eval": {"file": "data/eval.jsonl", "n_items": len(hops), "by_hop": hop_counts,
                 **({"chance": chance} if chance is not None else {})},
        "interval_method": "95% interval over eval items of the per-item correctness averaged over the arm's "
                           "seeds: Wilson score when every item's average is 0 or 1 (one seed, or seeds that "
                           "agree), else percentile bootstrap; seed_std is the standard deviation of per-seed "
                           "accuracy",
        "drift_method": "mean per-token KL(model || base), teacher-forced on the arm's own greedy eval completions",
        "arms": arm_rows,
        "references": references or {},
        "wall_seconds_arms": round(sum(a["wall_s"] for a in arm_rows), 1),
        "cpus": sorted({c for a in arm_rows for c in a["cpus"]}),
        "copied_arm_seeds": sum(len(a["copied"]) for a in arm_rows),
    }


# --- report ------------------------------------------------------------------------------------------
ACCURACY_PNG = "accuracy_by_hop.png"
CONFUSION_PNG = "confusion_2x2.png"
CURVES_PNG = "training_curves.png"


def _diff_cell(d: dict | None) -> str:
    if not d or not d.get("n"):
        return "–"
    return f"{100 * d['diff']:+.1f} [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}]"


def _nats_cell(d: dict | None, sign: str = "") -> str:
    """An entropy (or its paired difference, with sign "+") in nats: '0.412 [0.380, 0.447]'."""
    if not d or not d.get("n"):
        return "–"
    value, low, high = (d["diff"], d["low"], d["high"]) if "diff" in d else (d["mean"], d["low"], d["high"])
    return f"{value:{sign}.3f} [{low:{sign}.3f}, {high:{sign}.3f}]"


def _seed_cell(iv: dict) -> str:
    from kgreason.evaluate.report import pct

    std = iv.get("seed_std")
    return pct(iv) + (f" ±{100 * std:.1f} (seeds)" if std is not None else "")


def report_markdown(results: dict, images: Sequence[str]) -> str:
    from kgreason.evaluate.report import md_table, num, pct

    hops = sorted(results["eval"]["by_hop"], key=int)
    s = results["settings"]
    question = results.get("question") or "Which training distribution makes a small model answer held-out 4-5 hop questions?"
    head = [
        f"# Experiment `{results.get('experiment', 'distribution')}` ({results['scale']} scale, {results['mode']}-book)",
        f"{question} Every arm is scored greedily on the same held-out eval set; no arm trains on it.",
        md_table(["", ""], [
            ["model", results["model"]],
            ["eval items", f"{results['eval']['n_items']} ({', '.join(f'{k} hops: {v}' for k, v in sorted(results['eval']['by_hop'].items()))})"],
            ["seeds", results["seeds"]],
            ["SFT", f"{s['sft']['train']['max_steps']} steps, batch {s['sft']['train']['batch_size']}, "
                    f"LoRA r={s['sft']['train']['lora']['r']}, material {', '.join(s['sft']['material'])}"],
            ["RSFT", f"{s['rsft']['rounds']} round(s), k={s['rsft']['k']}, {s['rsft']['questions']} questions/round"],
            ["GRPO", f"{s['grpo']['train']['max_steps']} steps, k={s['grpo']['num_generations']}"],
            ["intervals", results["interval_method"]],
            ["drift", results["drift_method"]],
            ["wall time (all arm-seeds, summed)", f"{results['wall_seconds_arms']:.0f} s"
             + (f" (without {results['copied_arm_seeds']} arm-seed(s) copied from other experiments)"
                if results.get("copied_arm_seeds") else "")],
            ["CPU", ", ".join(results.get("cpus") or []) or "not recorded"],
        ]),
    ]
    copied = [f"{a['label']} seed {seed}: `{src}`" for a in results["arms"] for seed, src in (a.get("copied") or {}).items()]
    if copied:
        head.append("Arm-seeds trained once in another experiment with the same data, recipe and SFT adapter, and "
                    "copied here (so those experiments share them; their arm.json names the code revision):\n\n"
                    + "\n".join(f"- {c}" for c in copied))
    rows = []
    for a in results["arms"]:
        rows.append([a["label"], len(a["seeds_done"]), _seed_cell(a["accuracy"]),
                     *(pct(a["by_hop"].get(h)) for h in hops), pct(a["faithful_share"]),
                     pct(a["format_failure_rate"]), drift_cell(a),
                     _diff_cell((a.get("vs_sft") or {}).get("accuracy"))])
    for name, ref in results.get("references", {}).items():
        rows.append([f"*{name}*", "–", pct(ref["accuracy"]), *(pct(ref["by_hop"].get(h)) for h in hops),
                     "–", "–", "–", "–"])
    table = md_table(["arm", "seeds", "accuracy", *(f"{h} hops" for h in hops), "faithful", "format fail",
                      "drift KL", "Δ acc vs SFT (pts, paired)"], rows)
    diff_rows = []
    for a in results["arms"]:
        vs = a.get("vs_sft")
        if vs:
            diff_rows.append([a["label"], _diff_cell(vs["accuracy"]),
                              *(_diff_cell(vs["by_hop"].get(h)) for h in hops),
                              num(vs["accuracy"]["p_value"], 3)])
    parts = [*head, "## Results\n\n" + table]
    if diff_rows:
        parts.append("## Paired differences vs SFT (same items, percentage points, 95% interval)\n\n"
                     + md_table(["arm", "all", *(f"{h} hops" for h in hops), "p (all)"], diff_rows))
    entropy_rows = [[a["label"], _nats_cell(a["entropy"]), _nats_cell((a.get("vs_sft") or {}).get("entropy"), "+"),
                     _nats_cell((a.get("vs_compare") or {}).get("entropy"), "+") if a.get("compare_to") not in ("", "sft")
                     else "–"] for a in results["arms"] if a.get("entropy")]
    if entropy_rows:
        parts.append("## Entropy of the model along its own greedy answers (nats per token, 95% interval)\n\n"
                     "How sharp each model's next-token distribution is on the held-out items (lower: a narrower, "
                     "more certain model; RL on a reward is expected to lower it). Paired by item over the seeds both "
                     "arms measured (`kgreason experiment GRID --drift` measures arms evaluated without drift).\n\n"
                     + md_table(["arm", "entropy", "Δ vs SFT (paired)", "Δ vs its comparison arm (paired)"],
                                entropy_rows))
    conf_rows = [[a["label"], a["confusion"].get("correct_faithful", 0), a["confusion"].get("correct_unfaithful", 0),
                  a["confusion"].get("wrong_faithful", 0), a["confusion"].get("wrong_unfaithful", 0)]
                 for a in results["arms"]]
    parts.append("## Answer correct × trace faithful (summed over seeds)\n\n" + md_table(
        ["arm", "correct+faithful", "correct+unfaithful", "wrong+faithful", "wrong+unfaithful"], conf_rows))
    shuf_rows = [[a["label"], pct(a["accuracy"]), f"{100 * a['shuffle']['accuracy_shuffled']:.1f}%",
                  f"{100 * a['shuffle']['entity_changed_share']:.1f}%"] for a in results["arms"] if a.get("shuffle")]
    if shuf_rows:
        parts.append("## Shuffle robustness (correct letter always moves; means over seeds)\n\n" + md_table(
            ["arm", "accuracy", "accuracy, shuffled options", "chosen entity changed"], shuf_rows))
    seed_rows = [[a["label"], r["seed"], pct(r["accuracy"]), pct(r["faithful_share"]), _diff_cell(r["vs_sft"]), r["run"]]
                 for a in results["arms"] for r in a.get("per_seed") or []]
    parts.append("## Per seed\n\nEach seed alone; Δ is paired against the SFT model of the same seed (the adapter the "
                 "arm started from); 95% Wilson intervals for the shares, paired item-bootstrap ones for Δ.\n\n" + md_table(
                     ["arm", "seed", "accuracy", "faithful", "Δ acc vs SFT, same seed (pts, paired)", "run folder"],
                     seed_rows))
    compared = [a for a in results["arms"] if a.get("vs_compare") and a.get("compare_to") not in ("", "sft")]
    if compared:
        comp_rows = [[a["label"], by_label(results, a["compare_to"]), _diff_cell(a["vs_compare"]["accuracy"]),
                      *(_diff_cell(a["vs_compare"]["by_hop"].get(h)) for h in hops),
                      num(a["vs_compare"]["accuracy"]["p_value"], 3)] for a in compared]
        parts.append("## Paired differences vs the arm each is compared to (percentage points, 95% interval)\n\n"
                     + md_table(["arm", "compared to", "all", *(f"{h} hops" for h in hops), "p (all)"], comp_rows))
    parts += list(images)
    # the answer first, as a run's report.md starts with its headline (evaluate/headline.py): it is
    # the one thing a reader came for, and the demo's landing page shows the same sentences
    answers = answer_sentences(results)
    if answers:
        parts.insert(1, "## Answer\n\n" + question + "\n\n" + "\n".join(f"- {line}" for line in answers))
    return "\n\n".join(parts) + "\n"


def by_label(results: dict, name: str) -> str:
    return next((a["label"] for a in results["arms"] if a["name"] == name), name)


def strongest_shortcut(results: dict) -> tuple[str, float] | None:
    """The best shortcut baseline on the eval items (name, accuracy), from the references."""
    from kgreason.evaluate.references import strongest_shortcut as strongest

    best = strongest(results.get("references"))
    return (best[0], float(best[1]["accuracy"]["mean"])) if best else None


def answer_sentences(results: dict) -> list[str]:
    """One sentence per arm that has an arm to compare to: the paired accuracy difference with its
    95% interval, and what the interval says, whatever the answer is."""
    lines = []
    shortcut = strongest_shortcut(results)
    for a in results["arms"]:
        vs = a.get("vs_compare")
        if not vs or not vs["accuracy"].get("n"):
            continue
        d = vs["accuracy"]
        ref = by_label(results, a["compare_to"])
        if d["low"] > 0:
            verdict = f"better than {ref}: the interval lies above zero"
        elif d["high"] < 0:
            verdict = f"worse than {ref}: the interval lies below zero"
        else:
            verdict = f"not distinguishable from {ref} at this size: the interval contains zero"
        beside = (f"; {100 * a['accuracy']['mean']:.1f}% accuracy against {100 * shortcut[1]:.1f}% for the strongest "
                  f"shortcut ({shortcut[0]})" if shortcut else "")
        lines.append(f"**{a['label']}** vs {ref}: {100 * d['diff']:+.1f} points [{100 * d['low']:+.1f}, "
                     f"{100 * d['high']:+.1f}] on {d['n']} held-out items over "
                     f"{len(vs.get('seeds') or a['seeds_done'])} seed(s) (paired by item and seed), "
                     f"{verdict}{beside}; {100 * a['faithful_share']['mean']:.1f}% faithful traces.")
    return lines


def drift_cell(arm: dict) -> str:
    """An arm's mean drift KL as a table shows it, saying over how many of its seeds when drift was
    measured on some of them only (a mean over seed 0 alone is not the arm's mean)."""
    d = arm.get("drift_kl")
    if not d:
        return "–"
    measured, done = len(d["per_seed"]), len(arm["seeds_done"])
    return f"{d['mean']:.3g}" + (f" ({measured} of {done} seeds)" if measured < done else "")


def write_report(out: Path, results: dict) -> None:
    """results.json, report.md and the PNG plots, each written atomically."""
    from kgreason.evaluate.report import plot_accuracy_by_hop, plot_confusion_grid, plot_curve_panels
    from kgreason.io import atomic_write_text

    arms = results["arms"]
    images: list[str] = []
    plots: dict[str, str] = {}
    if arms:
        plot_accuracy_by_hop({a["label"]: a["by_hop"] for a in arms}, out / ACCURACY_PNG,
                             f"Held-out accuracy by hop ({results['scale']}, mean over seeds, 95% CI)",
                             results["eval"].get("chance", 0.25))
        plot_confusion_grid({a["label"]: a["confusion"] for a in arms}, out / CONFUSION_PNG,
                            "answer correct × trace faithful (summed over seeds)")
        plots.update(accuracy_by_hop=ACCURACY_PNG, confusion=CONFUSION_PNG)
        images += [f"![accuracy by hop]({ACCURACY_PNG})", f"![2x2 tables]({CONFUSION_PNG})"]

        def series(key: str) -> dict[str, list]:
            return {a["label"]: a["curves"].get(key, []) for a in arms}

        curves = plot_curve_panels({
            "SFT loss": ("optimizer step", series("sft_loss")),
            "RSFT pass rate (k samples)": ("round", series("rsft_pass_rate")),
            "RSFT mean sample reward": ("round", series("rsft_reward")),
            "GRPO mean reward": ("step", series("grpo_reward")),
        }, out / CURVES_PNG)
        if curves is not None:
            plots["training_curves"] = CURVES_PNG
            images.append(f"![training curves]({CURVES_PNG})")
    results["plots"] = plots
    atomic_write_json(out / RESULTS_FILE, results)
    atomic_write_text(out / "report.md", report_markdown(results, images))
