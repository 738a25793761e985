"""Offline experiment tracking: Trainer logs go to the run's metrics.jsonl and TensorBoard (tb/<phase>).

No account and no network: `Run.log_metrics` appends one JSON line and mirrors every number to a
local TensorBoard event file, so `tensorboard --logdir runs/<run>/tb` shows the curves.
"""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback

from kgreason.runs.folder import Run


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


class StageProgress(TrainerCallback):
    """The training stage's one progress bar (kgreason.console.progress): optimizer steps with the
    ETA and the latest loss, starting at the checkpoint's step when the phase resumes."""

    def __init__(self, desc: str) -> None:
        self.desc = desc
        self.bar: Any = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        from kgreason.console import progress

        if state.is_world_process_zero:
            self.bar = progress(total=state.max_steps, desc=self.desc, unit="step", initial=state.global_step)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.bar is not None and state.global_step > self.bar.n:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
        if self.bar is not None and logs and isinstance(logs.get("loss"), (int, float)):
            self.bar.set_postfix(loss=f"{logs['loss']:.3f}")

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def quiet_trainer(trainer: Any, desc: str) -> None:
    """Replace the Trainer's console output (its tqdm bar, or with disable_tqdm the printed log
    dicts) by one `StageProgress` bar; the numbers go to metrics.jsonl through RunMetricsCallback.
    With -v the Trainer keeps its own output."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from kgreason.console import is_verbose

    if is_verbose():
        return
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(StageProgress(desc))


class SimulatedInterruption(RuntimeError):
    """Raised by `InterruptAfterStep`; a RuntimeError so pytest does not treat it as Ctrl-C."""


class InterruptAfterStep(TrainerCallback):
    """Raise after a given optimizer step: how tests simulate a crash mid-phase."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step >= self.step:
            raise SimulatedInterruption(f"simulated interruption after step {state.global_step}")

