"""Held-out items of a family without options, screened against the registered shortcut baselines.

A free-form question has hundreds of candidate answers (every tail of the last stated relation), so a
rule that ignores the chain should name the answer about once in that many items. On graphs where
chains funnel into a few entities, or where a walk from the start ends at the answer whatever the
relations, some rules do far better (13.9% on the built-in graph, 12.3% on WN18RR: docs/tasks.md) and
the data stage refuses the split. The multiple-choice generator balances its rules by choosing
decoys; a free-form item has no decoys to choose, so the lever is which items to keep: the held-out
split is planned with spares (`TaskConfig.overgenerate`), and an item a rule answers is kept only
while that rule's running total stays within `SCREEN_SHARE_OF_LIMIT` x the family's limit x the
items kept so far, plus one. This is adversarial filtering, as in SWAG: the kept items are the ones
the rules do not solve, which is what the split exists to measure. Skipping an item a rule answers
cannot make "anything but that rule's answer" a shortcut: it removes one of hundreds of candidates.
The cost is coverage: the kept items lean towards parts of the graph the rules find hard.

A screen that selects against the very rules that later judge the split would only confirm itself:
it could hide a tell from those rules while their close variants still find it. So two registered
rules are held out of the screen (`HELD_OUT_PROBES`: partial-chain walks of other lengths than the
screened ones); the refusal judges them like every rule, and a split whose tells the screen only hid
is refused through them. (A review found such variants at 5-13% on a split screened without them.)

Closed book only. In open book the prompt's facts leave a handful of candidates (the ends of the gold
path and of a few decoy walks), so skipping the items a rule on those facts answers would make "not
that one" a rule worth a third of the items; open-book free form is left to the refusal, which
catches those rules (open book is not free form's honest setting). Torch-free.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from kgreason.tasks.baselines import active_baselines, expected_hits
from kgreason.tasks.views import EntityIndex, answer_key, baseline_context, item_views

if TYPE_CHECKING:
    from kgreason.kg.graph import KnowledgeGraph
    from kgreason.records import Task

# Half the limit: the refusal tests each rule's interval, corrected for ~27 rules, against the
# limit, so a split held to half of it passes with room for the interval and a different draw.
SCREEN_SHARE_OF_LIMIT = 0.5
# Registered rules (tasks/baselines.py) the screen never selects against, so that the refusal's
# verdict on them is a test of the screened split, not a consequence of the screen.
HELD_OUT_PROBES = frozenset({"first_three_relations_then_walk", "walk_then_last_two_relations"})
MOST_COMMON_ANSWER = "most_common_letter"  # its registered name (the letter, for multiple choice)
CHUNK = 32  # items scored at a time: scoring stops once every hop length has its items


def screen_held_out(kg: KnowledgeGraph, tasks: Sequence[Task], quota: dict[int, int], train_tasks: Sequence[Task],
                    limit: float, rejected: Counter) -> list[Task]:
    """The first items of `tasks` (in order) that fill `quota` (items per hop length) while every
    screened rule answers at most SCREEN_SHARE_OF_LIMIT x `limit` of the items kept, plus one
    (expected hits: ties split evenly, as the audit counts). The screened rules are the registered
    rules on the graph, less HELD_OUT_PROBES; "the entity most often the answer" is held to the same
    budget through each answer's count (its audit figure also counts a 1/candidates share on items
    whose candidates lack that entity: a few hundredths of an item). Skipped items are counted in
    `rejected["shortcut_screen"]`; `train_tasks` feed the answer-prior rules."""
    names = [b.name for b in active_baselines()
             if not b.open_only and b.name != MOST_COMMON_ANSWER and b.name not in HELD_OUT_PROBES]
    index = EntityIndex(kg)
    ctx = baseline_context(kg, tasks, train_tasks, index)
    scored: list[dict[str, float]] = []  # per item of `tasks`, scored lazily in chunks

    def hits(i: int) -> dict[str, float]:
        while len(scored) <= i:
            chunk = tasks[len(scored):len(scored) + CHUNK]
            per_rule = expected_hits(item_views(kg, chunk, index), [answer_key(t) for t in chunk], ctx, names)
            scored.extend({n: h[j] for n, h in per_rule.items() if h[j] > 0} for j in range(len(chunk)))
        return scored[i]

    left, used, answers, kept = dict(quota), Counter(), Counter(), []
    for i, task in enumerate(tasks):
        if all(n <= 0 for n in left.values()):
            break
        if left.get(task.hop_len, 0) <= 0:
            continue
        item = hits(i)
        # A running budget, so that it holds for a split the graph leaves short of its size too: after
        # k items each rule has at most SCREEN_SHARE_OF_LIMIT x limit x k hits plus one, a rate of at
        # most that share + 1/k (3.2% of 150 items for free form's 5% limit).
        allowed = SCREEN_SHARE_OF_LIMIT * limit * (len(kept) + 1) + 1
        if answers[task.answer_id] + 1 > allowed or any(used[name] + v > allowed + 1e-9 for name, v in item.items()):
            rejected["shortcut_screen"] += 1
            continue
        used.update(item)
        answers[task.answer_id] += 1
        kept.append(task)
        left[task.hop_len] -= 1
    return kept
