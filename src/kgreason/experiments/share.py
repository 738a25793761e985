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
resumable checkpoints, into a hidden temporary folder and renamed; its arm.json says where it came
from and which code revision trained it, and the experiment's results.json and report list the
copied arm-seeds (their training time is not counted again). A source trained by another code
revision is still shared (the recipe and data are the same), and the experiment prints a warning.
An arm-seed that already has a folder here (an interrupted run) is left to resume itself.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from kgreason.experiments.arms import ARM_FILE, EXPERIMENT_FILE, Arm, run_dir
from kgreason.io import atomic_write_json, file_digest, file_version, read_json

DATA_FILES = ("kg.json", "facts.jsonl", "eval.jsonl", "train_easy.jsonl", "train_hard.jsonl")
SFT_ADAPTER = Path("adapters") / "sft" / "adapter_model.safetensors"


_DIGESTS: dict[tuple, str] = {}  # (path, file_version) -> sha256: an experiment asks once per arm-seed and sibling


def _cached_digest(path: Path) -> str:
    key = (str(path.resolve()), file_version(path))
    if key in _DIGESTS:
        return _DIGESTS[key]
    digest = file_digest(path)
    if file_version(path) == key[1]:  # remembered only if the file did not change while it was read
        _DIGESTS[key] = digest
    return digest


def data_digest(data: Path) -> str | None:
    """One digest over the data folder's task and graph files (names and bytes); None without an eval file.
    A file's digest is remembered while its version (mtime, ctime, inode, size) stays the same."""
    if not (data / "eval.jsonl").is_file():
        return None
    digest = hashlib.sha256()
    for name in DATA_FILES:
        path = data / name
        digest.update(name.encode() + b"\0" + (_cached_digest(path).encode() if path.is_file() else b"-") + b"\0")
    return digest.hexdigest()


def sft_adapter_digest(out: Path, seed: int) -> str | None:
    path = out / "runs" / f"sft-s{seed}" / SFT_ADAPTER
    return file_digest(path) if path.is_file() else None


def expected_data_digest(out: Path, data_options: dict[str, Any]) -> str | None:
    """The data digest `out` will have: its own data folder's, or before the data stage (a dry run)
    that of a sibling experiment made with the same data options (generation is seeded)."""
    if (out / "data" / "eval.jsonl").is_file():
        return data_digest(out / "data")
    for other in candidate_folders(out):
        try:
            recipe = read_json(other / EXPERIMENT_FILE).get("recipe") or {}
        except (OSError, ValueError):
            continue
        if recipe.get("data") == data_options:
            return data_digest(other / "data")
    return None


def candidate_folders(out: Path) -> list[Path]:
    """The experiment folders beside `out` (each holds experiment.json), `out` itself left out;
    folders this user may not read (a shared /tmp) are passed over."""
    here = out.resolve()
    found = []
    try:
        entries = list(os.scandir(here.parent))
    except OSError:
        return []
    for entry in entries:
        try:
            if (entry.is_dir() and not entry.name.startswith(".") and Path(entry.path).resolve() != here
                    and (Path(entry.path) / EXPERIMENT_FILE).is_file()):
                found.append(Path(entry.path))
        except OSError:
            continue
    return sorted(found)


def _finished_arm_seeds(other: Path) -> Iterator[tuple[Path, dict, dict]]:
    """(folder, arm.json, config.json) of each finished arm-seed of an experiment folder; a copy in
    progress (a hidden temporary folder), an unreadable or malformed record is passed over."""
    try:
        folders = sorted(p for p in (other / "runs").iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return
    for folder in folders:
        try:
            record, config = read_json(folder / ARM_FILE), read_json(folder / "config.json")
        except (OSError, ValueError):
            continue
        if not isinstance(record, dict) or not isinstance(config, dict):
            continue
        if record.get("done") is True and record.get("run_dir") == f"runs/{folder.name}":
            yield folder, record, config


def same_recipe(saved: dict[str, Any], current: dict[str, Any], defaults: dict[str, Any] | None) -> bool:
    """Whether a saved `pipeline` record is the current one. An option the saved record lacks was
    added to kgreason after that run: it counts as the same only where the current value is the
    option's default, which by the project's convention is the behaviour runs had before it existed;
    an option whose default changes outputs (data.image_decoys "auto" may regenerate data) is still
    caught by find_shared's data-files digest. Without `defaults`, every key must match."""
    for key in saved.keys() | current.keys():
        if key not in current:
            return False
        mine = current[key]
        if key not in saved:
            if defaults is None or key not in defaults or mine != defaults[key]:
                return False
            continue
        theirs = saved[key]
        if isinstance(mine, dict) and isinstance(theirs, dict):
            sub = defaults.get(key) if isinstance(defaults, dict) else None
            if not same_recipe(theirs, mine, sub if isinstance(sub, dict) else None):
                return False
        elif mine != theirs:
            return False
    return True


def find_shared(out: Path, arm: Arm, seed: int, pipeline: dict[str, Any],
                folders: Iterable[Path] | None = None, sft_digest: str | None = None,
                data: str | None = None, defaults: dict[str, Any] | None = None) -> Path | None:
    """A finished arm-seed folder in another experiment that is this arm-seed's run, or None.
    `sft_digest` and `data`: the SFT adapter this experiment's arms of `seed` start from and its
    data files' digest, when they are not in `out` yet (a dry run); by default read from `out`.
    `defaults`: the recipe's defaults, for options added since a source ran (see same_recipe)."""
    mine = data or data_digest(out / "data")
    if mine is None:
        return None
    my_sft: str | None = sft_digest
    for other in candidate_folders(out) if folders is None else folders:
        if data_digest(other / "data") != mine:
            continue
        for folder, record, config in _finished_arm_seeds(other):
            if record.get("seed") != seed or (record.get("definition") or {}).get("kind") != arm.kind:
                continue
            saved = config.get("pipeline")
            if not isinstance(saved, dict) or not same_recipe(saved, pipeline, defaults):
                continue
            if arm.needs_sft:
                my_sft = my_sft or sft_adapter_digest(out, seed)
                if my_sft is None or sft_adapter_digest(other, seed) != my_sft:
                    continue
            return folder
    return None


def copy_arm_seed(source: Path, out: Path, arm: Arm, seed: int, experiment: dict[str, Any]) -> dict:
    """Copy a finished arm-seed into this experiment as `arm`, rewriting its arm.json and the
    identity fields of its config.json (`run`, `experiment`: this experiment's); returns arm.json.

    The copy is written into a hidden temporary folder beside its place and renamed (io.staged_dir),
    so a crash leaves nothing a rerun, a sibling experiment or the run listings would read."""
    from kgreason.io import staged_dir

    dest = run_dir(out, arm, seed)
    old = read_json(source / ARM_FILE)
    config = read_json(source / "config.json")
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
              # a copy of a copy names where the arm-seed was trained, not the copy it was taken from
              "copied_from": old.get("copied_from") or str(source.resolve()),
              "copied_revision": config.get("git_revision"),
              "copied_dirty": config.get("git_dirty")}
    dest.parent.mkdir(parents=True, exist_ok=True)
    with staged_dir(dest) as tmp:
        shutil.copytree(source, tmp, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(ARM_FILE, "checkpoint-*", "*.tmp", ".*"))
        atomic_write_json(tmp / "config.json", {**config, "run": dest.name, "experiment": experiment,
                                                "copied_from": record["copied_from"]})
        atomic_write_json(tmp / ARM_FILE, record)  # written last, as in a trained arm-seed
    return record
