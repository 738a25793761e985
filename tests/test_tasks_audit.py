from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from conftest_tasks import builtin_kg, small_dataset, small_dataset_dir, tiny_kg
from kgreason import cli
from kgreason.io import InputError
from kgreason.records import PathStar, Task
from kgreason.tasks import defaults as config
from kgreason.tasks.audit import (
    DEFAULT_MAX_SHORTCUT,
    EntityIndex,
    audit_tasks,
    format_report,
    load_material,
    oracle_predictions,
    shortcut_predictions,
)
from kgreason.tasks.baselines import BASELINES
from kgreason.tasks.generate import load_tasks, save_tasks


def run_cli(argv: list[str]) -> int:
    """The tasks commands as cli.py wires them (only this section, so other stages cannot break it)."""
    parser = argparse.ArgumentParser(prog="kgreason")
    sub = parser.add_subparsers()
    cli._add_tasks_commands(sub)
    args = parser.parse_args(argv)
    return int(args.handler(args) or 0)


@pytest.fixture(scope="module")
def dataset_dir() -> Path:
    return small_dataset_dir("closed")


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_fresh_dataset_audits_clean(mode: str) -> None:
    kg, data, folder = builtin_kg(), small_dataset(mode), small_dataset_dir(mode)
    index = EntityIndex(kg)
    against = [load_material(folder / f"{n}.jsonl", index) for n in ("train_easy", "train_hard", "facts")]
    report = audit_tasks(kg, data.splits["eval"], against)
    assert report["items"] == 300
    assert report["ill_posed"] == report["invalid_gold_path"] == report["option_named_in_question"] == 0
    assert report["unresolved_options"] == 0 and report["chain_not_stated"] == 0
    assert all(ov["question"] == ov["gold_path"] == ov["start_chain"] == 0 for ov in report["overlap"])
    assert len(report["overlap"]) == 2
    # closed-book items need every path edge taught (open-mode items state theirs in the context)
    assert report["untaught_edges"]["untaught"] == 0
    assert (report["untaught_edges"]["edges"] > 0) == (mode == "closed")
    assert report["oracle_accuracy"] == 1.0
    # every registered baseline applies (open-mode ones only to open items, none of the free-form-only
    # ones to these multiple-choice items) and has a 95% interval
    expected = {n for n, b in BASELINES.items() if (mode == "open" or not b.open_only) and not b.option_free_only}
    assert set(report["shortcuts"]) == set(report["shortcut_accuracy"]) == expected
    for name, acc in report["shortcut_accuracy"].items():
        lo, hi = report["shortcuts"][name]["ci95"]
        assert lo <= acc <= hi and hi - lo < 0.15, (name, lo, acc, hi)
        assert abs(acc - 0.25) <= 0.10, (name, acc)
        assert acc <= DEFAULT_MAX_SHORTCUT, (name, acc)
    assert report["max_shortcut"] == DEFAULT_MAX_SHORTCUT == 0.35
    assert report["problems"] == []


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_oracle_follows_the_chain_on_every_split(mode: str) -> None:
    kg = builtin_kg()
    for split, tasks in small_dataset(mode).splits.items():
        assert oracle_predictions(kg, tasks) == [t.answer_star for t in tasks], split
        preds = shortcut_predictions(kg, tasks)
        # without training files the training-prior baselines do not apply
        assert not {"train_answer_prior", "train_answer_rate", "train_rarest_option"} & set(preds)
        assert all(len(letters) == len(tasks) for letters in preds.values())


def test_held_out_shortcut_rates_are_what_the_generator_expected() -> None:
    """The balancer's expected win rates (manifest) and the audit's realised accuracies differ only
    by pseudo-random tie-breaking: a check that the generator measures what the audit measures."""
    kg, data = builtin_kg(), small_dataset("open")
    train = data.splits["train_easy"] + data.splits["train_hard"]
    preds = shortcut_predictions(kg, data.splits["eval"], train)
    expected = data.manifest["distractors"]["eval"]["expected_shortcut_rates"]
    tasks = data.splits["eval"]
    for name, rate in expected.items():
        acc = sum(p == t.answer_star for p, t in zip(preds[name], tasks, strict=True)) / len(tasks)
        assert abs(acc - rate) <= 0.08, (name, acc, rate)


def _hobby_task(tid: str, options: dict[str, str], answer: str, path: list[str], rels: list[str]) -> Task:
    edges = [(path[i], rels[i], path[i + 1]) for i in range(len(rels))]
    return Task(id=tid, split="eval", hop_len=len(rels), question="What is the root cause of TLSHandshakeError?",
                options=options, answer_star=answer, path_star=PathStar(path, edges), prompt="")


def test_items_without_a_stated_chain_count_any_chain_of_their_length() -> None:
    kg = tiny_kg()
    # every fix is 2 steps from TLSHandshakeError, so four reachable options: ill posed
    bad = _hobby_task("h1", {"A": "SyncNTP", "B": "RotateCertificate", "C": "RestartPod", "D": "DrainNode"}, "A",
                      ["tls", "skew", "ntp"], ["caused_by", "fixed_by"])
    # only SyncNTP is 2 steps away among these options: well posed
    ok = _hobby_task("h2", {"A": "chronyc", "B": "SyncNTP", "C": "certbot", "D": "ClockSkew"}, "B",
                     ["tls", "skew", "ntp"], ["caused_by", "fixed_by"])
    report = audit_tasks(kg, [bad, ok])
    assert report["chain_not_stated"] == 2
    assert report["ill_posed"] == 1
    assert report["ill_posed_examples"][0]["id"] == "h1"
    assert report["ill_posed_examples"][0]["options_reached"] == ["A", "B", "C", "D"]
    assert oracle_predictions(kg, [ok]) == ["B"]


def _bad_files(dataset_dir: Path, tmp: Path) -> tuple[Path, Path]:
    """An eval file with one ill-posed item (a second reachable entity as an option) and one
    mis-keyed item, and a train file that leaks three eval items."""
    kg = builtin_kg()
    eval_tasks = [Task.from_dict(t.to_dict()) for t in small_dataset().splits["eval"][:40]]
    two = next(t for t in eval_tasks if len(kg.follow(t.start, t.relation_chain)) > 1)
    second = sorted(kg.follow(two.start, two.relation_chain) - {two.answer_id})[0]
    wrong = next(lt for lt in two.options if lt != two.answer_star)
    two.option_ids[wrong] = second
    two.options[wrong] = kg.label(second)
    miskeyed = next(t for t in eval_tasks if t is not two)
    miskeyed.answer_star = next(lt for lt in miskeyed.options if lt != miskeyed.answer_star)
    save_tasks(eval_tasks, tmp / "bad_eval.jsonl")
    leaked = [t for t in eval_tasks if t is not two and t is not miskeyed][:3]
    train = [Task.from_dict(t.to_dict()) for t in small_dataset().splits["train_hard"][:50]] + leaked
    save_tasks(train, tmp / "leaky_train.jsonl")
    return tmp / "bad_eval.jsonl", tmp / "leaky_train.jsonl"


def test_audit_detects_ill_posed_and_leaked_items(dataset_dir: Path, tmp_path: Path) -> None:
    kg = builtin_kg()
    bad_eval, leaky = _bad_files(dataset_dir, tmp_path)
    index = EntityIndex(kg)
    report = audit_tasks(kg, load_tasks(bad_eval), [load_material(leaky, index)])
    assert report["ill_posed"] == 1
    assert report["invalid_gold_path"] == 1  # the mis-keyed item: its key is not the gold path's end
    assert report["oracle_accuracy"] < 1.0
    (ov,) = report["overlap"]
    assert ov["question"] == ov["gold_path"] == ov["start_chain"] == 3
    assert report["problems"]


def test_strict_exit_codes(dataset_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kg = str(dataset_dir / "kg.json")
    clean = ["tasks", "audit", str(dataset_dir / "eval.jsonl"), "--kg", kg, "--against",
             str(dataset_dir / "train_easy.jsonl"), str(dataset_dir / "train_hard.jsonl"), str(dataset_dir / "facts.jsonl")]
    assert run_cli([*clean, "--strict"]) == 0
    assert "problems: none" in capsys.readouterr().out
    bad_eval, leaky = _bad_files(dataset_dir, tmp_path)
    assert run_cli(["tasks", "audit", str(bad_eval), "--kg", kg, "--strict"]) == 1
    assert run_cli(["tasks", "audit", str(dataset_dir / "eval.jsonl"), "--kg", kg, "--against", str(leaky), "--strict"]) == 1
    # without --strict the audit reports but succeeds
    capsys.readouterr()
    assert run_cli(["tasks", "audit", str(bad_eval), "--kg", kg, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ill_posed"] == 1
    # a shortcut limit below what fresh data reaches fails the clean file, naming the baselines
    assert run_cli([*clean, "--strict", "--max-shortcut", "0.2"]) == 1
    out = capsys.readouterr().out
    assert "shortcut baselines above 20%: " in out and "OVER" in out and "limit 20.0%" in out


def test_strict_fails_on_an_empty_file(dataset_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty.jsonl").write_text("")
    argv = ["tasks", "audit", str(tmp_path / "empty.jsonl"), "--kg", str(dataset_dir / "kg.json")]
    assert run_cli(argv) == 0
    assert "problems: the file holds no items" in capsys.readouterr().out
    assert run_cli([*argv, "--strict"]) == 1


@pytest.mark.parametrize("value", ["-0.1", "1.5", "much", "nan"])
def test_max_shortcut_must_be_a_share(dataset_dir: Path, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        run_cli(["tasks", "audit", str(dataset_dir / "eval.jsonl"), "--kg", str(dataset_dir / "kg.json"),
                 "--max-shortcut", value])
    assert exc.value.code == 2
    assert "--max-shortcut" in capsys.readouterr().err


def test_max_shortcut_default_matches_the_audit() -> None:
    """--max-shortcut's default is the task family's limit, declared once on the family
    (kgreason/families) and resolved by the audit from the items it reads."""
    args = cli.build_parser().parse_args(["tasks", "audit", "eval.jsonl", "--kg", "kg.json"])
    assert args.max_shortcut is None
    report = audit_tasks(builtin_kg(), small_dataset().splits["eval"][:20], max_shortcut=args.max_shortcut)
    assert report["max_shortcut"] == DEFAULT_MAX_SHORTCUT == config.DEFAULT_MAX_SHORTCUT == 0.35


def test_report_lists_each_baseline_with_its_interval() -> None:
    kg, tasks = builtin_kg(), small_dataset().splits["eval"][:60]
    report = audit_tasks(kg, tasks, max_shortcut=0.3)
    text = format_report("eval.jsonl", report)
    assert "limit 30.0%" in text
    for name, row in report["shortcuts"].items():
        lo, hi = row["ci95"]
        line = next(line for line in text.splitlines() if line.strip().startswith(name + " "))
        assert f"{100 * row['accuracy']:.1f}% [{100 * lo:.1f}%, {100 * hi:.1f}%]" in line
        assert line.endswith("OVER") == (row["accuracy"] > 0.3)
        assert row["description"] == BASELINES[name].description


def test_json_report_and_untaught_edges(dataset_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kg = str(dataset_dir / "kg.json")
    # only the hard pool as training material: long eval chains use edges it never asks about
    assert run_cli(["tasks", "audit", str(dataset_dir / "eval.jsonl"), "--kg", kg, "--json",
                    "--against", str(dataset_dir / "train_hard.jsonl")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["untaught_edges"]["untaught"] > 0
    assert any("never taught" in p for p in report["problems"])
    assert report["letters"] == {"A": 75, "B": 75, "C": 75, "D": 75}


def test_against_file_that_is_neither_tasks_nor_facts(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"foo": 1}\n')
    with pytest.raises(InputError, match=r"x.jsonl:1"):
        load_material(path, EntityIndex(tiny_kg()))


def test_generate_command_writes_every_file(dataset_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "small"
    rc = run_cli(["tasks", "generate", "--kg", str(dataset_dir / "kg.json"), "--out", str(out), "--seed", "1",
                  "--eval-size", "40", "--easy-size", "60", "--hard-size", "20", "--easy-hops", "1-2"])
    assert rc == 0
    for name in ("eval", "train_easy", "train_hard", "facts"):
        assert (out / f"{name}.jsonl").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["eval"] == 40 and manifest["seed"] == 1
    assert manifest["config"]["strict_distractors"] == "held_out"
    assert {t["hop_len"] for t in map(json.loads, (out / "train_easy.jsonl").read_text().splitlines())} == {1, 2}
    assert "rejected:" in capsys.readouterr().out


def test_generate_command_strict_distractors(dataset_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "strict"
    rc = run_cli(["tasks", "generate", "--kg", str(dataset_dir / "kg.json"), "--out", str(out), "--seed", "2",
                  "--eval-size", "12", "--easy-size", "12", "--hard-size", "8", "--strict-distractors", "all"])
    assert rc == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["strict_distractors"] == "all"
    for name in ("eval", "train_easy", "train_hard"):
        assert manifest["distractors"][name]["strict"] is True
        assert set(manifest["distractors"][name]["distractor_kinds"]) <= {"structure"}
    with pytest.raises(SystemExit):
        run_cli(["tasks", "generate", "--kg", str(dataset_dir / "kg.json"), "--out", str(out),
                 "--strict-distractors", "some"])
