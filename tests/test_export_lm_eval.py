"""`kgreason export lm-eval`: the task folder runs under lm-evaluation-harness and reports kgreason's metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest_export import data_folder
from kgreason.cli import main
from kgreason.tasks.generate import load_tasks

METRICS = ("acc", "faithful", "reward", "format_ok")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lm_eval") / "tasks"
    assert main(["export", "lm-eval", "--tasks", str(data_folder("open")), "--out", str(out)]) == 0
    return out


def _yaml(path: Path) -> dict:
    # lm-eval's `!function` tag is not plain YAML; read it as a string here
    loader = type("L", (yaml.SafeLoader,), {})
    loader.add_constructor("!function", lambda ld, node: f"!function {ld.construct_scalar(node)}")
    return yaml.load(path.read_text(encoding="utf-8"), Loader=loader)  # a SafeLoader subclass


def test_one_task_per_hop_count_and_a_group(exported: Path) -> None:
    tasks = load_tasks(data_folder("open") / "eval.jsonl")
    hops = sorted({t.hop_len for t in tasks})
    names = [f"kgreason_hop{h}" for h in hops]
    assert _yaml(exported / "kgreason.yaml")["task"] == names
    for hop, name in zip(hops, names, strict=True):
        cfg = _yaml(exported / f"{name}.yaml")
        assert cfg["task"] == name and cfg["output_type"] == "generate_until" and cfg["dataset_path"] == "json"
        data_file = Path(cfg["dataset_kwargs"]["data_files"]["test"])
        assert data_file.is_absolute() and data_file.is_file()
        docs = [json.loads(line) for line in data_file.read_text().splitlines()]
        assert len(docs) == sum(t.hop_len == hop for t in tasks) and {d["hop_len"] for d in docs} == {hop}
        assert cfg["process_results"] == "!function utils.process_results"
        assert [m["metric"] for m in cfg["metric_list"]] == list(METRICS)
        assert "\n\n" in cfg["generation_kwargs"]["until"] and cfg["generation_kwargs"]["do_sample"] is False
        assert cfg["doc_to_text"] == "{{prompt}}" and cfg["description"].startswith("Follow the question's relations")
    assert "import" in (exported / "utils.py").read_text() and "kgreason" in (exported / "utils.py").read_text()


def test_process_results_scores_with_kgreason(exported: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("kg_lm_eval_utils", exported / "utils.py")
    assert spec is not None and spec.loader is not None
    utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utils)
    doc = json.loads((exported / "data" / "eval_hop4.jsonl").read_text().splitlines()[0])
    right = utils.process_results(doc, [doc["reference_completion"] + "\n\nQuestion: and more"])
    assert right == {"acc": 1.0, "faithful": 1.0, "reward": pytest.approx(1.8), "format_ok": 1.0}
    wrong = next(letter for letter in "ABCD" if letter != doc["answer"])
    bare = utils.process_results(doc, [f"TRACE:\nANSWER: {wrong}"])
    assert bare["acc"] == 0.0 and bare["faithful"] == 0.0 and bare["reward"] < 0


def own_tasks(folder: Path):  # type: ignore[no-untyped-def]
    """lm-eval's task index of the exported folder alone: the folder must be self-contained, and
    indexing lm-eval's own task files as well takes 8.5 s (AMD EPYC, AVX2) for nothing."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(folder), include_defaults=False)


def test_lm_eval_runs_the_group_with_reference_answers(exported: Path) -> None:
    """lm-eval's own pipeline (task loading, requests, process_results, group aggregation) with a
    model that answers each prompt with its reference completion: every metric at its best."""
    lm_eval = pytest.importorskip("lm_eval")
    from lm_eval.api.model import LM

    docs = [json.loads(line) for f in sorted((exported / "data").glob("*.jsonl")) for line in f.read_text().splitlines()]

    class ReferenceLM(LM):
        def loglikelihood(self, requests):  # type: ignore[no-untyped-def]
            raise NotImplementedError

        def loglikelihood_rolling(self, requests):  # type: ignore[no-untyped-def]
            raise NotImplementedError

        def generate_until(self, requests):  # type: ignore[no-untyped-def]
            return [next(d["reference_completion"] for d in docs if d["prompt"] in r.args[0]) for r in requests]

    results = lm_eval.simple_evaluate(model=ReferenceLM(), tasks=["kgreason"], limit=2,
                                      task_manager=own_tasks(exported))["results"]
    assert set(results) == {"kgreason", "kgreason_hop4", "kgreason_hop5"}
    for name in results:
        assert results[name]["acc,none"] == 1.0 and results[name]["faithful,none"] == 1.0
        assert results[name]["reward,none"] == pytest.approx(1.8)


def test_lm_eval_hf_model_on_the_exported_folder(exported: Path, tmp_path: Path) -> None:
    """`lm_eval.simple_evaluate` with model `hf`: a tiny random Llama (the SmolLM2 tokenizer and chat
    template) saved to a folder, chat template on, limit 2: every metric appears for every task."""
    lm_eval = pytest.importorskip("lm_eval")

    from kgreason.models.tiny import build_tiny_model, bundled_tokenizer

    tokenizer = bundled_tokenizer()
    model = build_tiny_model(tokenizer, seed=0)
    model.save_pretrained(tmp_path / "tiny")
    tokenizer.save_pretrained(tmp_path / "tiny")
    out = lm_eval.simple_evaluate(
        model="hf",
        model_args={"pretrained": str(tmp_path / "tiny"), "dtype": "float32", "device": "cpu"},
        tasks=["kgreason_hop4", "kgreason_hop5"],
        limit=2,
        apply_chat_template=True,
        gen_kwargs="max_gen_toks=16",
        task_manager=own_tasks(exported),
    )
    results = out["results"]
    for name in ("kgreason_hop4", "kgreason_hop5"):
        for metric in METRICS:
            value = results[name][f"{metric},none"]
            assert isinstance(value, float)
        assert results[name]["acc,none"] in (0.0, 0.5, 1.0)
    assert out["configs"]["kgreason_hop4"]["output_type"] == "generate_until"


def test_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["export", "lm-eval", "--tasks", str(data_folder("open")), "--out", str(tmp_path / "t")]
    assert main([*args, "--split", "nope"]) == 2
    assert main([*args, "--name", "bad-name"]) == 2
    assert main(["export", "lm-eval", "--tasks", str(tmp_path / "none"), "--out", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err
    assert err.count("kgreason: error: ") == 3 and "Traceback" not in err
