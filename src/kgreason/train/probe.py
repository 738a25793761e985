"""A held-out probe during training: greedy answers to a fixed set of eval items every N steps.

Why: a training reward can rise while the model gets worse at the task (reward hacking: a trace
that names path entities without following the chain, an answer line that games the parser).
The probe measures what the reward is meant to stand for, independently of the reward being
optimised: the share of a fixed subset of held-out items answered with the right letter (greedy,
scored by the `kgreason` preset's answer parser) and the share of faithful traces. It goes to
metrics.jsonl (keys `probe/accuracy`, `probe/faithful`, `probe/format_ok`), TensorBoard and the
demo's Training view beside the reward components, and the phase says so when the reward rose
while the probe fell. The probe only observes: nothing is selected or stopped on it, so the eval
set stays held out.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from kgreason.records import Task
from kgreason.runs.folder import Run

PROBE_KEYS = ("probe/accuracy", "probe/faithful", "probe/format_ok")
# The reward must rise and the probe fall by more than this many points for the warning: a probe of
# 32 items moves by ~3 points per item, so smaller drops are noise.
HACKING_DROP = 0.05
# A fall this large on the probe is past its noise (32 items: about +-17 points at 95%) even
# without a rising reward: the policy is coming apart (a GRPO run at learning rate 5e-4 went from
# 53% to 28% probe accuracy and 44% to 0% faithful in 14 steps, writing "X is caused by X")
COLLAPSE_DROP = 0.20


def probe_items(tasks: Sequence[Task], n: int, seed: int) -> list[Task]:
    """A fixed, seeded subset of `n` held-out items (all of them when n >= len(tasks))."""
    items = list(tasks)
    if n >= len(items):
        return items
    return sorted(random.Random(f"probe-{seed}").sample(items, n), key=lambda t: t.id)


def probe_model(model: Any, tokenizer: Any, tasks: Sequence[Task], scorer: Any, max_new_tokens: int,
                rows: int | None = None) -> dict[str, float]:
    """Greedy answers of `model` (a PEFT model is merged for the pass, then restored) to `tasks`,
    scored by `scorer`: accuracy, faithful share and well-formed share."""
    from kgreason.evaluate.runner import merged_for_sampling
    from kgreason.families import family_of_tasks
    from kgreason.sampling import SamplingParams
    from kgreason.sampling.hf import HFSampler
    from kgreason.tasks.format import chat_messages

    by_id = {t.id: t for t in tasks}
    sampler = HFSampler(model, tokenizer, batch_size=rows)
    params = SamplingParams(k=1, temperature=0.0, max_new_tokens=max_new_tokens, family=family_of_tasks(tasks))
    with merged_for_sampling(model):
        completions = sampler.generate([(t.id, chat_messages(t)) for t in tasks], params, progress=False)
    scores = [scorer.score(by_id[c.task_id], c.text) for c in completions]
    n = max(1, len(scores))
    return {"probe/accuracy": sum(s.correct for s in scores) / n,
            "probe/faithful": sum(s.faithful for s in scores) / n,
            "probe/format_ok": sum(s.format_ok for s in scores) / n}


class HeldoutProbe(TrainerCallback):
    """Runs `probe_model` before the first step and every `every` optimizer steps (and after the
    last), and logs it to the run; `history` keeps (step, values) for the end-of-phase check."""

    def __init__(self, run: Run | None, phase: str, tokenizer: Any, tasks: Sequence[Task], scorer: Any,
                 every: int, max_new_tokens: int, round: int = 0) -> None:
        self.run, self.phase, self.tokenizer, self.tasks = run, phase, tokenizer, list(tasks)
        self.scorer, self.every, self.max_new_tokens, self.round = scorer, every, max_new_tokens, round
        self.history: list[tuple[int, dict[str, float]]] = []

    def _probe(self, model: Any, step: int) -> None:
        if model is None or not self.tasks or any(s == step for s, _ in self.history):
            return
        values = probe_model(model, self.tokenizer, self.tasks, self.scorer, self.max_new_tokens)
        self.history.append((step, values))
        if self.run is not None:
            self.run.log_metrics(self.phase, step, {**values, "probe/items": len(self.tasks)}, round=self.round)

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if self.run is not None and not self.history:  # a resumed phase: its earlier probes count, once
            self.history = [(int(m["step"]), {k: float(m[k]) for k in PROBE_KEYS})
                            for m in self.run.read_metrics(self.phase)
                            if "probe/accuracy" in m and int(m.get("round", 0)) == self.round
                            and all(k in m for k in PROBE_KEYS)]
        self._probe(model, int(state.global_step))

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        step = int(state.global_step)
        if self.every > 0 and (step % self.every == 0 or step >= state.max_steps):
            self._probe(model, step)


def make_probe(run: Run | None, phase: str, tokenizer: Any, data_dir: Path, kg: Any, train: Any,
               max_new_tokens: int, round: int = 0) -> HeldoutProbe | None:
    """The phase's probe when `train.probe_every` > 0 (TrainOptions) and the data folder has an eval file."""
    from kgreason.reward.score import Scorer
    from kgreason.tasks.generate import load_tasks

    path = Path(data_dir) / "eval.jsonl"
    if train.probe_every <= 0 or not path.is_file():
        return None
    items = probe_items(load_tasks(path), train.probe_items, train.seed)
    # Scored with the kgreason preset whatever the training reward is: the probe must not share its blind spots.
    return HeldoutProbe(run, phase, tokenizer, items, Scorer(kg, preset="kgreason"), train.probe_every,
                        max_new_tokens, round=round)


def reward_hacking_note(probes: Sequence[tuple[int, dict[str, float]]], rewards: Sequence[tuple[int, float]],
                        drop: float = HACKING_DROP) -> str | None:
    """A sentence when the training reward rose while held-out probe accuracy fell by more than
    `drop` (first probe against the last; mean reward of the first third of logged steps against
    the last third), else None."""
    if len(probes) < 2 or len(rewards) < 2:
        return None
    first, last = probes[0][1]["probe/accuracy"], probes[-1][1]["probe/accuracy"]
    values = [r for _, r in sorted(rewards)]
    third = max(1, len(values) // 3)
    early, late = sum(values[:third]) / third, sum(values[-third:]) / third
    if late > early and first - last > drop:
        return (f"reward rose ({early:.3f} -> {late:.3f}) while held-out probe accuracy fell "
                f"({100 * first:.1f}% -> {100 * last:.1f}%, steps {probes[0][0]}-{probes[-1][0]}): "
                "the policy may be gaming the reward; compare the probe with the reward components in metrics.jsonl")
    return None


def collapse_note(probes: Sequence[tuple[int, dict[str, float]]], drop: float = COLLAPSE_DROP) -> str | None:
    """A sentence when held-out probe accuracy fell by more than `drop` from the first probe to the
    last, whatever the reward did, else None."""
    if len(probes) < 2:
        return None
    (s0, first), (s1, last) = probes[0], probes[-1]
    if first["probe/accuracy"] - last["probe/accuracy"] <= drop:
        return None
    faithful = (f", faithful {100 * first['probe/faithful']:.1f}% -> {100 * last['probe/faithful']:.1f}%"
                if "probe/faithful" in first and "probe/faithful" in last else "")
    return (f"held-out probe accuracy fell from {100 * first['probe/accuracy']:.1f}% to "
            f"{100 * last['probe/accuracy']:.1f}% (steps {s0}-{s1}{faithful}): the policy is getting worse; a lower "
            "learning rate or sampling temperature usually keeps it stable")
