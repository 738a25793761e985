"""Evaluation metrics over scored answers: accuracy by hop with intervals, format failures,
trace faithfulness and the (answer correct) x (trace faithful) table.

Pure Python + numpy: everything here works on `Task` and `Episode` records (each Episode carries
its RewardBreakdown), so metrics can be recomputed from a predictions file without torch.
An item with no parseable answer counts as wrong and unfaithful: the denominator is always the
full item set, never "items the model chose to answer".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from kgreason.evaluate.bootstrap import (
    DEFAULT_RESAMPLES,
    Interval,
    bootstrap_mean,
    bootstrap_ratio,
)
from kgreason.families import get_family
from kgreason.records import Episode, Task

CONFUSION_CELLS = ("correct_faithful", "correct_unfaithful", "wrong_faithful", "wrong_unfaithful")


@dataclass(frozen=True)
class Scored:
    """One eval item joined with its (first) scored answer."""

    task: Task
    episode: Episode

    @property
    def correct(self) -> bool:
        return bool(self.episode.reward.correct)

    @property
    def faithful(self) -> bool:
        return bool(self.episode.reward.faithful)

    @property
    def format_ok(self) -> bool:
        return bool(self.episode.reward.format_ok)


def join_episodes(tasks: Sequence[Task], episodes: Iterable[Episode]) -> list[Scored]:
    """Pair each task with its first episode (lowest sample_index), in task order.

    Tasks without an episode are left out (the caller reports how many are missing); episodes
    for unknown task ids are ignored, so a predictions file from a larger set can be reused.
    """
    first: dict[str, Episode] = {}
    for ep in episodes:
        cur = first.get(ep.task_id)
        if cur is None or ep.sample_index < cur.sample_index:
            first[ep.task_id] = ep
    return [Scored(t, first[t.id]) for t in tasks if t.id in first]


def hop_groups(items: Sequence[Scored]) -> dict[int, list[Scored]]:
    groups: dict[int, list[Scored]] = {}
    for it in items:
        groups.setdefault(int(it.task.hop_len), []).append(it)
    return dict(sorted(groups.items()))


def accuracy(items: Sequence[Scored], seed: int = 0, n_resamples: int = DEFAULT_RESAMPLES) -> Interval:
    return bootstrap_mean([it.correct for it in items], seed=seed, n_resamples=n_resamples)


def accuracy_by_hop(
    items: Sequence[Scored], seed: int = 0, n_resamples: int = DEFAULT_RESAMPLES
) -> dict[int, Interval]:
    return {hop: accuracy(group, seed=seed + hop, n_resamples=n_resamples) for hop, group in hop_groups(items).items()}


def format_failure_rate(items: Sequence[Scored], seed: int = 0, n_resamples: int = DEFAULT_RESAMPLES) -> Interval:
    return bootstrap_mean([not it.format_ok for it in items], seed=seed, n_resamples=n_resamples)


def trace_metrics(items: Sequence[Scored], seed: int = 0, n_resamples: int = DEFAULT_RESAMPLES) -> dict[str, Interval]:
    """path_coverage: mean share of gold-path entities named in the trace;
    valid_hop_share: claimed hops that are real KG edges / all claimed hops (pooled over items);
    faithful_share: items whose claimed chain leads from the start to the chosen answer."""
    claimed = [len(it.episode.reward.claimed_hops) for it in items]
    valid = [min(it.episode.reward.valid_hops, c) for it, c in zip(items, claimed, strict=True)]
    return {
        "path_coverage": bootstrap_mean([it.episode.reward.path_coverage for it in items], seed, n_resamples),
        "valid_hop_share": bootstrap_ratio(valid, claimed, seed + 1, n_resamples),
        "faithful_share": bootstrap_mean([it.faithful for it in items], seed + 2, n_resamples),
    }


def trace_length_by_hop(items: Sequence[Scored], seed: int = 0, n_resamples: int = DEFAULT_RESAMPLES) -> dict[str, dict]:
    """Per hop count asked: how many hops the traces claim (issue 28: on a lexical KG the model
    stopped after 1-2 hops of the 4-5 asked). `exact`: the share of answers whose trace claims as
    many hops as the question asks (Wilson interval); `short` / `long`: fewer / more; `median`:
    the median claimed; an answer with no readable trace claims 0."""
    out: dict[str, dict] = {}
    for hop, group in hop_groups(items).items():
        claimed = [len(it.episode.reward.claimed_hops) for it in group]
        out[str(hop)] = {
            "exact": bootstrap_mean([c == hop for c in claimed], seed + hop, n_resamples).to_dict(),
            "short": sum(c < hop for c in claimed) / len(claimed),
            "long": sum(c > hop for c in claimed) / len(claimed),
            "median": float(np.median(claimed)),
            "n": len(claimed),
        }
    return out


def confusion_2x2(items: Sequence[Scored]) -> dict[str, int]:
    """Counts of (answer correct) x (trace faithful); one does not imply the other."""
    counts = dict.fromkeys(CONFUSION_CELLS, 0)
    for it in items:
        key = f"{'correct' if it.correct else 'wrong'}_{'faithful' if it.faithful else 'unfaithful'}"
        counts[key] += 1
    return counts


def confusion_rates(counts: Mapping[str, int]) -> dict[str, float | None]:
    """The two conditional rates the 2x2 exists to show: P(correct | faithful), P(faithful | correct)."""
    faithful = counts["correct_faithful"] + counts["wrong_faithful"]
    correct = counts["correct_faithful"] + counts["correct_unfaithful"]
    return {
        "p_correct_given_faithful": counts["correct_faithful"] / faithful if faithful else None,
        "p_correct_given_unfaithful": (
            counts["correct_unfaithful"] / (counts["correct_unfaithful"] + counts["wrong_unfaithful"])
            if counts["correct_unfaithful"] + counts["wrong_unfaithful"]
            else None
        ),
        "p_faithful_given_correct": counts["correct_faithful"] / correct if correct else None,
    }


def mean_reward(items: Sequence[Scored]) -> float | None:
    return float(np.mean([it.episode.reward.total for it in items])) if items else None


def letter_accuracy(
    tasks: Sequence[Task], predictions: Mapping[str, str | None], seed: int = 0, n_resamples: int = DEFAULT_RESAMPLES
) -> dict:
    """Accuracy overall and by hop of letter predictions (shortcut baselines, the oracle)."""
    hits: dict[int, list[bool]] = {}
    for t in tasks:
        hits.setdefault(int(t.hop_len), []).append(predictions.get(t.id) == get_family(t.family).answer_key(t))
    flat = [h for group in hits.values() for h in group]
    return {
        "accuracy": bootstrap_mean(flat, seed, n_resamples).to_dict(),
        "by_hop": {str(h): bootstrap_mean(v, seed + h, n_resamples).to_dict() for h, v in sorted(hits.items())},
    }


def summarize(items: Sequence[Scored], seed: int = 0, n_resamples: int = DEFAULT_RESAMPLES) -> dict:
    """Every headline metric of one evaluation, as JSON-ready dicts."""
    counts = confusion_2x2(items)
    return {
        "n_items": len(items),
        "accuracy": accuracy(items, seed, n_resamples).to_dict(),
        "by_hop": {str(h): iv.to_dict() for h, iv in accuracy_by_hop(items, seed, n_resamples).items()},
        "format_failure_rate": format_failure_rate(items, seed + 100, n_resamples).to_dict(),
        "trace": {k: iv.to_dict() for k, iv in trace_metrics(items, seed + 200, n_resamples).items()},
        "trace_by_hop": {
            str(h): {"faithful_share": bootstrap_mean([it.faithful for it in g], seed + 300 + h, n_resamples).to_dict()}
            for h, g in hop_groups(items).items()
        },
        "trace_length_by_hop": trace_length_by_hop(items, seed + 400, n_resamples),
        "confusion": counts,
        "confusion_rates": confusion_rates(counts),
        "mean_reward": mean_reward(items),
    }
