"""Help text a new user reads (issue 13): every page rendered, no stray '%%', no Python tuples as
defaults, "the hobby project" explained wherever it is named, closed choices shown as choices,
-v on every command; and `make clean` never deletes results without asking."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kgreason.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
HOBBY_REPO = "softwarewrighter/multi-hop-reasoning"


def help_pages() -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """(command, parser) for the top level, every group and every command."""

    def walk(parser: argparse.ArgumentParser, path: str) -> Iterator[tuple[str, argparse.ArgumentParser]]:
        yield path, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from walk(sub, f"{path} {name}")

    yield from walk(build_parser(), "kgreason")


PAGES = {path: parser.format_help() for path, parser in help_pages()}


def test_every_command_has_a_help_page() -> None:
    assert {"kgreason", "kgreason runs list", "kgreason eval", "kgreason score", "kgreason train sft"} <= set(PAGES)
    assert len(PAGES) > 25


@pytest.mark.parametrize("path", sorted(PAGES))
def test_help_page_reads_cleanly(path: str) -> None:
    text = PAGES[path]
    assert "%%" not in text, "a percent sign printed doubled"
    # A default shown as a Python tuple or list, e.g. "(default: (4, 5))" where the flag takes 4-5.
    assert not re.search(r"\(default: [(\[]", text), text
    if re.search(r"hobby (project|format)", text):
        # Wrapped help may break the name at a hyphen or a space; compare without any whitespace.
        assert HOBBY_REPO in re.sub(r"\s+", "", text), f"{path}: 'the hobby project' is not explained"


def test_ranges_print_as_the_flag_takes_them() -> None:
    text = re.sub(r"\s+", " ", PAGES["kgreason tasks generate"])
    assert "--eval-hops MIN-MAX" in text and "(default: 4-5)" in text


def test_eval_backend_and_dtype_are_choices(capsys: pytest.CaptureFixture) -> None:
    """Closed sets, shown as such and checked at parse time (not free text that fails later)."""
    text = PAGES["kgreason eval"]
    assert "--backend {auto,hf,vllm,openvino}" in text and "--dtype {auto,bf16,fp16,fp32}" in text
    for flag, bad in (("--backend", "tensorrt"), ("--dtype", "int4")):
        with pytest.raises(SystemExit) as exc:
            build_parser().parse_args(["eval", flag, bad])
        assert exc.value.code == 2
        assert f"argument {flag}:" in capsys.readouterr().err


def test_verbose_is_accepted_before_and_after_the_command() -> None:
    parser = build_parser()
    assert parser.parse_args(["-v", "runs", "list"]).verbose is True
    assert parser.parse_args(["runs", "list", "--verbose"]).verbose is True
    assert parser.parse_args(["runs", "list"]).verbose is False
    assert all("--verbose" in PAGES[p] for p in ("kgreason", "kgreason train sft", "kgreason sample", "kgreason eval"))


# --- make clean ------------------------------------------------------------------------------------
@pytest.fixture()
def project(tmp_path: Path) -> Path:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    for folder in ("runs/quick/eval", "experiments/distribution-quick-open", ".venv/bin", ".pytest_cache",
                   "src/pkg/__pycache__"):
        (tmp_path / folder).mkdir(parents=True)
    return tmp_path


def _make(project: Path, target: str, answer: str = "", *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-s", target, *args], cwd=project, input=answer, capture_output=True, text=True,
                          timeout=60)


def test_make_clean_keeps_runs_and_experiments(project: Path) -> None:
    proc = _make(project, "clean")
    assert proc.returncode == 0, proc.stderr
    assert not (project / ".venv").exists() and not (project / ".pytest_cache").exists()
    assert not (project / "src/pkg/__pycache__").exists()
    assert (project / "runs/quick/eval").is_dir() and (project / "experiments").is_dir()
    assert "make clean-runs" in proc.stdout


def test_make_clean_runs_asks_first(project: Path) -> None:
    for answer in ("", "no\n", "y\n"):  # no terminal, a refusal, anything but "yes": nothing is deleted
        proc = _make(project, "clean-runs", answer)
        assert proc.returncode == 0, proc.stderr
        assert "This deletes runs experiments" in proc.stdout and "kept" in proc.stdout
        assert (project / "runs/quick/eval").is_dir() and (project / "experiments").is_dir()
    proc = _make(project, "clean-runs", "yes\n")
    assert not (project / "runs").exists() and not (project / "experiments").exists()
    assert "deleted runs experiments" in proc.stdout
    (project / "runs").mkdir()
    _make(project, "clean-runs", "", "CONFIRM=yes")  # for scripts
    assert not (project / "runs").exists()
