"""The data stage, one function for every caller: a graph and its task files in one folder.

`kgreason run` builds it inside the run folder (data/), an experiment once for all its arms
(<experiment>/data/). kg.json is written first and manifest.json last, so a folder with a manifest
is complete and is reused as it is; an interrupted build starts again. Torch-free.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from kgreason.config import DataOptions
from kgreason.io import read_json


def data_folder_complete(folder: Path) -> bool:
    return (folder / "manifest.json").is_file() and (folder / "kg.json").is_file()


def build_data_folder(folder: str | Path, opts: DataOptions, progress: bool = False) -> dict[str, Any]:
    """Open the graph `opts.kg` (a registered source such as builtin:devops, or a file), generate the
    eval / train_easy / train_hard splits and facts, and write them with kg.json into `folder`.
    Returns the graph's size and the split counts."""
    from kgreason.kg.io import save_kg
    from kgreason.kg.sources import open_kg
    from kgreason.tasks.generate import DEFAULT_SPLITS, TaskConfig, generate, write_dataset

    folder = Path(folder)
    if data_folder_complete(folder):
        manifest = read_json(folder / "manifest.json")
        return {"reused": True, "counts": manifest.get("counts", {}) if isinstance(manifest, dict) else {}}
    kg = open_kg(opts.kg, seed=opts.seed)
    sizes = {"eval": opts.eval_size, "train_easy": opts.train_easy, "train_hard": opts.train_hard}
    splits = tuple(replace(s, size=sizes.get(s.name, s.size)) for s in DEFAULT_SPLITS)
    dataset = generate(kg, TaskConfig(seed=opts.seed, mode=opts.mode, splits=splits), progress=progress)
    folder.mkdir(parents=True, exist_ok=True)
    save_kg(kg, folder / "kg.json")
    write_dataset(dataset, folder)  # manifest.json last: it marks the folder complete
    counts = {name: len(tasks) for name, tasks in dataset.splits.items()} | {"facts": len(dataset.facts)}
    return {"kg": {"entities": len(kg.entities), "edges": len(kg.edges)}, "counts": counts}
