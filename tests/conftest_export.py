"""A tiny generated data folder for the export tests (a plain module, imported by tests/test_export_*.py)."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

from conftest_tasks import _shared
from kgreason.kg.builtin import build_devops_kg
from kgreason.kg.kgjson import save_kg
from kgreason.tasks.generate import DEFAULT_SPLITS, TaskConfig, generate, write_dataset

SIZES = {"eval": 16, "train_easy": 12, "train_hard": 8}


def data_folder(mode: str = "open") -> Path:
    """Seed 0 on the built-in graph, as `tasks generate` writes it, with kg.json inside (made once per mode)."""
    return _data_folder(mode)


@lru_cache(maxsize=2)
def _data_folder(mode: str) -> Path:
    out = Path(tempfile.mkdtemp(prefix=f"kgreason-export-{mode}-"))
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    kg = build_devops_kg(seed=0)
    splits = tuple(replace(s, size=SIZES[s.name]) for s in DEFAULT_SPLITS)
    # generated once per test run: test_export_hf and test_export_lm_eval may run in different
    # xdist workers (conftest_tasks._shared)
    dataset = _shared(f"export-{mode}.pickle", lambda: generate(kg, TaskConfig(seed=0, mode=mode, splits=splits)))
    write_dataset(dataset, out)
    save_kg(kg, out / "kg.json")
    return out
