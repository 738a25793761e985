"""`kgreason export lm-eval`: a held-out split as an lm-evaluation-harness task folder.

    FOLDER/
      <name>_hop4.yaml, <name>_hop5.yaml   one generate_until task per hop count in the split
      <name>.yaml                          the group <name> over them (acc, faithful, reward, format_ok)
      utils.py                             process_results: kgreason's reward on each generation
      data/<split>_hop4.jsonl, ...         the rows of each task (local JSON, absolute data_files paths)
      README.md                            how to run it

    lm_eval --model hf --model_args pretrained=MODEL --include_path FOLDER --tasks kgreason \\
            --apply_chat_template

Prompts: the task's `description` is kgreason's system prompt and `doc_to_text` its user message,
so with `--apply_chat_template` a chat model sees exactly kgreason's two messages; without it the
two are joined as plain text. Generation is greedy, stops at a blank line (the answer line ends
the format; `process_results` cuts after it, as kgreason's samplers do).

`process_results` imports kgreason (it must be installed where lm_eval runs) and scores the
generation against the row's self-contained `ground_truth` label with
`kgreason.reward.adapters.score_ground_truth`: `acc` (the letter is right), `faithful` (the trace is
a real chain along the stated relations to the chosen option), `reward` (the preset's total) and
`format_ok`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kgreason.export.rows import DataFolder, check_out, split_rows
from kgreason.io import InputError, atomic_write_jsonl, atomic_write_text

METRICS = ("acc", "faithful", "reward", "format_ok")
UNTIL = ("\n\n", "\nQuestion:", "<|im_end|>", "<|endoftext|>")
# What each lm-eval document keeps of the export row (the prompt, the answer, the reward label).
DOC_FIELDS = ("id", "hop_len", "prompt", "question", "start", "relation_chain", "options", "answer",
              "answer_entity", "answer_label", "reference_completion", "ground_truth")

UTILS_PY = '''"""process_results for the kgreason lm-eval tasks (written by `kgreason export lm-eval`).

Scores each generation with kgreason's KG reward against the row's self-contained ground_truth
label (kgreason.reward.adapters): the same cut after the answer line and the same Scorer as
kgreason's own evaluation. Needs kgreason installed where lm_eval runs.
"""

from kgreason.reward.adapters import score_ground_truth

PRESET = {preset!r}


def process_results(doc, results):
    text = results[0] if results else ""
    breakdown = score_ground_truth(doc["ground_truth"], text, PRESET)
    return {{
        "acc": float(breakdown.correct),
        "faithful": float(breakdown.faithful),
        "reward": float(breakdown.total),
        "format_ok": float(breakdown.format_ok),
    }}
'''


def _q(value: str) -> str:
    """A YAML double-quoted scalar (JSON string syntax is valid YAML; ASCII-escaped to be safe)."""
    return json.dumps(value, ensure_ascii=True)


def task_yaml(task: str, data_file: Path, system_prompt: str, max_gen_toks: int, version: str) -> str:
    metrics = "\n".join(f"  - metric: {m}\n    aggregation: mean\n    higher_is_better: true" for m in METRICS)
    until = "\n".join(f"    - {_q(s)}" for s in UNTIL)
    return (
        f"# Written by `kgreason export lm-eval`; see README.md in this folder.\n"
        f"task: {task}\n"
        f"dataset_path: json\n"
        f"dataset_kwargs:\n"
        f"  data_files:\n"
        f"    test: {_q(str(data_file))}\n"
        f"test_split: test\n"
        f"output_type: generate_until\n"
        f"description: {_q(system_prompt)}\n"
        f"doc_to_text: \"{{{{prompt}}}}\"\n"
        f"doc_to_target: \"{{{{reference_completion}}}}\"\n"
        f"target_delimiter: \"\\n\"\n"
        f"num_fewshot: 0\n"
        f"generation_kwargs:\n"
        f"  until:\n{until}\n"
        f"  do_sample: false\n"
        f"  max_gen_toks: {max_gen_toks}\n"
        f"process_results: !function utils.process_results\n"
        f"metric_list:\n{metrics}\n"
        f"metadata:\n"
        f"  version: {version}\n"
    )


def group_yaml(group: str, tasks: list[str], version: str) -> str:
    task_lines = "\n".join(f"  - {t}" for t in tasks)
    metrics = "\n".join(f"  - metric: {m}\n    aggregation: mean\n    weight_by_size: true" for m in METRICS)
    return (
        f"# Written by `kgreason export lm-eval`; see README.md in this folder.\n"
        f"group: {group}\n"
        f"task:\n{task_lines}\n"
        f"aggregate_metric_list:\n{metrics}\n"
        f"metadata:\n"
        f"  version: {version}\n"
    )


def export_lm_eval(data: DataFolder, out: str | Path, split: str | None = None, name: str = "kgreason",
                   preset: str = "kgreason", max_gen_toks: int = 256) -> dict[str, Any]:
    """Write the task folder; return the task names, hop counts and item counts."""
    from kgreason.families import family_of_tasks, get_family
    from kgreason.reward.presets import REWARD_PRESETS

    if preset not in REWARD_PRESETS:
        raise InputError(f"--reward-preset: {REWARD_PRESETS.unknown_message(preset)}")
    if not name.isidentifier():
        raise InputError(f"--name: {name!r} must be letters, digits and underscores (it names the lm-eval tasks)")
    if max_gen_toks < 1:
        raise InputError(f"--max-gen-toks must be at least 1, got {max_gen_toks}")
    check_out(data, out)
    split = split or (data.held_out[0] if data.held_out else next(iter(data.splits)))
    if split not in data.splits:
        raise InputError(f"--split: {data.path} has no split {split!r} (it has {', '.join(data.splits)})")
    rows = split_rows(data, split)
    system_prompt = get_family(family_of_tasks(data.splits[split])).system_prompt
    if not rows:
        raise InputError(f"{data.path / (split + '.jsonl')}: no items to export")
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    by_hop: dict[int, list[dict]] = {}
    for row in rows:
        by_hop.setdefault(int(row["hop_len"]), []).append({k: row[k] for k in DOC_FIELDS})
    version = "1.0"
    tasks: list[str] = []
    counts: dict[str, int] = {}
    for stale in out.glob(f"{name}_hop*.yaml"):
        stale.unlink()  # a re-export with other hop counts leaves no orphan task behind
    for hop, docs in sorted(by_hop.items()):
        task = f"{name}_hop{hop}"
        data_file = out / "data" / f"{split}_hop{hop}.jsonl"
        atomic_write_jsonl(data_file, docs)
        atomic_write_text(out / f"{task}.yaml", task_yaml(task, data_file, system_prompt, max_gen_toks, version))
        tasks.append(task)
        counts[task] = len(docs)
    atomic_write_text(out / f"{name}.yaml", group_yaml(name, tasks, version))
    atomic_write_text(out / "utils.py", UTILS_PY.format(preset=preset))
    atomic_write_text(out / "README.md", _readme(data, out, split, name, tasks, counts, preset))
    return {"split": split, "group": name, "tasks": tasks, "counts": counts, "folder": str(out)}


def _readme(data: DataFolder, out: Path, split: str, name: str, tasks: list[str], counts: dict[str, int], preset: str) -> str:
    rows = "\n".join(f"| `{t}` | {counts[t]} |" for t in tasks)
    return f"""# kgreason tasks for lm-evaluation-harness

Written by `kgreason export lm-eval` from `{data.path}` (split `{split}`, seed {data.seed}).

| task | items |
| --- | --- |
{rows}

Group `{name}` averages them, weighted by size.

```
lm_eval --model hf --model_args pretrained=MODEL --include_path {out} \\
        --tasks {name} --apply_chat_template --batch_size 8
```

Metrics (kgreason's reward, preset `{preset}`, via `utils.py`, which imports kgreason): `acc` (right
letter), `faithful` (the trace is a real chain along the stated relations ending at the chosen
option), `reward` (the preset's total) and `format_ok`. With `--apply_chat_template` the model sees
kgreason's system prompt (the task `description`) and user message; without it, both as plain text.
`data_files` are absolute paths: export again after moving this folder.
"""
