"""Shuffle robustness: the same items with their options permuted so that every option moves.

The paper's shuffle test kept the correct letter in place, so a model that learned "the answer
is usually B" passed it. Here the options are permuted by a derangement: no option keeps its
letter, in particular the correct one always moves. A model that reads the options answers the
same *entity* before and after; one that memorised a letter does not.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from kgreason.evaluate.bootstrap import DEFAULT_RESAMPLES, bootstrap_mean, paired_bootstrap_difference
from kgreason.records import Episode, Task

SHUFFLE_SUFFIX = "#shuffled"

PromptRenderer = Callable[[Task], str]


def random_derangement(n: int, rng: random.Random) -> list[int]:
    """A uniformly random permutation p of range(n) with p[i] != i for every i (n >= 2).

    Rejection sampling: about 1/e of permutations are derangements, so ~2.7 draws on average.
    """
    if n < 2:
        raise ValueError(f"a derangement needs at least 2 options, got {n}")
    while True:
        perm = list(range(n))
        rng.shuffle(perm)
        if all(p != i for i, p in enumerate(perm)):
            return perm


def shuffle_task(task: Task, rng: random.Random, render_prompt: PromptRenderer | None = None) -> Task:
    """The task with its options deranged; the copy's id gets SHUFFLE_SUFFIX.

    `render_prompt` rebuilds the prompt from the new options (the tasks module owns the prompt
    format); without it the options block of the old prompt is rewritten line by line.
    """
    letters = sorted(task.options)
    perm = random_derangement(len(letters), rng)
    # the option at letters[i] moves to letters[perm[i]]
    new_options = {letters[perm[i]]: task.options[letters[i]] for i in range(len(letters))}
    new_ids = (
        {letters[perm[i]]: task.option_ids[letters[i]] for i in range(len(letters)) if letters[i] in task.option_ids}
        if task.option_ids
        else {}
    )
    new_answer = letters[perm[letters.index(task.answer_star)]]
    moved = replace(
        task,
        id=task.id + SHUFFLE_SUFFIX,
        options=dict(sorted(new_options.items())),
        option_ids=dict(sorted(new_ids.items())),
        answer_star=new_answer,
    )
    prompt = render_prompt(moved) if render_prompt else _rewrite_option_lines(task, moved)
    return replace(moved, prompt=prompt)


def _rewrite_option_lines(old: Task, new: Task) -> str:
    """Swap option texts in lines of the form 'A) text' / 'A. text' / 'A: text' / 'text (A)'; fails loudly."""
    lines = old.prompt.split("\n")
    done: set[str] = set()
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        for letter, text in old.options.items():
            if stripped.rstrip() == f"{text.strip()} ({letter})" and letter not in done:  # tasks/format.py's form
                lines[i] = f"{line[: len(line) - len(stripped)]}{new.options[letter]} ({letter})"
                done.add(letter)
                continue
            for sep in (") ", ". ", ": "):
                head = f"{letter}{sep}"
                if stripped.startswith(head) and stripped[len(head) :].strip() == text.strip() and letter not in done:
                    indent = line[: len(line) - len(stripped)]
                    lines[i] = f"{indent}{head}{new.options[letter]}"
                    done.add(letter)
    if done != set(old.options):
        raise ValueError(f"task {old.id}: could not find every option line in the prompt to shuffle")
    return "\n".join(lines)


def shuffle_tasks(tasks: Sequence[Task], seed: int = 0, render_prompt: PromptRenderer | None = None) -> list[Task]:
    rng = random.Random(f"shuffle:{seed}")
    return [shuffle_task(t, rng, render_prompt) for t in tasks]


def chosen_entity(task: Task, episode: Episode | None) -> str | None:
    """The entity the answer letter points at (its id when known, else the option text)."""
    if episode is None or not episode.reward.format_ok or episode.reward.answer is None:
        return None
    letter = episode.reward.answer
    if letter in task.option_ids:
        return task.option_ids[letter]
    return task.options.get(letter)


def shuffle_report(
    tasks: Sequence[Task],
    episodes: Mapping[str, Episode],
    shuffled: Sequence[Task],
    shuffled_episodes: Mapping[str, Episode],
    seed: int = 0,
    n_resamples: int = DEFAULT_RESAMPLES,
) -> dict:
    """Accuracy on original and shuffled items, their paired difference, and the share of items
    whose chosen entity changed (an unparseable answer on either side counts as a change)."""
    by_orig = {t.id + SHUFFLE_SUFFIX: t for t in tasks}
    orig_hits: list[bool] = []
    shuf_hits: list[bool] = []
    changed: list[bool] = []
    letter_moved: list[bool] = []
    for st in shuffled:
        ot = by_orig.get(st.id)
        if ot is None or ot.id not in episodes or st.id not in shuffled_episodes:
            continue
        oe, se = episodes[ot.id], shuffled_episodes[st.id]
        orig_hits.append(bool(oe.reward.correct))
        shuf_hits.append(bool(se.reward.correct))
        a, b = chosen_entity(ot, oe), chosen_entity(st, se)
        changed.append(a is None or b is None or a != b)
        letter_moved.append(ot.answer_star != st.answer_star)
    diff = paired_bootstrap_difference(orig_hits, shuf_hits, seed=seed, n_resamples=n_resamples)
    return {
        "n_items": len(orig_hits),
        "accuracy_original": bootstrap_mean(orig_hits, seed, n_resamples).to_dict(),
        "accuracy_shuffled": bootstrap_mean(shuf_hits, seed + 1, n_resamples).to_dict(),
        "difference": diff.to_dict(),
        "entity_changed_share": bootstrap_mean(changed, seed + 2, n_resamples).to_dict(),
        "correct_letter_moved_share": (sum(letter_moved) / len(letter_moved)) if letter_moved else None,
    }
