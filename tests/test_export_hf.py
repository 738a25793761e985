"""`kgreason export hf`: a data folder as a Hugging Face datasets folder, read back by `datasets`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from conftest_export import data_folder
from kgreason.cli import main
from kgreason.export.hf import export_hf
from kgreason.export.rows import read_data_folder, split_rows
from kgreason.io import InputError, iter_jsonl
from kgreason.kg.kgjson import load_kg
from kgreason.reward import Scorer
from kgreason.reward.adapters import compute_score, score_ground_truth
from kgreason.tasks.format import format_completion
from kgreason.tasks.generate import load_tasks


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("hf") / "kgreason-devops"
    assert main(["export", "hf", "--tasks", str(data_folder("open")), "--out", str(out)]) == 0
    return out


def test_load_dataset_reads_every_split_with_equal_rows(exported: Path) -> None:
    from datasets import load_dataset

    ds = load_dataset(str(exported))
    data = read_data_folder(data_folder("open"))
    assert list(ds) == ["eval", "train_easy", "train_hard"]
    for name in data.splits:
        assert ds[name].num_rows == len(data.splits[name])
        assert ds[name].to_list() == split_rows(data, name)


def test_rows_carry_what_the_reward_needs(exported: Path) -> None:
    from datasets import load_dataset

    tasks = {t.id: t for t in load_tasks(data_folder("open") / "eval.jsonl")}
    for row in load_dataset(str(exported), split="eval"):
        task = tasks[row["id"]]
        assert row["start"] == task.start and row["relation_chain"] == task.relation_chain
        assert row["answer"] == task.answer_star and row["answer_entity"] == task.answer_id
        assert row["hop_len"] == task.hop_len == len(row["path"]["edges"])
        assert row["options"] == task.options and row["option_ids"] == task.option_ids
        assert row["reference_trace"] == task.reference_trace
        assert row["messages"][1] == {"role": "user", "content": task.prompt}
        assert row["reward_model"] == {"style": "rule", "ground_truth": row["ground_truth"]}
        assert compute_score(row["data_source"], row["reference_completion"], row["ground_truth"]) == pytest.approx(1.8)


def test_facts_config(exported: Path) -> None:
    from datasets import load_dataset

    facts = load_dataset(str(exported), "facts", split="train")
    expected = [rec for _, rec in iter_jsonl(data_folder("open") / "facts.jsonl")]
    assert facts.num_rows == len(expected)
    assert facts[0] == {k: str(v) for k, v in expected[0].items()}


def test_dataset_card(exported: Path) -> None:
    text = (exported / "README.md").read_text(encoding="utf-8")
    _, header, body = text.split("---\n", 2)
    meta = yaml.safe_load(header)
    assert meta["license"] == "apache-2.0"
    default = next(c for c in meta["configs"] if c["config_name"] == "default")
    assert [f["split"] for f in default["data_files"]] == ["eval", "train_easy", "train_hard"]
    assert all((exported / f["path"]).is_file() for f in default["data_files"])
    manifest = json.loads((data_folder("open") / "manifest.json").read_text())
    assert f"seed: **{manifest['seed']}**" in body
    for name, n in manifest["counts"].items():
        if name != "facts":
            assert f"| `{name}` | {n} |" in body
    # every registered shortcut baseline's accuracy, from kgreason's own audit
    data = read_data_folder(data_folder("open"))
    from kgreason.export.hf import audit_splits

    audit = audit_splits(data)["eval"]
    for baseline, row in audit["shortcuts"].items():
        line = next(ln for ln in body.splitlines() if ln.startswith(f"| `{baseline}` |"))
        assert f"{100 * row['accuracy']:.1f}%" in line.split("|")[2]
    assert "KG-oracle accuracy | 100.0%" in body
    assert "## License" in body and "Apache-2.0" in body
    assert (exported / "kg.json").is_file() and (exported / "manifest.json").is_file()


def test_label_scores_equal_the_whole_graph(exported: Path) -> None:
    """The self-contained label scores every completion naming the prompt's or the chain's entities
    exactly as the whole graph does: gold, short and decoy-path traces, letters, dumps, context copies."""
    from datasets import load_dataset

    folder = data_folder("open")
    kg = load_kg(folder / "kg.json")
    scorer = Scorer(kg)
    tasks = {t.id: t for name in ("eval", "train_easy") for t in load_tasks(folder / f"{name}.jsonl")}
    checked = 0
    for name in ("eval", "train_easy"):
        for row in load_dataset(str(exported), split=name):
            task = tasks[row["id"]]
            texts = [row["reference_completion"], format_completion(task.short_trace, task.answer_star),
                     "TRACE: " + " ".join(task.context_facts) + "\nANSWER: " + task.answer_star,
                     "TRACE: " + " ".join(task.options.values()) + "\nANSWER: A"]
            texts += [format_completion(task.reference_trace, letter) for letter in task.options]
            for text in texts:
                assert score_ground_truth(row["ground_truth"], text) == scorer.score(task, text), (row["id"], text)
                checked += 1
    assert checked > 100


def test_closed_mode_exports_too(tmp_path: Path) -> None:
    from datasets import load_dataset

    export_hf(read_data_folder(data_folder("closed")), tmp_path / "closed")
    ds = load_dataset(str(tmp_path / "closed"))
    assert ds["eval"][0]["mode"] == "closed" and ds["eval"][0]["context_facts"] == []


def test_kg_option_and_missing_graph(tmp_path: Path) -> None:
    copy = tmp_path / "data"
    shutil.copytree(data_folder("open"), copy)
    kg = tmp_path / "graph.json"
    (copy / "kg.json").rename(kg)
    with pytest.raises(InputError, match="--kg"):
        read_data_folder(copy)
    assert read_data_folder(copy, kg).kg_path == kg


def test_out_must_be_a_new_or_existing_folder_other_than_the_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy = tmp_path / "data"
    shutil.copytree(data_folder("open"), copy)
    (tmp_path / "file").write_text("x")
    for command in ("hf", "lm-eval"):
        assert main(["export", command, "--tasks", str(copy), "--out", str(tmp_path / "file")]) == 2
        assert main(["export", command, "--tasks", str(copy), "--out", str(copy)]) == 2
    err = capsys.readouterr().err
    assert err.count("kgreason: error: --out") == 4 and "Traceback" not in err
    assert sorted(p.name for p in copy.iterdir()) == sorted(p.name for p in data_folder("open").iterdir())


@pytest.mark.parametrize("case", ["missing", "file", "no_manifest", "missing_split"])
def test_bad_input_is_one_line_exit_2(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "data"
    if case == "file":
        target.write_text("x")
    elif case == "no_manifest":
        target.mkdir()
        (target / "eval.jsonl").write_text("")
    elif case == "missing_split":
        shutil.copytree(data_folder("open"), target)
        (target / "train_hard.jsonl").unlink()
    assert main(["export", "hf", "--tasks", str(target), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kgreason: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_export_and_adapters_never_import_torch(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from kgreason.cli import main\n"
        f"assert main(['export', 'hf', '--tasks', {str(data_folder('open'))!r}, '--out', {str(tmp_path / 'hf')!r}]) == 0\n"
        f"assert main(['export', 'lm-eval', '--tasks', {str(data_folder('open'))!r}, '--out', {str(tmp_path / 'lm')!r}]) == 0\n"
        "from datasets import load_dataset\n"
        "from kgreason.reward.adapters import compute_score\n"
        f"row = load_dataset({str(tmp_path / 'hf')!r}, split='eval')[0]\n"
        "assert compute_score('kgreason', row['reference_completion'], row['ground_truth']) > 1\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
