"""Hand-built tasks and episodes for the evaluation tests (a plain module, imported by them)."""

from __future__ import annotations

from kgreason.records import ClaimedHop, Episode, PathStar, RewardBreakdown, Task


def make_task(i: int, hop: int = 1, answer: str = "A") -> Task:
    letters = ["A", "B", "C", "D"]
    option_ids = {letter: f"e{i}_{letter.lower()}" for letter in letters}
    options = {letter: f"entity {i} {letter.lower()}" for letter in letters}
    path = PathStar(entities=[f"s{i}", option_ids[answer]], edges=[(f"s{i}", "r", option_ids[answer])])
    prompt = "Question?\n" + "\n".join(f"{k}) {v}" for k, v in options.items()) + "\nAnswer:"
    return Task(
        id=f"t{i}",
        split="eval",
        hop_len=hop,
        question="Question?",
        options=options,
        answer_star=answer,
        path_star=path,
        prompt=prompt,
        option_ids=option_ids,
        answer_id=option_ids[answer],
    )


def make_episode(
    task: Task,
    letter: str | None,
    faithful: bool = False,
    format_ok: bool = True,
    coverage: float = 0.0,
    claimed: int = 0,
    valid: int = 0,
    run: str = "r",
) -> Episode:
    hops = [ClaimedHop(head="h", relation="r", tail="t", valid=k < valid) for k in range(claimed)]
    rb = RewardBreakdown(
        preset="kgreason",
        format_ok=format_ok and letter is not None,
        answer=letter if format_ok else None,
        correct=format_ok and letter == task.answer_star,
        path_coverage=coverage,
        hits=0,
        claimed_hops=hops,
        valid_hops=valid,
        faithful=faithful,
        repetition=0.0,
        total=1.0 if letter == task.answer_star else -1.0,
    )
    return Episode(run=run, phase="eval", step=0, task_id=task.id, prompt=task.prompt, completion="", reward=rb)
