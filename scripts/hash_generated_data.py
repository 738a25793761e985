"""Time `generate()` on a few fixed configurations and print a hash of each result (every split
record and the manifest), to show that a generator change keeps the files a seed gives.

    .venv/bin/python scripts/hash_generated_data.py            # at one commit
    PYTHONPATH=/path/to/other/worktree/src .venv/bin/python scripts/hash_generated_data.py

Equal hashes at two commits: byte-identical data. The times are this machine's (name its CPU).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

from kgreason.kg.builtin import build_devops_kg
from kgreason.kg.kgjson import load_kg
from kgreason.tasks.generate import GeneratedDataset, SplitSpec, TaskConfig, generate

HOBBY = Path(__file__).resolve().parents[1] / "tests" / "data" / "hobby_kg.json"
# SMALL: the tests' SMALL_SPLITS (tests/conftest_tasks.py), the data most of the task tests read.
SMALL = (SplitSpec("eval", 300, 4, 5, held_out=True), SplitSpec("train_easy", 300, 1, 3),
         SplitSpec("train_hard", 120, 4, 5))
TINY = (SplitSpec("eval", 120, 4, 5, held_out=True), SplitSpec("train_easy", 120, 1, 3),
        SplitSpec("train_hard", 60, 4, 5))


def digest(data: GeneratedDataset) -> str:
    records = {name: [t.to_dict() for t in tasks] for name, tasks in data.splits.items()}
    blob = json.dumps(records, sort_keys=True) + json.dumps(data.manifest, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def main(names: list[str]) -> None:
    devops = build_devops_kg(seed=0)
    configs = {
        "small-open": (devops, TaskConfig(seed=0, mode="open", splits=SMALL)),
        "small-closed": (devops, TaskConfig(seed=0, mode="closed", splits=SMALL)),
        "default-open": (devops, TaskConfig(seed=0, mode="open")),
        "default-closed": (devops, TaskConfig(seed=0, mode="closed")),
        "strict-all-open-s1": (devops, TaskConfig(seed=1, mode="open", splits=TINY, strict_distractors="all")),
        "hobby-open-s2": (load_kg(HOBBY), TaskConfig(seed=2, mode="open", splits=TINY)),
    }
    for name in names or list(configs):
        kg, config = configs[name]
        start = time.perf_counter()
        data = generate(kg, config)
        print(f"{name}\t{time.perf_counter() - start:.1f} s\t{digest(data)}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
