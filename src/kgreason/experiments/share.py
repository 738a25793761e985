"""Reuse a finished arm-seed of another experiment folder instead of training it again.

Several grids define the same arm: `sft` is in every grid, and `frontier` and `curriculum` both
compare against `rsft_hard`. On the 2-core CPU an SFT arm-seed is about half an hour, so training
it once per grid would repeat hours. Before running an arm-seed, the experiment looks in the folders
beside its own (`experiments/*/`) for a finished arm-seed that would be the same run:

- the same data: the task and graph files of both folders' `data/` are byte-identical;
- the same resolved recipe (model, data options, every phase's options, the seed), compared as
  the whole `pipeline` record of the run folder's config.json, not just the arm's overrides;
- for arms that continue the SFT adapter (RSFT, GRPO, DPO): both folders' SFT adapter of that seed
  is byte-identical, so the copied arm started from the model this experiment's arms start from.

A match is copied (not linked, so deleting one experiment leaves the other whole), without its
resumable checkpoints, into a temporary name and renamed; its arm.json says where it came from.
An arm-seed that already has a folder here (an interrupted run) is left to resume itself.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kgreason.experiments.arms import ARM_FILE, EXPERIMENT_FILE, Arm, run_dir
from kgreason.io import atomic_write_json, read_json

DATA_FILES = ("kg.json", "facts.jsonl", "eval.jsonl", "train_easy.jsonl", "train_hard.jsonl")
SFT_ADAPTER = Path("adapters") / "sft" / "adapter_model.safetensors"
COPY_SUFFIX = ".copying"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def data_digest(data: Path) -> str | None:
    """One digest over the data folder's task and graph files (names and bytes); None without an eval file."""
    if not (data / "eval.jsonl").is_file():
        return None
    digest = hashlib.sha256()
    for name in DATA_FILES:
        path = data / name
        digest.update(name.encode() + b"\0" + (_sha256(path).encode() if path.is_file() else b"-") + b"\0")
    return digest.hexdigest()


def sft_adapter_digest(out: Path, seed: int) -> str | None:
    path = out / "runs" / f"sft-s{seed}" / SFT_ADAPTER
    return _sha256(path) if path.is_file() else None


def candidate_folders(out: Path) -> list[Path]:
    """The experiment folders beside `out` (each holds experiment.json), `out` itself left out."""
    here = out.resolve()
    parent = here.parent
    if not parent.is_dir():
        return []
    return sorted(p for p in parent.iterdir() if p.is_dir() and p.resolve() != here and (p / EXPERIMENT_FILE).is_file())


def find_shared(out: Path, arm: Arm, seed: int, pipeline: dict[str, Any],
                folders: Iterable[Path] | None = None) -> Path | None:
    """A finished arm-seed folder in another experiment that is this arm-seed's run, or None."""
    mine = data_digest(out / "data")
    if mine is None:
        return None
    my_sft: str | None = None
    for other in candidate_folders(out) if folders is None else folders:
        if data_digest(other / "data") != mine:
            continue
        for record_path in sorted((other / "runs").glob(f"*/{ARM_FILE}")):
            folder = record_path.parent
            try:
                record, config = read_json(record_path), read_json(folder / "config.json")
            except (OSError, ValueError):
                continue
            if not record.get("done") or record.get("seed") != seed:
                continue
            if (record.get("definition") or {}).get("kind") != arm.kind or config.get("pipeline") != pipeline:
                continue
            if arm.needs_sft:
                my_sft = my_sft or sft_adapter_digest(out, seed)
                if my_sft is None or sft_adapter_digest(other, seed) != my_sft:
                    continue
            return folder
    return None


def copy_arm_seed(source: Path, out: Path, arm: Arm, seed: int) -> dict:
    """Copy a finished arm-seed into this experiment as `arm`, rewriting its arm.json; returns the record."""
    dest = run_dir(out, arm, seed)
    tmp = dest.with_name(dest.name + COPY_SUFFIX)
    shutil.rmtree(tmp, ignore_errors=True)  # a copy interrupted earlier
    shutil.copytree(source, tmp, ignore=shutil.ignore_patterns(ARM_FILE, "checkpoint-*", "*.tmp"))
    old = read_json(source / ARM_FILE)
    src_out = source.parent.parent

    def moved(rel: str | None) -> str | None:
        # paths in arm.json are relative to the experiment folder: the arm's own folder moves with it;
        # the SFT adapter it may point to (an RSFT run without winners) is byte-identical here
        if not rel:
            return None
        path = src_out / rel
        if path.is_relative_to(source):
            return str((dest / path.relative_to(source)).relative_to(out))
        return rel if (out / rel).exists() else None

    record = {**old, "arm": arm.name, "definition": arm.to_dict(), "run_dir": str(dest.relative_to(out)),
              "adapter": moved(old.get("adapter")), "eval_dir": moved(old.get("eval_dir")),
              "copied_from": str(source.resolve())}
    atomic_write_json(tmp / ARM_FILE, record)
    tmp.rename(dest)
    return record
