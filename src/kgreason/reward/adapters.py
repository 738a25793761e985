"""The KG reward as the plain functions other training frameworks call (torch-free).

* verl: `compute_score(data_source, solution_str, ground_truth, extra_info=None) -> float`
  (`custom_reward_function.path` = this file or a one-line wrapper, `name: compute_score`).
* OpenRLHF: `reward_func(queries, prompts, labels) -> list[float]` (`--remote_rm_url` /
  `--reward_func` = a file exposing `reward_func`, with `--label_key ground_truth`). OpenRLHF
  expects a tensor (or a dict with "rewards"): this module never imports torch, so wrap the list,
  `torch.tensor(reward_func(...))`; docs/export.md has the three-line wrapper.
* TRL: `trl_reward(prompts, completions, ground_truth, **kwargs) -> list[float]`, for
  `GRPOTrainer(reward_funcs=[trl_reward])` on the dataset `kgreason export hf` writes (TRL hands
  every dataset column to a reward function as a keyword argument). kgreason's own GRPO
  (`kgreason.train.grpo.KGReward`) scores with the run's whole graph instead.

All of them go through `score_ground_truth`: `cut_after_answer`, then `Scorer.score` with the
chosen preset, exactly as kgreason's GRPO and evaluation score (no second copy of the reward).

Why a self-contained ground truth: a reward function in these frameworks sees one row's label and
the completion, in a worker process that may hold no kgreason data folder. So the label carries,
as one JSON string (`ground_truth(kg, task)`), the task's fields the scorer reads (start, stated
chain, options with their entity ids, answer letter and entity, gold path) and the task's
**chain neighbourhood** of the graph:

* entities: every entity the stated chain reaches after 0..n-1 hops (its frontiers), every entity
  one edge (any relation) from one of those, the gold path, the options and every entity the
  prompt names (open-mode context facts: the decoy paths);
* edges: every KG edge between two of those entities (the induced subgraph), and every relation.

A claimed hop is read between two recognised entities and checked against the induced edges, so
its verdict is the whole graph's verdict; chain credit and faithfulness need hop i to leave a
frontier-i entity along the i-th relation, and every such edge is kept. Scores therefore equal
the whole-graph scores for every completion that names only these entities (a test checks this
on generated data). An entity outside them is plain text to the scorer: it is not counted in the
repetition penalty and no hop is read to or from it, which can only cost a trace credit (a hop
through it, real or not, leaves the stated chain). On the built-in graph a 4-5 hop label is a few
kilobytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from kgreason.kg.graph import Edge, Entity, KGError, KnowledgeGraph, Relation, entity_dict
from kgreason.records import RewardBreakdown, Task
from kgreason.reward.match import EntityMatcher
from kgreason.reward.parse import cut_after_answer
from kgreason.reward.score import Scorer

GROUND_TRUTH_FORMAT = "kgreason-ground-truth/1"
DATA_SOURCE = "kgreason"
# The task fields the scorer reads (the prompt, traces and context are left out of the label).
_TASK_FIELDS = ("id", "split", "hop_len", "question", "options", "answer_star", "path_star", "start",
                "relation_chain", "option_ids", "answer_id", "mode")


# --- building a label ------------------------------------------------------------------------------
def chain_neighbourhood(kg: KnowledgeGraph, task: Task, matcher: EntityMatcher | None = None) -> KnowledgeGraph:
    """The part of `kg` a label carries (see the module docstring): the induced subgraph on the
    chain's frontiers and their out-neighbours, the gold path, the options and the prompt's entities.

    `matcher` (an EntityMatcher of `kg`, built once per graph) finds the entities the prompt names;
    without it they are left out (closed-mode prompts name only the start and the options).
    """
    start = task.start or (task.path_star.entities[0] if task.path_star.entities else "")
    chain = list(task.relation_chain or task.path_star.relation_chain)
    vocab: dict[str, None] = {}
    if start in kg.entities:
        vocab[start] = None
        frontier = [start]
        for relation in chain:
            reached: dict[str, None] = {}
            for node in frontier:
                for tails in kg.out_relations(node).values():
                    vocab.update(dict.fromkeys(tails))
                reached.update(dict.fromkeys(kg.successors(node, relation)))
            frontier = list(reached)
    vocab.update(dict.fromkeys(task.path_star.entities))
    vocab.update(dict.fromkeys(task.option_ids.values()))
    if task.answer_id:
        vocab[task.answer_id] = None
    if matcher is not None:
        for mention in matcher.find(task.prompt or task.question):
            vocab.update(dict.fromkeys(mention.entity_ids))
    keep = [e for e in vocab if e in kg.entities]
    kept = set(keep)
    edges = [Edge(h, r, t) for h in keep for r, tails in kg.out_relations(h).items() for t in tails if t in kept]
    entities = {e: kg.entities[e] for e in keep}
    # Every relation, so relation phrases are read exactly as against the whole graph.
    return KnowledgeGraph(entities=entities, relations=dict(kg.relations), edges=edges, name=kg.name)


def ground_truth_dict(kg: KnowledgeGraph, task: Task, matcher: EntityMatcher | None = None) -> dict:
    """The label as a JSON-ready dict: format tag, the task's scored fields, its chain neighbourhood."""
    sub = chain_neighbourhood(kg, task, matcher)
    full = task.to_dict()
    return {
        "format": GROUND_TRUTH_FORMAT,
        # The family's fields only where the task has them, so multiple-choice labels stay what they were.
        "task": {k: full[k] for k in (*_TASK_FIELDS, "family", "answer_label") if k in full},
        "kg": {
            "name": sub.name,
            "entities": [entity_dict(e) for e in sub.entities.values()],
            "relations": [_relation_json(r) for r in sub.relations.values()],
            "edges": [[e.head, e.relation, e.tail] for e in sub.edges],
        },
    }


def ground_truth(kg: KnowledgeGraph, task: Task, matcher: EntityMatcher | None = None) -> str:
    """The label as one compact JSON string (what `export hf` stores in `ground_truth`)."""
    return json.dumps(ground_truth_dict(kg, task, matcher), ensure_ascii=False, separators=(",", ":"))


def _relation_json(r: Relation) -> dict:
    d: dict[str, Any] = {"id": r.id, "phrase": r.phrase}
    if r.inverse_phrase:
        d["inverse_phrase"] = r.inverse_phrase
    if r.symmetric:
        d["symmetric"] = True
    return d


# --- reading a label -------------------------------------------------------------------------------
def load_ground_truth(label: str | Mapping[str, Any]) -> tuple[Task, KnowledgeGraph]:
    """The task and the neighbourhood graph of a label (a JSON string or its dict).

    Raises ValueError naming what is wrong: a bad label is a data or configuration error, not model
    output, so it is not scored silently.
    """
    data: Any = label
    if isinstance(label, (str, bytes)):
        try:
            data = json.loads(label)
        except json.JSONDecodeError as exc:
            raise ValueError(f"kgreason ground truth is not JSON: {exc}") from None
    if not isinstance(data, Mapping) or data.get("format") != GROUND_TRUTH_FORMAT:
        got = data.get("format") if isinstance(data, Mapping) else type(data).__name__
        raise ValueError(f"kgreason ground truth: expected an object with format {GROUND_TRUTH_FORMAT!r}, got {got!r} "
                         "(write labels with `kgreason export hf` or kgreason.reward.adapters.ground_truth)")
    try:
        task = Task.from_dict(dict(data["task"]))
        g = data["kg"]
        entities = [Entity(str(e["id"]), str(e.get("label", e["id"])), e.get("type"), tuple(e.get("aliases", ())))
                    for e in g["entities"]]
        relations = [Relation(str(r["id"]), str(r["phrase"]), r.get("inverse_phrase"), bool(r.get("symmetric", False)))
                     for r in g["relations"]]
        edges = [Edge(str(h), str(r), str(t)) for h, r, t in g["edges"]]
        kg = KnowledgeGraph(entities={e.id: e for e in entities}, relations={r.id: r for r in relations},
                            edges=edges, name=str(g.get("name", "kg")))
    except (KeyError, TypeError, ValueError, KGError) as exc:
        raise ValueError(f"kgreason ground truth: malformed task or graph ({type(exc).__name__}: {exc})") from None
    return task, kg


@lru_cache(maxsize=512)
def _scorer(label_json: str, preset: str) -> tuple[Task, Scorer]:
    """One parsed label and its scorer, cached: a group of k completions shares one label."""
    task, kg = load_ground_truth(label_json)
    return task, Scorer(kg, preset)


def _label_key(label: str | bytes | Mapping[str, Any]) -> str:
    if isinstance(label, bytes):
        return label.decode("utf-8")
    if isinstance(label, str):
        return label
    if isinstance(label, Mapping):
        return json.dumps(label, ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=_plain)
    raise ValueError(f"kgreason ground truth: expected a JSON string or a dict, got {type(label).__name__}")


def _plain(value: Any) -> Any:
    """numpy arrays and scalars (a label read back from parquet by pandas) as plain JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def score_ground_truth(label: str | Mapping[str, Any], completion: Any, preset: str = "kgreason") -> RewardBreakdown:
    """The full reward breakdown of one completion for one label: the one path every adapter takes.

    The completion is cut after its first answer line (what kgreason's samplers, evaluation and
    GRPO score), then scored by `Scorer.score`; a completion that is not text is a format failure.
    """
    task, scorer = _scorer(_label_key(label), preset)
    text = completion_text(completion)
    return scorer.score(task, cut_after_answer(text, task.family) if isinstance(text, str) else text)


def completion_text(completion: Any) -> Any:
    """Plain text, or the last assistant message of a chat-style completion; anything else as is."""
    if isinstance(completion, list) and completion and all(isinstance(m, Mapping) for m in completion):
        contents = [m.get("content") for m in completion if m.get("role", "assistant") == "assistant"]
        if contents and isinstance(contents[-1], str):
            return contents[-1]
    return completion


# --- verl --------------------------------------------------------------------------------------------
def compute_score(data_source: str, solution_str: str, ground_truth: str | Mapping[str, Any],
                  extra_info: Mapping[str, Any] | None = None, preset: str = "kgreason", **_: Any) -> float:
    """verl's custom reward function: the total reward of `solution_str` (the decoded response).

    `ground_truth` is the row's `reward_model.ground_truth` (the JSON label of `export hf`);
    `data_source` and `extra_info` are accepted and not needed. `preset` can be set through verl's
    `custom_reward_function.reward_kwargs`.
    """
    return float(score_ground_truth(ground_truth, solution_str, preset).total)


# --- OpenRLHF ----------------------------------------------------------------------------------------
def reward_func(queries: Sequence[str], prompts: Sequence[str], labels: Sequence[str | Mapping[str, Any]],
                preset: str = "kgreason") -> list[float]:
    """OpenRLHF's reward function: one total reward per (query, prompt, label), as plain floats.

    OpenRLHF passes `queries` = prompt + response text, `prompts` = the prompt text, `labels` =
    the `--label_key` column (`ground_truth`). The response is the query after its prompt; when the
    decoded query does not start with the prompt verbatim (special tokens, whitespace), it is the
    text after the task's option list. Wrap the result in `torch.tensor` for OpenRLHF.
    """
    if not len(queries) == len(prompts) == len(labels):
        raise ValueError(f"reward_func: {len(queries)} queries, {len(prompts)} prompts and {len(labels)} labels")
    rewards: list[float] = []
    for query, prompt, label in zip(queries, prompts, labels, strict=True):
        task, _ = _scorer(_label_key(label), preset)
        response = response_from_query(str(query), str(prompt or ""), task)
        rewards.append(float(score_ground_truth(label, response, preset).total))
    return rewards


def response_from_query(query: str, prompt: str, task: Task) -> str:
    """The model's response inside an OpenRLHF query (prompt + response).

    The system prompt shows an example `TRACE: ... ANSWER: ...`, so reading the whole query would
    score that example: the prompt must go. First choice: the query starts with the prompt.
    Otherwise: the text after the end of the user message (the option list, or for a family that
    offers none the question), then after the prompt found anywhere; failing both, the whole query.
    """
    if prompt and query.startswith(prompt):
        return query[len(prompt):]
    from kgreason.families import get_family

    block = get_family(task.family).offer(task.options) if task.options else f"Question: {task.question}"
    if block:
        i = query.find(block)
        if i >= 0:
            return query[i + len(block):]
    if prompt:
        i = query.find(prompt)
        if i >= 0:
            return query[i + len(prompt):]
    return query


# --- TRL -----------------------------------------------------------------------------------------
def trl_reward(prompts: Sequence[Any], completions: Sequence[Any], ground_truth: Sequence[str | Mapping[str, Any]],
               preset: str = "kgreason", **_: Any) -> list[float]:
    """A GRPOTrainer reward function over the `ground_truth` column of an exported dataset.

    TRL passes the batch's prompts, completions (text, or lists of chat messages) and every other
    dataset column as keyword arguments; only `ground_truth` is read.
    """
    if len(completions) != len(ground_truth):
        raise ValueError(f"trl_reward: {len(completions)} completions but {len(ground_truth)} labels")
    return [float(score_ground_truth(label, completion, preset).total)
            for completion, label in zip(completions, ground_truth, strict=True)]


trl_reward.__name__ = "kg_reward"  # TRL names the logged reward column after the function

