"""`kgreason export hf`: a data folder as a Hugging Face datasets folder.

    FOLDER/
      README.md                                 dataset card: YAML `configs:` + seed, sizes, audit, license
      data/<split>-00000-of-00001.parquet       one shard per task split (eval, train_easy, train_hard)
      facts/train-00000-of-00001.parquet        config "facts": one statement per KG edge
      kg.json, manifest.json                    the graph and the generator's manifest, as they were

`datasets.load_dataset(FOLDER)` reads every task split; `load_dataset(FOLDER, "facts")` the facts.
Row fields: docs/export.md.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kgreason.export.rows import DataFolder, check_out, split_rows
from kgreason.families import family_of_tasks, get_family
from kgreason.io import atomic_write_text, iter_jsonl

SHARD = "{split}-00000-of-00001.parquet"


def features() -> Any:
    """The explicit schema of a task row (so every split, and every export, has the same one)."""
    from datasets import Features, List, Value

    text = Value("string")
    letters = {letter: text for letter in "ABCD"}
    return Features({
        "id": text,
        "split": text,
        "hop_len": Value("int32"),
        "mode": text,
        "prompt": text,
        "messages": List({"role": text, "content": text}),
        "question": text,
        "start": text,
        "start_label": text,
        "relation_chain": List(text),
        "relation_phrases": List(text),
        "options": letters,
        "option_ids": letters,
        "answer": text,
        "answer_entity": text,
        "answer_label": text,
        "family": text,  # the task family (kgreason/families): multiple_choice or free_form
        "path": {"entities": List(text), "edges": List({"src": text, "rel": text, "dst": text})},
        "reference_trace": text,
        "short_trace": text,
        "reference_completion": text,
        "context_facts": List(text),
        "seed": Value("int64"),
        "data_source": text,
        "ground_truth": text,
        "reward_model": {"style": text, "ground_truth": text},
    })


def fact_features() -> Any:
    from datasets import Features, Value

    return Features({k: Value("string") for k in ("id", "head", "relation", "tail", "head_label",
                                                   "relation_phrase", "tail_label", "text", "prompt", "completion")})


def export_hf(data: DataFolder, out: str | Path) -> dict[str, Any]:
    """Write the datasets folder; return what the card states (sizes, audit, files)."""
    from datasets import Dataset

    from kgreason.reward.match import EntityMatcher

    out = check_out(data, out)
    out.mkdir(parents=True, exist_ok=True)
    for sub in ("data", "facts"):
        shutil.rmtree(out / sub, ignore_errors=True)  # no stale shard of an earlier export is left behind
    matcher = EntityMatcher(data.kg)
    files: dict[str, str] = {}
    for name in data.splits:
        path = out / "data" / SHARD.format(split=name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with _quiet():
            Dataset.from_list(split_rows(data, name, matcher), features=features()).to_parquet(str(path))
        files[name] = path.relative_to(out).as_posix()
    facts_file = None
    if data.facts_path is not None:
        keys = list(fact_features())
        facts = [{k: None if rec.get(k) is None else str(rec[k]) for k in keys} for _, rec in iter_jsonl(data.facts_path)]
        path = out / "facts" / SHARD.format(split="train")
        path.parent.mkdir(parents=True, exist_ok=True)
        with _quiet():
            Dataset.from_list(facts, features=fact_features()).to_parquet(str(path))
        facts_file = path.relative_to(out).as_posix()
    shutil.copyfile(data.kg_path, out / "kg.json")
    atomic_write_text(out / "manifest.json", json.dumps(data.manifest, indent=2, ensure_ascii=False) + "\n")
    audits = audit_splits(data)
    summary = {"files": files, "facts_file": facts_file, "audits": audits,
               "sizes": {name: len(tasks) for name, tasks in data.splits.items()}}
    atomic_write_text(out / "README.md", dataset_card(data, files, facts_file, audits))
    return summary


@contextmanager
def _quiet() -> Iterator[None]:
    """No `datasets` progress bar while writing a shard (one line per file says nothing)."""
    from datasets.utils import logging as ds_logging

    was_enabled = ds_logging.is_progress_bar_enabled()
    ds_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            ds_logging.enable_progress_bar()


def audit_splits(data: DataFolder) -> dict[str, dict]:
    """kgreason's audit of every split, against the facts and the training splits (not itself).

    Held-out splits are audited against every other split (the training material); a training
    split against the facts and the other training splits, so its answer-prior baselines read
    the rest of the training data, as evaluation reports do.
    """
    from kgreason.tasks.audit import EntityIndex, audit_tasks, load_material

    index = EntityIndex(data.kg)
    material = {name: load_material(data.path / f"{name}.jsonl", index)
                for name in data.splits if name not in data.held_out}
    facts = [load_material(data.facts_path, index)] if data.facts_path is not None else []
    audits = {}
    for name, tasks in data.splits.items():
        against = [m for other, m in material.items() if other != name] + facts
        audits[name] = audit_tasks(data.kg, tasks, against)
    return audits


# --- the dataset card ------------------------------------------------------------------------------
_DEVOPS_LICENSE = ("The built-in DevOps troubleshooting graph is generated by kgreason's own code "
                   "(`kgreason kg build`), so the graph and every question generated from it are covered by "
                   "kgreason's license, Apache-2.0.")
_UMLS_LICENSE = ("The graph is the UMLS benchmark extract packaged with kgreason (`builtin:umls`; see "
                 "`src/kgreason/kg/data/README.md`): triples from the PyKEEN distribution (MIT), derived from the "
                 "UMLS Semantic Network, a U.S. Government work, courtesy of the U.S. National Library of Medicine. "
                 "NLM asks redistributors to acknowledge NLM and to say that the data may not be the most current: "
                 "this is a 2007 research extract, not the current release, and NLM does not endorse this dataset. "
                 "kgreason's generated text (questions, prompts, traces) is Apache-2.0.")
_OTHER_LICENSE = ("The questions are generated from the knowledge graph `{name}`, which is not one of kgreason's "
                  "packaged graphs: its own license governs the facts, entity names and everything derived from them. "
                  "Check it before sharing this dataset, and set the `license:` field above accordingly.")


def license_of(kg_name: str) -> tuple[str, str]:
    """(the card's `license:` id, the license note) for a graph name from the manifest."""
    if kg_name == "devops":
        return "apache-2.0", _DEVOPS_LICENSE
    if kg_name == "umls":
        return "other", _UMLS_LICENSE
    return "other", _OTHER_LICENSE.format(name=kg_name)


def _size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return label
    return "n>1M"


def card_header(data: DataFolder, files: dict[str, str], facts_file: str | None) -> dict[str, Any]:
    kg_name = str((data.manifest.get("kg") or {}).get("name") or data.kg.name)
    license_id, _ = license_of(kg_name)
    total = sum(len(t) for t in data.splits.values())
    configs: list[dict[str, Any]] = [{
        "config_name": "default",
        "default": True,
        "data_files": [{"split": name, "path": path} for name, path in files.items()],
    }]
    if facts_file:
        configs.append({"config_name": "facts", "data_files": [{"split": "train", "path": facts_file}]})
    return {
        "license": license_id,
        "language": ["en"],
        "pretty_name": f"kgreason multi-hop questions ({kg_name}, seed {data.seed})",
        "task_categories": ["question-answering", "text-generation"],
        "tags": ["knowledge-graph", "multi-hop-reasoning", "multiple-choice", "kgreason"],
        "size_categories": [_size_category(total)],
        "configs": configs,
    }


def dataset_card(data: DataFolder, files: dict[str, str], facts_file: str | None, audits: dict[str, dict]) -> str:
    """README.md: YAML header (`configs:` per split, license) and the generation, sizes, audit, license."""
    import yaml

    m = data.manifest
    kg_info = m.get("kg") or {}
    kg_name = str(kg_info.get("name") or data.kg.name)
    _, license_note = license_of(kg_name)
    header = yaml.safe_dump(card_header(data, files, facts_file), sort_keys=False, allow_unicode=True)
    by_hop = m.get("by_hop") or {}
    family = get_family(family_of_tasks([t for tasks in data.splits.values() for t in tasks]))
    if family.offers_options:
        what = ("Multiple-choice questions", "exactly one of four options is reached by following it, and the "
                "distractors are matched on structure so rules that ignore the chain stay near chance (the audit "
                "below). A model answers with a trace, one numbered clause per hop, and the reached entity with "
                "its letter:", "ANSWER: <entity> (<letter>)")
    else:
        what = ("Free-form questions", "it reaches exactly one entity of the whole graph, and no other entity goes "
                "by that entity's name. A model answers with a trace, one numbered clause per hop, and the reached "
                "entity's name, graded by exact match (the audit below):", "ANSWER: <entity>")
    lines = [
        "---", header.rstrip("\n"), "---", "",
        f"# kgreason multi-hop questions ({kg_name}, seed {data.seed})", "",
        f"{what[0]} over a knowledge graph, written by "
        f"`kgreason tasks generate` ({m.get('generator', 'kgreason')}). Each question names a start entity "
        f"and a numbered relation chain; {what[1]}", "",
        "```", "TRACE: 1. <start> <relation 1> <entity 1>. 2. <entity 1> <relation 2> <entity 2>. ...",
        what[2], "```", "",
        "## Generation", "",
        f"- seed: **{data.seed}** (the same graph and seed give byte-identical files)",
        f"- mode: {m.get('mode', 'closed')} book" + (" (each prompt lists the facts it needs and decoy paths)"
                                                     if m.get("mode") == "open" else " (no facts in the prompt)"),
        f"- graph: `{kg_name}`, {kg_info.get('entities', len(data.kg.entities))} entities, "
        f"{kg_info.get('relations', len(data.kg.relations))} relations, {kg_info.get('edges', len(data.kg.edges))} edges "
        "(`kg.json` in this folder)",
        "- generator configuration: `manifest.json` in this folder (`config`), with rejections by reason",
        "",
        "## Sizes", "",
        "| split | items | held out | hops (items) | file |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, tasks in data.splits.items():
        hops = by_hop.get(name) or _count_hops(tasks)
        hop_text = ", ".join(f"{h}: {n}" for h, n in sorted(hops.items(), key=lambda kv: int(kv[0])))
        lines.append(f"| `{name}` | {len(tasks)} | {'yes' if name in data.held_out else 'no'} | {hop_text} | "
                     f"`{files[name]}` |")
    if facts_file:
        facts = (m.get("counts") or {}).get("facts")
        lines.append(f"| `facts` (config `facts`, split `train`) | {facts if facts is not None else ''} | | "
                     f"one statement per KG edge | `{facts_file}` |")
    lines += ["", "## Audit", "",
              "`kgreason tasks audit` on every split, each against the facts and the training splits other than "
              "itself. A shortcut baseline answers without following the chain; its accuracy counts a tie among "
              f"k candidates, the answer among them, as 1/k; {_chance_text(family, len(data.kg.entities))}. The KG "
              f"oracle follows the chain. `tasks audit --strict` holds held-out splits to a "
              f"{100 * family.max_shortcut:.0f}% limit; training splits are listed for "
              "information (easy items may use weaker fallback distractors; kgreason's docs/tasks.md).", ""]
    names = list(audits)
    lines.append("| | " + " | ".join(f"`{n}`" for n in names) + " |")
    lines.append("| --- |" + " --- |" * len(names))
    lines.append("| items | " + " | ".join(str(audits[n]["items"]) for n in names) + " |")
    for key, what in (("ill_posed", "ill-posed items"), ("invalid_gold_path", "gold path not a KG path"),
                      ("option_named_in_question", "question names an option")):
        lines.append(f"| {what} | " + " | ".join(str(audits[n][key]) for n in names) + " |")
    lines.append("| shared with the other files (question / path / start+chain) | " + " | ".join(
        _overlap_text(audits[n]) for n in names) + " |")
    lines.append("| KG-oracle accuracy | " + " | ".join(_pct(audits[n]["oracle_accuracy"]) for n in names) + " |")
    baselines = list(dict.fromkeys(b for n in names for b in audits[n]["shortcuts"]))
    for b in baselines:
        cells = []
        for n in names:
            row = audits[n]["shortcuts"].get(b)
            cells.append(f"{_pct(row['accuracy'])} [{_pct(row['ci95'][0])}, {_pct(row['ci95'][1])}]" if row else "n/a")
        lines.append(f"| `{b}` | " + " | ".join(cells) + " |")
    lines += ["", "Baselines: " + "; ".join(
        f"`{b}`: {desc}" for b in baselines
        if (desc := next((audits[n]['shortcuts'][b].get('description', '') for n in names if b in audits[n]['shortcuts']), ''))
    ) + ".", ""]
    problems = {n: audits[n]["problems"] for n in names if audits[n]["problems"] and n in data.held_out}
    if problems:
        lines += ["Problems `tasks audit --strict` would report on the held-out splits:", ""]
        lines += [f"- `{n}`: " + "; ".join(p) for n, p in problems.items()]
        lines.append("")
    lines += [
        "## Fields", "",
        "`prompt` is the user message and `messages` the chat (system prompt + user message) kgreason's models "
        "see; `start`, `relation_chain`, `options` / `option_ids` (letter -> label / entity id), `answer` (letter), "
        "`answer_entity`, `hop_len`, `path` (the gold path), `reference_trace` and `reference_completion` (the SFT "
        "target). `ground_truth` is the reward label: a JSON string with the task's scored fields and the part of "
        "the graph needed to verify every claimed hop along the chain, read by `kgreason.reward.adapters` "
        "(verl `compute_score`, OpenRLHF `reward_func`, TRL `trl_reward`); `reward_model` repeats it where verl "
        "reads it. See kgreason's docs/export.md.", "",
        "```python",
        "from datasets import load_dataset",
        "from kgreason.reward.adapters import compute_score",
        "",
        "ds = load_dataset(\"path/to/this/folder\")",
        "row = ds[\"eval\"][0]",
        "compute_score(\"kgreason\", row[\"reference_completion\"], row[\"ground_truth\"])  # 1.8, the best score",
        "```", "",
        "## License", "",
        license_note, "",
    ]
    return "\n".join(lines)


def _count_hops(tasks: list) -> dict[str, int]:
    counts: dict[str, int] = {}
    for t in tasks:
        counts[str(t.hop_len)] = counts.get(str(t.hop_len), 0) + 1
    return counts


def _overlap_text(audit: dict) -> str:
    rows = audit.get("overlap") or []
    if not rows:
        return "n/a"
    return " / ".join(str(sum(r[k] for r in rows)) for k in ("question", "gold_path", "start_chain"))


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _chance_text(family: Any, n_entities: int) -> str:
    if family.offers_options:
        return "chance is 25%"
    return (f"the candidates are every tail of the last stated relation, and chance is one in {n_entities:,} "
            "(the graph's entities)")
