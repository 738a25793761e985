"""Fact recall: does the model know the graph's facts, asked one (head, relation) at a time?

Closed book, a chain can only be followed with facts the model holds, so recall is measured on its
own, before composition: each (head, relation) of facts.jsonl is asked greedily with the fact
material's prompt ("Complete the fact: X is caused by") and the listed tails are scored against
the graph's (kgreason.tasks.facts). Reported for every fact and for the facts the held-out items'
gold paths use (the ones composition needs).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from kgreason.tasks.facts import (
    FactQuery,
    edge_recall,
    fact_queries,
    queries_on_paths,
    score_recall,
    summarize_recall,
)

# A fact's completion is a few labels; the longest built-in one (7 tails) is 36 SmolLM2 tokens.
RECALL_MAX_NEW_TOKENS = 64


def load_queries(data_dir: Path) -> list[FactQuery]:
    from kgreason.io import read_jsonl
    from kgreason.tasks.build import data_layout

    path = Path(data_dir) / data_layout(data_dir).files["facts"]
    return fact_queries(read_jsonl(path), str(path))


def eval_path_edges(data_dir: Path) -> set[tuple[str, str, str]]:
    """Every hop (head id, relation, tail id) of the held-out items' gold paths."""
    from kgreason.tasks.build import data_layout
    from kgreason.tasks.generate import load_tasks

    hops: set[tuple[str, str, str]] = set()
    for name in data_layout(data_dir).held_out:
        path = Path(data_dir) / f"{name}.jsonl"
        if path.is_file():
            hops.update(tuple(e) for t in load_tasks(path) for e in t.path_star.edges)
    return hops


def answer_queries(model: Any, tokenizer: Any, queries: Sequence[FactQuery], rows: int | None = None,
                   max_new_tokens: int = RECALL_MAX_NEW_TOKENS) -> dict[str, str]:
    """Greedy completions of `queries` by `model` (a PEFT model is merged for the pass), by prompt."""
    from kgreason.evaluate.runner import merged_for_sampling
    from kgreason.sampling import SamplingParams
    from kgreason.sampling.hf import HFSampler

    sampler = HFSampler(model, tokenizer, batch_size=rows)
    params = SamplingParams(k=1, temperature=0.0, max_new_tokens=max_new_tokens)
    items = [(f"q{i}", [{"role": "user", "content": q.prompt}]) for i, q in enumerate(queries)]
    with merged_for_sampling(model):
        completions = sampler.generate(items, params, progress=False)
    by_id = {c.task_id: c.text for c in completions}
    return {q.prompt: by_id[f"q{i}"] for i, q in enumerate(queries)}


def fact_recall(answers: dict[str, str], queries: Sequence[FactQuery],
                path_edges: Iterable[tuple[str, str, str]] = ()) -> dict[str, Any]:
    """Recall over every query (`all`), over the queries of the held-out gold paths' hops with all
    their tails (`eval_queries`), and of the gold path edges themselves (`eval_path_edges`)."""
    path_edges = set(path_edges)
    scores = {q.prompt: score_recall(q, answers.get(q.prompt, "")) for q in queries}
    on_paths = queries_on_paths(queries, path_edges)
    return {"all": summarize_recall(scores.values()),
            "eval_queries": summarize_recall(scores[q.prompt] for q in on_paths),
            "eval_path_edges": edge_recall(queries, answers, path_edges)}


def evaluate_recall(model: Any, tokenizer: Any, facts_file: Path, out_dir: Path | None = None,
                    rows: int | None = None) -> dict[str, Any]:
    """Fact recall of `model` on every (head, relation) of `facts_file`, and on the gold-path edges of
    the held-out files of its data folder. With `out_dir`: recall.json and answers.jsonl (each query,
    its tails and the model's completion), written whole or not at all."""
    import time

    from kgreason.hardware import cpu_line
    from kgreason.io import atomic_write_json, atomic_write_jsonl, read_jsonl

    facts_file = Path(facts_file)
    queries = fact_queries(read_jsonl(facts_file), str(facts_file))
    if not queries:
        from kgreason.io import InputError

        raise InputError(f"{facts_file}: no facts")
    start = time.perf_counter()
    answers = answer_queries(model, tokenizer, queries, rows=rows)
    result = {**fact_recall(answers, queries, eval_path_edges(facts_file.parent)),
              "facts_file": str(facts_file), "adapter": getattr(model, "kgreason_adapter", None),
              "model": getattr(model, "kgreason_ref", None), "wall_s": round(time.perf_counter() - start, 2),
              "cpu": cpu_line()}
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_jsonl(out_dir / "answers.jsonl", (
            {"prompt": q.prompt, "tails": list(q.tails), "completion": answers[q.prompt],
             "recalled": score_recall(q, answers[q.prompt]).recalled} for q in queries))
        atomic_write_json(out_dir / "recall.json", result)
    return result
