"""The one answer -> score -> episode step that evaluation, RSFT and GRPO all take.

A model's text is cut at its first answer line (the samplers stop there already, TRL's GRPO
generation does not), scored by the KG reward, and wrapped as the Episode the run folder logs, so
every caller scores and logs exactly the same text the same way. Torch-free.
"""

from __future__ import annotations

from typing import Any

from kgreason.records import Episode, Task
from kgreason.reward.parse import cut_after_answer


def scored_episode(scorer: Any, task: Task, text: str, *, run: str, phase: str, step: int, sample_index: int = 0,
                   round: int = 0) -> Episode:
    """`text` cut after its first answer line and scored with `scorer` (anything with
    `.score(task, text) -> RewardBreakdown`), as an Episode of `run`/`phase`."""
    text = cut_after_answer(text, task.family)
    return Episode(run=run, phase=phase, step=step, task_id=task.id, prompt=task.prompt, completion=text,
                   reward=scorer.score(task, text), sample_index=sample_index, round=round)
