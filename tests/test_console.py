"""Console output (issue 13): one progress bar per stage with its ETA, no library chatter on the
console (it goes to the run's log.txt; -v brings it back), no carriage returns when the output is a
file, and resumed stages say that they resume."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest_train import TINY, make_data
from kgreason.console import LineProgress, progress, track


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_data(tmp_path_factory.mktemp("console_data"))


# --- the bar itself --------------------------------------------------------------------------------
def test_line_progress_is_plain_lines_every_tenth_with_an_eta() -> None:
    out = io.StringIO()
    bar = LineProgress(1000, "SFT", unit="step", stream=out)
    bar.set_postfix(loss="0.500")
    for _ in range(1000):
        bar.update(1)
    bar.close()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert len(lines) == 11  # 0%, 10%, ..., 100%: not one line per update
    assert lines[0].startswith("SFT: 0/1000 step (0%)") and lines[-1].startswith("SFT: 1000/1000 step (100%)")
    assert all("ETA" in line for line in lines[1:-1]) and "loss 0.500" in lines[5]


def test_progress_off_a_terminal_is_a_line_progress_and_track_counts(capsys: pytest.CaptureFixture) -> None:
    assert not sys.stderr.isatty()  # pytest captures stderr
    assert isinstance(progress(3, "x"), LineProgress)
    assert list(track([1, 2, 3], "items", unit="it")) == [1, 2, 3]
    err = capsys.readouterr().err
    assert err.splitlines()[0].startswith("x: 0/3 it") and "items: 3/3 it (100%)" in err


# --- a real training phase, as a user runs it --------------------------------------------------------
# The CLI in a fresh interpreter (warning filters and logging are per process), stderr a pipe as in
# `kgreason ... 2> log`. A FutureWarning and a library log record are injected where the model loads,
# so the test does not depend on which warnings this transformers version happens to emit.
SCRIPT = textwrap.dedent("""
    import logging, sys, warnings
    import kgreason.train.phase_model as sft
    load = sft.load_trainable_model
    def noisy(*args, **kwargs):
        warnings.warn("kgreason-test chatter", FutureWarning)
        logging.getLogger("transformers.kgreason_test").warning("kgreason-test log record")
        return load(*args, **kwargs)
    sft.load_trainable_model = noisy
    from kgreason.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def _train_sft(data: Path, run_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    args = ["train", "sft", "--run-dir", str(run_dir), "--model", TINY, "--data", str(data), "--material", "easy",
            "--max-examples", "8", "--max-steps", "4", "--batch-size", "2", "--save-steps", "2", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # As a user's shell would start it, whatever an in-process test set before.
    for name in ("KGREASON_VERBOSE", "KGREASON_QUIET_ENV", "HF_DATASETS_DISABLE_PROGRESS_BARS",
                 "HF_HUB_DISABLE_PROGRESS_BARS"):
        env.pop(name, None)
    return subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, env=env, timeout=300)


def test_training_shows_one_bar_and_sends_library_chatter_to_the_run_log(data: Path, tmp_path: Path) -> None:
    proc = _train_sft(data, tmp_path / "run")
    assert proc.returncode == 0, proc.stderr
    err, out = proc.stderr, proc.stdout
    assert "\r" not in err, "no carriage-return bars when stderr is a file or pipe"
    assert "Warning" not in err and "kgreason-test" not in err
    assert "Tokenizing" not in err and "it/s]" not in err  # datasets' map bars, the Trainer's tqdm bar
    assert "{'" not in out and "{'" not in err  # the Trainer's printed log dicts
    # Exactly one bar for the stage: its lines count up from step 0 to the last step.
    bar = [line for line in err.splitlines() if line.startswith("SFT: ")]
    steps = [int(re.match(r"SFT: (\d+)/4 step", line).group(1)) for line in bar]
    assert steps[0] == 0 and steps[-1] == 4 and steps == sorted(steps)
    assert [line for line in err.splitlines() if line.strip() and not line.startswith("SFT: ")] == []
    log = (tmp_path / "run" / "log.txt").read_text()
    assert "FutureWarning: kgreason-test chatter" in log and "kgreason-test log record" in log
    assert "\r" not in log


def test_verbose_brings_the_library_output_back(data: Path, tmp_path: Path) -> None:
    proc = _train_sft(data, tmp_path / "run", "-v")
    assert proc.returncode == 0, proc.stderr
    assert "FutureWarning: kgreason-test chatter" in proc.stderr and "kgreason-test log record" in proc.stderr
    assert "{'train_runtime'" in proc.stdout + proc.stderr  # the Trainer's own summary line
    assert "examples/s]" in proc.stderr  # datasets' map bars (TRL tokenising the examples)
    assert not any(line.startswith("SFT: ") for line in proc.stderr.splitlines())


# --- resumed stages say so ------------------------------------------------------------------------------
def test_a_resumed_sft_says_so_and_its_bar_starts_at_the_checkpoint(data: Path, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture) -> None:
    from kgreason.config import SFTOptions, TrainOptions
    from kgreason.runs.folder import Run
    from kgreason.train.sft import run_sft
    from kgreason.train.tracking import InterruptAfterStep, SimulatedInterruption

    options = SFTOptions(material=["easy"], max_examples=8,
                         train=TrainOptions(max_steps=4, batch_size=2, max_length=192, save_steps=2, logging_steps=1))
    run = Run.create_or_resume(tmp_path / "run", {"model_ref": TINY})
    with pytest.raises(SimulatedInterruption):
        run_sft(run, TINY, data, options, callbacks=[InterruptAfterStep(3)])
    assert "resuming" not in capsys.readouterr().out  # a fresh start says nothing of the kind
    run_sft(run, TINY, data, options)
    captured = capsys.readouterr()
    assert "resuming SFT from checkpoint step 2" in captured.out
    assert captured.err.splitlines()[0].startswith("SFT: 2/4 step")
    assert "loss " in captured.err  # the latest loss rides on the bar


def test_a_resumed_eval_says_how_many_answers_it_kept(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from kgreason.cli import main

    out = tmp_path / "eval"
    args = ["eval", "--model", TINY, "--tasks", str(data / "eval.jsonl"), "--out", str(out), "--max-items", "3",
            "--max-new-tokens", "6", "--batch-size", "3", "--resamples", "100", "--dtype", "fp32", "--no-shuffle",
            "--no-drift"]
    assert main(args) == 0
    assert "already written" not in capsys.readouterr().out
    predictions = out / "predictions.jsonl"
    lines = predictions.read_text().splitlines()
    predictions.write_text("\n".join(lines[:2]) + "\n")  # as if killed after two answers
    assert main(args) == 0
    captured = capsys.readouterr()
    assert f"eval: 2 of 3 answers already written to {predictions}, continuing" in captured.out
    assert captured.err.startswith("eval: 0/1 item")  # the bar counts only what is left
    assert len(predictions.read_text().splitlines()) == 3
    assert json.loads((out / "metrics.json").read_text())["n_items"] == 3


def test_verbose_takes_back_only_the_switches_quiet_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from kgreason import console

    for name in (*console._BAR_SWITCHES, console._ENV_SET, console.ENV_VERBOSE):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "0")  # the user's own setting
    console.quiet_console()
    assert os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] == "1" and os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "0"
    console.set_verbose(True)  # e.g. a child process started with -v
    assert "HF_DATASETS_DISABLE_PROGRESS_BARS" not in os.environ
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "0" and console.is_verbose()
