"""Reading a `kgreason tasks generate` folder, and the row every export format writes per task.

A row carries everything a reward needs without kgreason's files: the prompt (text and chat
messages), start, relation chain, options with their entity ids, the answer letter and entity, the
hop count, the gold path, the reference trace and completion, and `ground_truth`, the
self-contained reward label (`kgreason.reward.adapters.ground_truth`: the task's scored fields and
its chain neighbourhood of the graph). `reward_model` repeats the label where verl looks for it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kgreason.io import InputError
from kgreason.kg.graph import KnowledgeGraph
from kgreason.records import LETTERS, Task

DATA_SOURCE = "kgreason"


@dataclass
class DataFolder:
    """A data folder: its manifest, graph, task splits (manifest order) and facts file."""

    path: Path
    manifest: dict[str, Any]
    kg: KnowledgeGraph
    kg_path: Path
    splits: dict[str, list[Task]] = field(default_factory=dict)
    held_out: list[str] = field(default_factory=list)  # split names generated as held out
    facts_path: Path | None = None

    @property
    def seed(self) -> Any:
        return self.manifest.get("seed")


def read_data_folder(path: str | Path, kg_path: str | Path | None = None) -> DataFolder:
    """Read and check a data folder; raise InputError with one line naming what is missing.

    The graph is `kg_path` if given, else `kg.json` inside the folder (`kgreason run` writes it
    there; `tasks generate` does not, so pass --kg then).
    """
    from kgreason.kg.sources import open_kg, source_scheme
    from kgreason.tasks.generate import load_tasks

    folder = Path(path)
    if not folder.exists():
        raise InputError(f"{folder}: no such folder (expected a data folder written by `kgreason tasks generate`)")
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder (expected a data folder written by `kgreason tasks generate`)")
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise InputError(f"{folder}: not a kgreason data folder (no manifest.json; write one with `kgreason tasks generate`)")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{manifest_path}: unreadable manifest ({exc})") from None
    config = manifest.get("config") if isinstance(manifest, dict) else None
    specs = config.get("splits") if isinstance(config, dict) else None
    if not isinstance(specs, list) or not specs or not all(isinstance(s, dict) and s.get("name") for s in specs):
        raise InputError(f"{manifest_path}: no 'config.splits' list; not a manifest written by `kgreason tasks generate`")
    graph = Path(kg_path) if kg_path is not None else folder / "kg.json"
    if source_scheme(graph) is None and not graph.is_file():
        raise InputError(f"{graph}: no graph file; pass the graph the tasks were made from with --kg FILE")
    data = DataFolder(path=folder, manifest=manifest, kg=open_kg(graph, json_only=True), kg_path=graph)
    for spec in specs:
        name = str(spec["name"])
        split_file = folder / f"{name}.jsonl"
        if not split_file.is_file():
            raise InputError(f"{split_file}: missing (the manifest lists the split {name!r})")
        data.splits[name] = load_tasks(split_file)
        if spec.get("held_out"):
            data.held_out.append(name)
    facts = folder / f"{config.get('facts_name') or 'facts'}.jsonl"
    data.facts_path = facts if facts.is_file() else None
    return data


def check_out(data: DataFolder, out: str | Path) -> Path:
    """The output folder, refused (InputError) where writing it would fail or overwrite the input."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise InputError(f"--out {path}: exists and is not a folder")
    if path.resolve() == data.path.resolve():
        raise InputError(f"--out {path}: is the --tasks folder; write the export somewhere else")
    return path


def task_row(task: Task, kg: KnowledgeGraph, matcher: Any = None) -> dict[str, Any]:
    """One export row (plain JSON types; parquet and JSON Lines write it unchanged)."""
    from kgreason.reward.adapters import ground_truth
    from kgreason.tasks.format import chat_messages, reference_completion

    label = ground_truth(kg, task, matcher)
    chain = list(task.relation_chain)
    return {
        "id": task.id,
        "split": task.split,
        "hop_len": int(task.hop_len),
        "mode": task.mode,
        "prompt": task.prompt,
        "messages": chat_messages(task),
        "question": task.question,
        "start": task.start,
        "start_label": _label(kg, task.start),
        "relation_chain": chain,
        "relation_phrases": [kg.relations[r].phrase if r in kg.relations else r for r in chain],
        "options": {letter: task.options.get(letter) for letter in LETTERS},
        "option_ids": {letter: task.option_ids.get(letter) for letter in LETTERS},
        "answer": task.answer_star,
        "answer_entity": task.answer_id,
        "answer_label": task.options.get(task.answer_star, "") or task.answer_label,
        "family": task.family,
        "path": {
            "entities": list(task.path_star.entities),
            "edges": [{"src": h, "rel": r, "dst": t} for h, r, t in task.path_star.edges],
        },
        "reference_trace": task.reference_trace,
        "short_trace": task.short_trace,
        "reference_completion": reference_completion(task) if task.reference_trace else "",
        "context_facts": list(task.context_facts),
        "seed": task.seed,
        "data_source": DATA_SOURCE,
        "ground_truth": label,
        "reward_model": {"style": "rule", "ground_truth": label},
    }


def split_rows(data: DataFolder, name: str, matcher: Any = None) -> list[dict[str, Any]]:
    """The rows of one split (an EntityMatcher of the graph is built once when none is given)."""
    if matcher is None:
        from kgreason.reward.match import EntityMatcher

        matcher = EntityMatcher(data.kg)
    return [task_row(t, data.kg, matcher) for t in data.splits[name]]


def _label(kg: KnowledgeGraph, entity: str) -> str:
    ent = kg.entities.get(entity)
    return ent.label if ent is not None else entity
