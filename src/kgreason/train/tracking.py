"""Offline experiment tracking: Trainer logs go to the run's metrics.jsonl and TensorBoard (tb/<phase>).

No account and no network: `Run.log_metrics` appends one JSON line and mirrors every number to a
local TensorBoard event file, so `tensorboard --logdir runs/<run>/tb` shows the curves.
"""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback

from kgreason.train.runs import Run


class RunMetricsCallback(TrainerCallback):
    """Append every Trainer log (loss, learning rate, grad norm, GRPO reward ...) to the run."""

    def __init__(self, run: Run | None, phase: str, round: int = 0) -> None:
        self.run = run
        self.phase = phase
        self.round = round

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
        if self.run is None or not logs:
            return
        values = {k: v for k, v in logs.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)}
        self.run.log_metrics(self.phase, state.global_step, values, round=self.round)


class SimulatedInterruption(RuntimeError):
    """Raised by `InterruptAfterStep`; a RuntimeError so pytest does not treat it as Ctrl-C."""


class InterruptAfterStep(TrainerCallback):
    """Raise after a given optimizer step: how tests simulate a crash mid-phase."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step >= self.step:
            raise SimulatedInterruption(f"simulated interruption after step {state.global_step}")

