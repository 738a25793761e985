from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from conftest_tasks import builtin_kg, default_dataset, tiny_kg
from kgreason import cli
from kgreason.io import InputError
from kgreason.kg.io import save_kg
from kgreason.records import PathStar, Task
from kgreason.tasks.audit import (
    SHORTCUTS,
    EntityIndex,
    audit_tasks,
    load_material,
    oracle_predictions,
    shortcut_predictions,
)
from kgreason.tasks.generate import save_tasks, write_dataset


def run_cli(argv: list[str]) -> int:
    """The tasks commands as cli.py wires them (only this section, so other stages cannot break it)."""
    parser = argparse.ArgumentParser(prog="kgreason")
    sub = parser.add_subparsers()
    cli._add_tasks_commands(sub)
    args = parser.parse_args(argv)
    return int(args.handler(args) or 0)


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ds")
    save_kg(builtin_kg(), out / "kg.json")
    write_dataset(default_dataset(), out)
    return out


def test_fresh_default_dataset_audits_clean(dataset_dir: Path) -> None:
    kg = builtin_kg()
    index = EntityIndex(kg)
    against = [load_material(dataset_dir / f"{n}.jsonl", index) for n in ("train_easy", "train_hard", "facts")]
    report = audit_tasks(kg, default_dataset().splits["eval"], against)
    assert report["items"] == 300
    assert report["ill_posed"] == report["invalid_gold_path"] == report["option_named_in_question"] == 0
    assert report["unresolved_options"] == 0 and report["chain_not_stated"] == 0
    assert all(ov["question"] == ov["gold_path"] == ov["start_chain"] == 0 for ov in report["overlap"])
    assert len(report["overlap"]) == 2
    assert report["untaught_edges"]["untaught"] == 0 and report["untaught_edges"]["edges"] > 0
    assert report["oracle_accuracy"] == 1.0
    for name, acc in report["shortcut_accuracy"].items():
        assert abs(acc - 0.25) <= 0.12, (name, acc)
    assert report["problems"] == []


def test_shortcuts_near_chance_on_every_split() -> None:
    kg = builtin_kg()
    for split, tasks in default_dataset().splits.items():
        preds = shortcut_predictions(kg, tasks)
        assert set(preds) == set(SHORTCUTS)
        for name, letters in preds.items():
            assert len(letters) == len(tasks)
            acc = sum(p == t.answer_star for p, t in zip(letters, tasks, strict=True)) / len(tasks)
            assert abs(acc - 0.25) <= 0.12, (split, name, acc)
        assert oracle_predictions(kg, tasks) == [t.answer_star for t in tasks]


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
    eval_tasks = [Task.from_dict(t.to_dict()) for t in default_dataset().splits["eval"][:40]]
    two = next(t for t in eval_tasks if len(kg.follow(t.start, t.relation_chain)) > 1)
    second = sorted(kg.follow(two.start, two.relation_chain) - {two.answer_id})[0]
    wrong = next(lt for lt in two.options if lt != two.answer_star)
    two.option_ids[wrong] = second
    two.options[wrong] = kg.label(second)
    miskeyed = next(t for t in eval_tasks if t is not two)
    miskeyed.answer_star = next(lt for lt in miskeyed.options if lt != miskeyed.answer_star)
    save_tasks(eval_tasks, tmp / "bad_eval.jsonl")
    leaked = [t for t in eval_tasks if t is not two and t is not miskeyed][:3]
    train = [Task.from_dict(t.to_dict()) for t in default_dataset().splits["train_hard"][:50]] + leaked
    save_tasks(train, tmp / "leaky_train.jsonl")
    return tmp / "bad_eval.jsonl", tmp / "leaky_train.jsonl"


def test_audit_detects_ill_posed_and_leaked_items(dataset_dir: Path, tmp_path: Path) -> None:
    kg = builtin_kg()
    bad_eval, leaky = _bad_files(dataset_dir, tmp_path)
    index = EntityIndex(kg)
    from kgreason.tasks.generate import load_tasks

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
    assert {t["hop_len"] for t in map(json.loads, (out / "train_easy.jsonl").read_text().splitlines())} == {1, 2}
    assert "rejected:" in capsys.readouterr().out
