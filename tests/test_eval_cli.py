"""`kgreason eval` end to end on tiny:random: files, plots, resume, drift with an adapter, --compare."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kgreason.cli import main
from kgreason.records import Episode

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EVAL_ARGS = ["--max-items", "6", "--max-new-tokens", "12", "--batch-size", "6", "--resamples", "300", "--dtype", "fp32"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    from conftest_train import make_data

    return make_data(tmp_path_factory.mktemp("eval_data"))


@pytest.fixture(scope="module")
def base_eval(data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("eval_base")
    rc = main(["eval", "--model", "tiny:random", "--tasks", str(data / "eval.jsonl"), "--out", str(out), *EVAL_ARGS])
    assert rc == 0
    return out


@pytest.fixture(scope="module")
def adapter_eval(data, tmp_path_factory) -> Path:
    import torch

    from kgreason.models import load_model
    from kgreason.models.lora import attach_lora, save_adapter

    root = tmp_path_factory.mktemp("eval_adapter")
    model, _ = load_model("tiny:random", dtype="fp32")
    peft_model = attach_lora(model, r=4, alpha=8)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.add_(0.5 * torch.randn_like(p, generator=torch.Generator().manual_seed(1)))
    save_adapter(peft_model, root / "adapter", base_ref="tiny:random")
    out = root / "eval"
    rc = main(["eval", "--adapter", str(root / "adapter"), "--tasks", str(data / "eval.jsonl"), "--out", str(out),
               *EVAL_ARGS])
    assert rc == 0
    return out


def test_eval_writes_metrics_predictions_report_and_pngs(base_eval):
    m = json.loads((base_eval / "metrics.json").read_text())
    assert m["n_items"] == 6 and m["model"] == "tiny:random"
    assert set(m["by_hop"]) <= {"4", "5"} and sum(iv["n"] for iv in m["by_hop"].values()) == 6
    for key in ("accuracy", "format_failure_rate", "trace", "confusion", "shuffle", "references"):
        assert key in m
    assert sum(m["confusion"].values()) == 6
    assert m["references"]["KG oracle"]["accuracy"]["mean"] == 1.0  # well-posed items: the KG answers all
    assert m["shuffle"]["correct_letter_moved_share"] == 1.0
    assert m["drift"] is None and "base model" in m["drift_note"]
    lines = (base_eval / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 6
    eps = [Episode.from_dict(json.loads(x)) for x in lines]
    assert {e.phase for e in eps} == {"eval"} and len({e.task_id for e in eps}) == 6
    assert len((base_eval / "predictions_shuffled.jsonl").read_text().splitlines()) == 6
    report = (base_eval / "report.md").read_text()
    assert "Accuracy (95% Wilson score intervals)" in report and "KG oracle" in report
    for png in ("accuracy_by_hop.png", "confusion_2x2.png"):
        assert f"]({png})" in report
        assert (base_eval / png).read_bytes()[:8] == PNG_MAGIC


def test_eval_resumes_without_duplicating_answers(base_eval, data):
    pred = base_eval / "predictions.jsonl"
    kept = pred.read_text().splitlines()[:4]
    pred.write_text("\n".join(kept) + "\n" + '{"run": "eval", "torn')  # an interruption mid-write
    rc = main(["eval", "--model", "tiny:random", "--tasks", str(data / "eval.jsonl"), "--out", str(base_eval),
               *EVAL_ARGS])
    assert rc == 0
    lines = pred.read_text().splitlines()
    assert len(lines) == 6 and lines[:4] == kept
    assert len({json.loads(x)["task_id"] for x in lines}) == 6


def test_eval_with_adapter_measures_drift(adapter_eval):
    m = json.loads((adapter_eval / "metrics.json").read_text())
    assert m["adapter"] and m["drift"]["mean_kl"] > 0 and m["drift"]["tokens"] > 0
    assert "Drift from the base model" in (adapter_eval / "report.md").read_text()


def test_compare_prints_paired_differences(base_eval, adapter_eval, tmp_path, capsys):
    rc = main(["eval", "--compare", str(base_eval), str(adapter_eval), "--out", str(tmp_path), "--resamples", "300"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "Paired bootstrap differences" in out and "accuracy, 4 hops" in out
    assert base_eval.name in out and adapter_eval.name in out
    assert (tmp_path / "compare.md").read_text() == out


def test_bad_input_is_a_clear_error(data, tmp_path, capsys):
    (tmp_path / "eval.jsonl").write_text((data / "eval.jsonl").read_text())
    rc = main(["eval", "--model", "tiny:random", "--tasks", str(tmp_path / "eval.jsonl"), "--out", str(tmp_path / "o")])
    assert rc == 2
    assert "no kg.json beside the task file" in capsys.readouterr().err
    assert main(["eval", "--compare", str(tmp_path)]) == 2
    assert main(["eval", "--tasks", "x.jsonl"]) == 2


def test_eval_facts_writes_recall_and_every_answer(data, tmp_path):
    from kgreason.io import atomic_write_jsonl, read_jsonl
    from kgreason.tasks.facts import fact_queries

    # The first 120 of the graph's 946 facts: every query of the file is still answered and counted,
    # at an eighth of the generation time.
    facts = tmp_path / "facts.jsonl"
    atomic_write_jsonl(facts, read_jsonl(data / "facts.jsonl")[:120])
    (tmp_path / "kg.json").write_text((data / "kg.json").read_text())
    out = tmp_path / "recall"
    rc = main(["eval", "--model", "tiny:random", "--facts", str(facts), "--out", str(out), "--dtype", "fp32"])
    assert rc == 0
    result = json.loads((out / "recall.json").read_text())
    queries = fact_queries(read_jsonl(facts))
    answers = read_jsonl(out / "answers.jsonl")
    assert [a["prompt"] for a in answers] == [q.prompt for q in queries] and len(queries) > 20
    assert result["all"]["queries"] == len(queries)
    assert result["all"]["edges"] == 120
    assert 0.0 <= result["all"]["edge_recall"] <= 1.0 and result["model"] == "tiny:random"


def test_fact_recall_scores_what_the_model_answered(data, monkeypatch):
    """The model's answers stubbed: every other query answered with all its tails, the rest with nothing."""
    import kgreason.evaluate.recall as recall
    from kgreason.io import read_jsonl
    from kgreason.models import load_model
    from kgreason.tasks.facts import fact_queries
    from kgreason.tasks.generate import load_tasks

    queries = fact_queries(read_jsonl(data / "facts.jsonl"))
    known = {q.prompt for q in queries[::2]}
    monkeypatch.setattr(recall, "answer_queries", lambda model, tok, qs, rows=None: {
        q.prompt: q.completion if q.prompt in known else "I do not know." for q in qs})
    model, tokenizer = load_model("tiny:random", dtype="fp32")
    result = recall.evaluate_recall(model, tokenizer, data / "facts.jsonl")
    edges_known = sum(len(q.tails) for q in queries if q.prompt in known)
    assert result["all"]["edge_recall"] == pytest.approx(edges_known / sum(len(q.tails) for q in queries))
    # each "I do not know." lists one wrong item
    assert result["all"]["precision"] == pytest.approx(edges_known / (edges_known + len(queries) - len(known)))
    # the gold path edges, counted here from the eval file and the facts' own ids
    tails_known = {(q.head, q.relation, t) for q in queries if q.prompt in known for t, _ in q.tail_ids}
    path_edges = {e for t in load_tasks(data / "eval.jsonl") for e in t.path_star.edges}
    assert result["eval_path_edges"]["edges"] == len(path_edges)
    assert result["eval_path_edges"]["edge_recall"] == pytest.approx(len(path_edges & tails_known) / len(path_edges))


def test_eval_facts_refuses_a_task_file_too(data, tmp_path, capsys):
    rc = main(["eval", "--model", "tiny:random", "--facts", str(data / "facts.jsonl"), "--tasks",
               str(data / "eval.jsonl"), "--out", str(tmp_path / "x")])
    assert rc == 2 and "leave out --tasks" in capsys.readouterr().err
    rc = main(["eval", "--model", "tiny:random", "--facts", str(data / "facts.jsonl"), "--compare", str(tmp_path)])
    assert rc == 2 and "leave out --compare" in capsys.readouterr().err
    rc = main(["eval", "--model", "tiny:random", "--facts", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "y")])
    assert rc == 2 and "--facts file not found" in capsys.readouterr().err
