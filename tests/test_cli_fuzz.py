"""Malformed input through the whole command line: each case must exit 2 with one line that names
the offending flag or file, print no traceback, and fail before any model loads or run folder,
dataset or experiment folder appears.

Cases run in-process through `kgreason.cli.main` (fast); two go through a real subprocess to see
what a user sees end to end. A guard makes loading a model or importing torch during a case an
error, so "fails fast" is checked, not hoped for.
"""

from __future__ import annotations

import importlib.abc
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kgreason.cli import main


@dataclass(frozen=True)
class Workspace:
    root: Path
    kg: Path  # a good kg.json
    data: Path  # a good `tasks generate` folder (kg.json copied in)
    binary: Path  # bytes that are not UTF-8
    tsv: Path  # triples: must go through `kg import` first
    csv: Path
    folder: Path  # an empty folder where a file is expected
    empty: Path  # an empty task file
    chain: Path  # a 3-edge chain graph: no 4-5 hop eval item exists

    def fmt(self, argv: list[str]) -> list[str]:
        return [a.format(**{k: str(v) for k, v in vars(self).items()}) for a in argv]


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    root = tmp_path_factory.mktemp("fuzz")
    kg, data = root / "kg.json", root / "data"
    assert main(["kg", "build", "--out", str(kg)]) == 0
    assert main(["tasks", "generate", "--kg", str(kg), "--out", str(data), "--eval-size", "4", "--easy-size", "4",
                 "--hard-size", "4", "--attempts-per-item", "5"]) == 0
    (data / "kg.json").write_bytes(kg.read_bytes())
    binary = root / "blob.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    tsv = root / "triples.tsv"
    tsv.write_text("a\tcauses\tb\nb\tcauses\tc\n", encoding="utf-8")
    csv = root / "triples.csv"
    csv.write_text("a,causes,b\n", encoding="utf-8")
    (root / "folder").mkdir()
    empty = root / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    chain_tsv = root / "chain.tsv"
    chain_tsv.write_text("a\tleads_to\tb\nb\tleads_to\tc\nc\tleads_to\td\n", encoding="utf-8")
    assert main(["kg", "import", str(chain_tsv), "--out", str(root / "chain.json")]) == 0
    for name, text in {
        "rtl.tsv": "a\tcauses\tb\nb\tcauses\tevil\u202etxt.exe\n",
        "isolate.tsv": "a\tcau\u2067ses\tb\n",
        "nul.tsv": "a\tcauses\tb\x00c\n",
        "rtl.json": '{"entities": [{"id": "a", "label": "A\\u202eB"}, {"id": "b"}], '
                    '"edges": [{"src": "a", "rel": "r", "dst": "b"}]}',
        "nul.json": '{"entities": [{"id": "a", "label": "A\\u0000B"}, {"id": "b"}], '
                    '"edges": [{"src": "a", "rel": "r", "dst": "b"}]}',
        "bad-key.yaml": "sft:\n  train: {max_step: 5}\n",
        "bad-type.yaml": "rsft: {k: many}\n",
    }.items():
        (root / name).write_text(text, encoding="utf-8")
    return Workspace(root, kg, data, binary, tsv, csv, root / "folder", empty, root / "chain.json")


class _HeavyImportBlocker(importlib.abc.MetaPathFinder):
    """Refuses the heavy libraries: a bad argument must be caught before they are needed."""

    HEAVY = ("torch", "transformers", "trl", "peft", "vllm", "uvicorn", "datasets")

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name.split(".")[0] in self.HEAVY:
            raise ImportError(f"{name} imported while validating arguments")
        return None


@pytest.fixture
def no_heavy_work(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    import kgreason.models

    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("a model was loaded for an input that should have been refused first")

    monkeypatch.setattr(kgreason.models, "load_model", refuse)
    blocker = _HeavyImportBlocker()
    # Only effective for libraries not yet imported by another test of the session; the
    # load_model patch above holds either way.
    sys.meta_path.insert(0, blocker)
    try:
        yield
    finally:
        sys.meta_path.remove(blocker)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        rc = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


T, S, R, G, SA, EV = (
    ["tasks", "generate", "--out", "{root}/gen"],
    ["score", "--tasks", "{data}/eval.jsonl", "--completions", "{data}/eval.jsonl"],
    ["run", "--run-dir", "{root}/run"],
    ["train", "grpo", "--run-dir", "{root}/run", "--data", "{data}"],
    ["sample", "--model", "tiny:random", "--tasks", "{data}/eval.jsonl", "--out", "{root}/c.jsonl"],
    ["eval", "--model", "tiny:random", "--tasks", "{data}/eval.jsonl", "--out", "{root}/ev"],
)
SFT = ["train", "sft", "--run-dir", "{root}/run", "--data", "{data}", "--model", "tiny:random"]

# (argv, what the one error line must name)
CASES: list[tuple[list[str], str]] = [
    # graphs that are not kg.json
    ([*T, "--kg", "{binary}"], "blob.bin: not UTF-8"),
    ([*T, "--kg", "{tsv}"], "kgreason kg import"),
    ([*T, "--kg", "{folder}"], "folder: is a folder"),
    ([*T, "--kg", "{root}/missing.json"], "missing.json: file not found"),
    (["tasks", "audit", "{data}/eval.jsonl", "--kg", "{binary}"], "blob.bin"),
    (["tasks", "audit", "{data}/eval.jsonl", "--kg", "{csv}"], "kgreason kg import"),
    (["tasks", "audit", "{binary}", "--kg", "{kg}"], "blob.bin: not UTF-8"),
    ([*S, "--kg", "{tsv}"], "kgreason kg import"),
    ([*S, "--kg", "{binary}"], "blob.bin"),
    (["kg", "stats", "{binary}", "--format", "json"], "blob.bin"),
    # outputs that cannot be written
    (["kg", "build", "--out", "/proc/nope"], "--out"),
    (["kg", "build", "--out", "/proc/nope/kg.json"], "--out"),
    (["kg", "build", "--out", "{folder}"], "--out"),
    (["tasks", "generate", "--kg", "{kg}", "--out", "/proc/nope"], "--out"),
    (["tasks", "generate", "--kg", "{kg}", "--out", "{binary}"], "--out"),
    ([*SA[:-1], "/proc/nope"], "--out"),
    ([*EV[:-1], "/proc/nope"], "--out"),
    (["run", "--run-dir", "/proc/nope"], "--run-dir"),
    # names with control or bidi-override characters
    (["kg", "import", "{root}/rtl.tsv", "--out", "{root}/x.json"], "rtl.tsv:2"),
    (["kg", "import", "{root}/isolate.tsv", "--out", "{root}/x.json"], "isolate.tsv:1"),
    (["kg", "import", "{root}/nul.tsv", "--out", "{root}/x.json"], "nul.tsv:1"),
    (["kg", "import", "{root}/rtl.json", "--out", "{root}/x.json"], "entities[0]"),
    (["kg", "import", "{root}/nul.json", "--out", "{root}/x.json"], "entities[0]"),
    # task generation
    ([*T, "--kg", "{kg}", "--cover-eval-edges", "3"], "--cover-eval-edges"),
    ([*T, "--kg", "{kg}", "--cover-eval-edges", "nan"], "--cover-eval-edges"),
    ([*T, "--kg", "{kg}", "--attempts-per-item", "0"], "--attempts-per-item"),
    ([*T, "--kg", "{kg}", "--eval-size", "0"], "--eval-size"),
    ([*T, "--kg", "{kg}", "--easy-size", "-1"], "--easy-size"),
    ([*T, "--kg", "{kg}", "--eval-hops", "5-4"], "--eval-hops"),
    ([*T, "--kg", "{kg}", "--max-context-facts", "3"], "--max-context-facts"),
    ([*T, "--kg", "{chain}"], "held-out split 'eval'"),
    # training and the main job
    ([*SFT, "--batch-size", "0"], "--batch-size"),
    ([*SFT, "--learning-rate", "-1"], "--learning-rate"),
    ([*SFT, "--learning-rate", "inf"], "--learning-rate"),
    ([*SFT, "--grad-accum", "0"], "--grad-accum"),
    ([*SFT, "--short-share", "2"], "--short-share"),
    (["train", "sft", "--run-dir", "{root}/run", "--data", "{root}/no-data"], "--data"),
    (["train", "sft", "--run-dir", "{root}/run", "--data", "{folder}"], "--data"),
    ([*G, "--beta", "-1"], "--beta"),
    ([*G, "--num-generations", "1"], "--num-generations"),
    ([*G, "--init-adapter", "{folder}"], "--init-adapter"),
    (["train", "rsft", "--run-dir", "{root}/run", "--data", "{data}", "--rounds", "0"], "--rounds"),
    (["train", "rsft", "--run-dir", "{root}/run", "--data", "{data}", "--kg", "{tsv}"], "kgreason kg import"),
    ([*R, "--eval-max-items", "-5"], "--eval-max-items"),
    ([*R, "--rsft-rounds", "0"], "--rsft-rounds"),
    ([*R, "--rsft-questions", "-1"], "--rsft-questions"),
    ([*R, "-k", "0"], "-k"),
    ([*R, "--sft-max-steps", "many"], "--sft-max-steps"),
    ([*R, "--rsft-distribution", "hardest"], "--rsft-distribution"),
    ([*R, "--reward-preset", "fancy"], "--reward-preset"),
    ([*R, "--kg", "nosuchscheme:x"], "unknown KG source"),
    ([*R, "--config", "{root}/bad-key.yaml"], "bad-key.yaml:2: unknown option 'sft.train.max_step'"),
    ([*R, "--config", "{root}/bad-type.yaml"], "bad-type.yaml:1: rsft.k"),
    ([*R, "--config", "{root}/missing.yaml"], "missing.yaml: file not found"),
    # sampling
    ([*SA, "-k", "0"], "-k"),
    ([*SA, "-k", "-3"], "-k"),
    ([*SA, "--temperature", "-1"], "--temperature"),
    ([*SA, "--top-p", "5"], "--top-p"),
    ([*SA, "--top-p", "0"], "--top-p"),
    ([*SA, "--max-new-tokens", "0"], "--max-new-tokens"),
    ([*SA, "--batch-size", "0"], "--batch-size"),
    ([*SA, "--limit", "-1"], "--limit"),
    ([*SA[:4], "{binary}", *SA[5:]], "blob.bin"),
    # evaluation, experiments, serving
    ([*EV, "--backend", "tpu"], "--backend"),
    ([*EV, "--dtype", "fp8"], "--dtype"),
    ([*EV, "--max-items", "-1"], "--max-items"),
    ([*EV, "--tasks", "{empty}"], "empty.jsonl"),
    (["experiment", "distribution", "--seeds", "0", "--out", "{root}/exp"], "--seeds"),
    (["experiment", "distribution", "--scale", "huge", "--out", "{root}/exp"], "--scale"),
    (["experiment", "distribution", "--arms", "bogus", "--out", "{root}/exp"], "--arms"),
    (["experiment", "distribution", "--kg", "{root}/missing.json", "--out", "{root}/exp"], "--kg"),
    (["serve", "--port", "99999"], "--port"),
    (["serve", "--port", "http"], "--port"),
    ([*SA, "--no-such-flag"], "--no-such-flag"),
]


@pytest.mark.parametrize(("argv", "names"), CASES, ids=[f"{i}-{'-'.join(c[0][:2])}" for i, c in enumerate(CASES)])
def test_malformed_input_is_one_line_exit_2(argv: list[str], names: str, ws: Workspace, no_heavy_work: None,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _run(ws.fmt(argv), capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in out + err
    assert rc == 2, (rc, err)
    assert len(lines) == 1, err
    assert "error" in lines[0] and names in lines[0], lines[0]
    # nothing half-made: no run folder, dataset, experiment or eval folder appeared
    for made in ("run", "gen", "exp", "ev", "x.json", "c.jsonl"):
        assert not (ws.root / made).exists(), made


def test_enough_cases() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("argv", [["tasks", "generate", "--kg", "{binary}", "--out", "{root}/gen"],
                                  ["serve", "--port", "99999"]])
def test_subprocess_shows_one_line(argv: list[str], ws: Workspace) -> None:
    proc = subprocess.run([sys.executable, "-m", "kgreason.cli", *ws.fmt(argv)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stdout + proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_train_sft_missing_data_leaves_no_run_folder(tmp_path: Path, no_heavy_work: None,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "runs" / "r"
    rc, _, err = _run(["train", "sft", "--run-dir", str(run), "--data", str(tmp_path / "nope"),
                       "--model", "tiny:random"], capsys)
    assert rc == 2 and "--data" in err
    assert not run.exists() and not (tmp_path / "runs").exists()


def test_empty_eval_leaves_no_files(ws: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "data"
    rc, stdout, err = _run(["tasks", "generate", "--kg", str(ws.chain), "--out", str(out)], capsys)
    assert rc == 2 and "nothing written" in err and not stdout
    assert not out.exists()


def test_audit_strict_fails_on_an_empty_file(ws: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = _run(["tasks", "audit", str(ws.empty), "--kg", str(ws.kg), "--strict"], capsys)
    assert rc == 1  # --strict's documented failure code
    assert "problems: none" not in out and "holds no items" in out


def test_help_text(capsys: pytest.CaptureFixture[str]) -> None:
    def help_of(*argv: str) -> str:
        with pytest.raises(SystemExit):
            main([*argv, "--help"])
        return capsys.readouterr().out

    text = help_of("eval")
    assert "95%" in text and "%%" not in text
    assert "{auto,hf,vllm,openvino}" in text and "{auto,bf16,fp16,fp32}" in text
    text = " ".join(help_of("tasks", "generate").split())
    assert "(default: 4-5)" in text and "(default: 1-3)" in text and "(4, 5)" not in text
    assert "(default: [])" not in help_of("tasks", "audit")
    assert "%%" not in help_of("run") and "%%" not in help_of()


def test_valid_values_still_parse() -> None:
    from kgreason.cli import build_parser

    args = build_parser().parse_args(["sample", "--model", "m", "--tasks", "t", "--out", "o.jsonl", "-k", "1",
                                      "--top-p", "1", "--temperature", "0", "--limit", "3"])
    assert (args.k, args.top_p, args.temperature, args.limit) == (1, 1.0, 0.0, 3)
    args = build_parser().parse_args(["tasks", "generate", "--kg", "k", "--out", "o", "--cover-eval-edges", "0"])
    assert args.eval_hops == (4, 5) and args.cover_eval_edges == 0.0
