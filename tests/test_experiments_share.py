"""Sharing finished arm-seeds between experiment folders (kgreason/experiments/share.py): what counts
as the same run, and what the copy looks like. Folders are written by hand here; the end-to-end
copy between two real experiments is in test_experiments_grid.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kgreason.experiments.arms import Arm
from kgreason.experiments.share import copy_arm_seed, find_shared, same_recipe

PIPELINE = {"model": "tiny:random", "seed": 0, "rsft": {"distribution": "hard", "frontier": False}}
SFT = Arm("sft", "SFT", "sft", "", {}, "")
IDENTITY = {"experiment": "frontier", "arm": {"name": "sft"}, "seed": 0, "scale": "tiny"}
RSFT_HARD = Arm("rsft_hard", "RSFT hard", "rsft", "", {"rsft.distribution": "hard"}, "sft")


def write(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())


def experiment(root: Path, name: str, eval_text: str = "eval\n") -> Path:
    out = root / name
    write(out / "experiment.json", "{}")
    for f in ("kg.json", "facts.jsonl", "train_easy.jsonl", "train_hard.jsonl"):
        write(out / "data" / f, f)
    write(out / "data" / "eval.jsonl", eval_text)
    return out


def finished(out: Path, folder_name: str, kind: str, seed: int = 0, pipeline: dict | None = None,
             sft_bytes: bytes | None = None) -> Path:
    folder = out / "runs" / folder_name
    write(folder / "config.json", json.dumps({"run": folder_name, "git_revision": "abc123",
                                              "experiment": {"experiment": out.name}, "pipeline": pipeline or PIPELINE}))
    write(folder / "eval" / "final" / "metrics.json", "{}")
    write(folder / "adapters" / kind / "checkpoint-10" / "state", "resumable")
    if sft_bytes is not None:
        write(folder / "adapters" / "sft" / "adapter_model.safetensors", sft_bytes)
    write(folder / "arm.json", json.dumps({"arm": folder_name.rsplit("-s", 1)[0], "seed": seed, "done": True,
                                           "definition": {"kind": kind},
                                           "run_dir": f"runs/{folder_name}",
                                           "adapter": f"runs/{folder_name}/adapters/{kind}",
                                           "eval_dir": f"runs/{folder_name}/eval/final"}))
    return folder


def test_the_same_sft_run_is_found_and_copied_without_checkpoints(tmp_path):
    a, b = experiment(tmp_path, "reward"), experiment(tmp_path, "frontier")
    source = finished(a, "sft-s0", "sft", sft_bytes=b"weights")
    assert find_shared(b, SFT, 0, PIPELINE) == source
    record = copy_arm_seed(source, b, SFT, 0, IDENTITY)
    dest = b / "runs" / "sft-s0"
    assert record["copied_from"] == str(source.resolve()) and record["run_dir"] == "runs/sft-s0"
    assert record["copied_revision"] == "abc123"
    config = json.loads((dest / "config.json").read_text())
    assert config["run"] == "sft-s0" and config["experiment"] == IDENTITY and config["pipeline"] == PIPELINE
    assert json.loads((dest / "arm.json").read_text()) == record
    assert (dest / "adapters" / "sft" / "adapter_model.safetensors").read_bytes() == b"weights"
    assert (dest / "eval" / "final" / "metrics.json").is_file()
    assert not (dest / "adapters" / "sft" / "checkpoint-10").exists(), "checkpoints are not copied"
    assert sorted(p.name for p in (b / "runs").iterdir()) == ["sft-s0"], "no temporary folder left"
    # copied on from the copy: it still names the folder where it was trained (findings says so)
    c = experiment(tmp_path, "curriculum")
    again = copy_arm_seed(dest, c, SFT, 0, IDENTITY)
    assert again["copied_from"] == str(source.resolve())
    assert json.loads((c / "runs" / "sft-s0" / "config.json").read_text())["copied_from"] == str(source.resolve())


@pytest.mark.parametrize("change", ["data", "pipeline", "seed", "kind", "unfinished"])
def test_anything_that_differs_is_not_shared(tmp_path, change):
    a = experiment(tmp_path, "reward", eval_text="other eval\n" if change == "data" else "eval\n")
    b = experiment(tmp_path, "frontier")
    pipeline = {**PIPELINE, "seed": 0, "sft": {"trace_style": "short"}} if change == "pipeline" else PIPELINE
    source = finished(a, "sft-s0", "rsft" if change == "kind" else "sft", seed=1 if change == "seed" else 0,
                      pipeline=pipeline, sft_bytes=b"weights")
    if change == "unfinished":
        (source / "arm.json").unlink()
    assert find_shared(b, SFT, 0, PIPELINE) is None


def test_an_rsft_arm_is_shared_only_from_the_same_sft_adapter_under_its_own_name(tmp_path):
    a, b = experiment(tmp_path, "reward"), experiment(tmp_path, "frontier")
    finished(a, "sft-s0", "sft", sft_bytes=b"weights")
    source = finished(a, "rsft_kgreason-s0", "rsft")
    assert find_shared(b, RSFT_HARD, 0, PIPELINE) is None, "this folder has no SFT adapter yet"
    write(b / "runs" / "sft-s0" / "adapters" / "sft" / "adapter_model.safetensors", b"other weights")
    assert find_shared(b, RSFT_HARD, 0, PIPELINE) is None, "another SFT model: not the same run"
    write(b / "runs" / "sft-s0" / "adapters" / "sft" / "adapter_model.safetensors", b"weights")
    assert find_shared(b, RSFT_HARD, 0, PIPELINE) == source
    record = copy_arm_seed(source, b, RSFT_HARD, 0, IDENTITY)
    assert record["arm"] == "rsft_hard" and record["definition"] == RSFT_HARD.to_dict()
    assert record["adapter"] == "runs/rsft_hard-s0/adapters/rsft"
    assert record["eval_dir"] == "runs/rsft_hard-s0/eval/final"
    assert (b / record["eval_dir"] / "metrics.json").is_file()


def test_copies_in_progress_and_malformed_records_are_passed_over(tmp_path):
    a, b = experiment(tmp_path, "reward"), experiment(tmp_path, "frontier")
    source = finished(a, "sft-s0", "sft", sft_bytes=b"weights")
    # a copy another experiment is making (a hidden temporary folder), and one whose record names another folder
    hidden = a / "runs" / ".sft-s0.x1.tmp"
    hidden.parent.mkdir(parents=True, exist_ok=True)
    import shutil

    shutil.copytree(source, hidden)
    (source / "arm.json").write_text("[]")  # valid JSON, not a record
    assert find_shared(b, SFT, 0, PIPELINE) is None
    (source / "arm.json").write_text(json.dumps({"seed": 0, "done": True, "definition": {"kind": "sft"},
                                                 "run_dir": "runs/elsewhere"}))
    assert find_shared(b, SFT, 0, PIPELINE) is None


def test_an_unreadable_folder_beside_the_experiment_is_passed_over(tmp_path, monkeypatch):
    a, b = experiment(tmp_path, "reward"), experiment(tmp_path, "frontier")
    finished(a, "sft-s0", "sft", sft_bytes=b"weights")
    (tmp_path / "private").mkdir()
    real_is_file = Path.is_file

    def is_file(self):
        if self.parent.name == "private":
            raise PermissionError(13, "Permission denied", str(self))
        return real_is_file(self)

    monkeypatch.setattr(Path, "is_file", is_file)
    assert find_shared(b, SFT, 0, PIPELINE) == a / "runs" / "sft-s0"


def test_an_option_added_since_a_run_matches_only_at_its_default():
    saved = {"seed": 0, "data": {"kg": "builtin:devops"}}
    defaults = {"seed": 0, "data": {"kg": "builtin:devops", "image_decoys": "auto"}}
    assert same_recipe(saved, {"seed": 0, "data": {"kg": "builtin:devops", "image_decoys": "auto"}}, defaults)
    assert not same_recipe(saved, {"seed": 0, "data": {"kg": "builtin:devops", "image_decoys": "on"}}, defaults)
    assert not same_recipe(saved, {"seed": 0, "data": {"kg": "builtin:devops", "image_decoys": "auto"}}, None)
    assert not same_recipe({**saved, "gone": 1}, {"seed": 0, "data": {"kg": "builtin:devops"}}, defaults)
