"""Shared data for test_tasks_* and test_baselines*: small datasets on the built-in graph, made once per
test run and shared by the xdist workers (generation is the slow part of these tests), and a
hand-sized graph."""

from __future__ import annotations

import atexit
import fcntl
import os
import pickle
import shutil
import tempfile
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from conftest import SHARED_DIR_ENV
from kgreason.kg.builtin import build_devops_kg
from kgreason.kg.graph import Edge, Entity, KnowledgeGraph, Relation
from kgreason.kg.kgjson import save_kg
from kgreason.tasks.generate import GeneratedDataset, SplitSpec, TaskConfig, generate, write_dataset

# The default splits with the training files at 1/5 of their sizes (generation time is spent on
# them and on eval). Eval keeps its default 300 items: at 120 the shortcut rates' sampling noise
# (about +-8 points) is too wide for the 35% limit of `tasks audit --strict`.
SMALL_SPLITS = (
    SplitSpec("eval", 300, 4, 5, held_out=True),
    SplitSpec("train_easy", 300, 1, 3),
    SplitSpec("train_hard", 120, 4, 5),
)


def builtin_kg(seed: int = 0) -> KnowledgeGraph:
    return _builtin_kg(seed)


@lru_cache(maxsize=4)
def _builtin_kg(seed: int) -> KnowledgeGraph:
    return build_devops_kg(seed=seed)


def small_dataset(mode: str = "closed") -> GeneratedDataset:
    """Seed 0, SMALL_SPLITS, on the built-in graph of seed 0 (made once per session and mode)."""
    return _small_dataset(mode)


def small_dataset_dir(mode: str = "closed") -> Path:
    """`small_dataset(mode)` written as `tasks generate` writes it, with kg.json beside it."""
    return _small_dataset_dir(mode)


@lru_cache(maxsize=2)  # called positionally only: f() and f("closed") would be two cache entries
def _small_dataset(mode: str) -> GeneratedDataset:
    return _shared(f"small-{mode}.pickle", lambda: generate(builtin_kg(0), TaskConfig(seed=0, mode=mode,
                                                                                      splits=SMALL_SPLITS)))


@lru_cache(maxsize=2)
def _small_dataset_dir(mode: str) -> Path:
    out = Path(tempfile.mkdtemp(prefix=f"kgreason-tasks-{mode}-"))
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    save_kg(builtin_kg(0), out / "kg.json")
    write_dataset(small_dataset(mode), out)
    return out


T = TypeVar("T")


def _shared(name: str, make: Callable[[], T]) -> T:
    """`make()`, computed once per test run and shared by the xdist workers through a pickle in the
    run's shared folder (conftest.py; a single process writes and reads it too). Why: the test
    files that use a dataset land on different workers, and each would generate the same one
    (seconds each). Without the folder (a test module run outside pytest), just `make()`."""
    folder = os.environ.get(SHARED_DIR_ENV)
    if not folder:
        return make()
    path = Path(folder) / name
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other worker waits for the first one's result
        if path.is_file():
            with open(path, "rb") as f:
                return pickle.load(f)
        value = make()
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            pickle.dump(value, f)
        tmp.replace(path)
        return value


def tiny_kg() -> KnowledgeGraph:
    """TLSHandshakeError -> causes -> fixes -> tools, small enough to reason about by hand."""
    ents = [
        Entity("tls", "TLSHandshakeError", "symptom"),
        Entity("skew", "ClockSkew", "cause"),
        Entity("cert", "ExpiredCertificate", "cause"),
        Entity("ntp", "SyncNTP", "fix"),
        Entity("rotate", "RotateCertificate", "fix"),
        Entity("restart", "RestartPod", "fix"),
        Entity("drain", "DrainNode", "fix"),
        Entity("chrony", "chronyc", "tool"),
        Entity("certbot", "certbot", "tool"),
        Entity("kubectl", "kubectl", "tool"),
        Entity("helm", "helm", "tool"),
    ]
    rels = [Relation("caused_by", "is caused by"), Relation("fixed_by", "is fixed by"), Relation("uses_tool", "uses")]
    edges = [
        Edge("tls", "caused_by", "skew"), Edge("tls", "caused_by", "cert"),
        Edge("skew", "fixed_by", "ntp"), Edge("cert", "fixed_by", "rotate"),
        Edge("skew", "fixed_by", "restart"), Edge("cert", "fixed_by", "drain"),
        Edge("ntp", "uses_tool", "chrony"), Edge("rotate", "uses_tool", "certbot"),
        Edge("restart", "uses_tool", "kubectl"), Edge("drain", "uses_tool", "helm"),
    ]
    return KnowledgeGraph.from_parts(ents, rels, edges, name="tiny")
