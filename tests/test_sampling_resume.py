"""`kgreason sample`: well-formed records, append-only, resuming after an interrupted run."""

from __future__ import annotations

import json

import pytest

from kgreason.cli import main
from kgreason.io import InputError, read_jsonl
from kgreason.records import SCHEMAS, Completion, PathStar, Task
from kgreason.sampling.commands import run_sample
from kgreason.tasks.generate import save_tasks


def _task(i: int) -> Task:
    return Task(
        id=f"t{i}", split="eval", hop_len=1, question=f"Q{i}: what does Thing{i} lead to?",
        options={"A": "X", "B": "Y", "C": "Z", "D": "W"}, answer_star="B",
        path_star=PathStar(entities=[f"Thing{i}", "Y"], edges=[(f"Thing{i}", "leads_to", "Y")]),
        prompt=f"Q{i}: what does Thing{i} lead to? " + "Think. " * (i % 3) + "A) X B) Y C) Z D) W",
    )


@pytest.fixture()
def tasks_file(tmp_path):
    path = tmp_path / "eval.jsonl"
    save_tasks([_task(i) for i in range(5)], path)
    return path


OPTS = {"k": 3, "temperature": 0.9, "max_new_tokens": 6, "seed": 2, "dtype": "fp32", "progress": False, "chunk": 2}


def _keys(records):
    return [(r["task_id"], r["sample_index"]) for r in records]


def test_cli_writes_well_formed_completions(tasks_file, tmp_path):
    out = tmp_path / "completions.jsonl"
    rc = main(["sample", "--model", "tiny:random", "--tasks", str(tasks_file), "-k", "2", "--max-new-tokens", "5",
               "--out", str(out), "--quiet", "--dtype", "fp32"])
    assert rc == 0
    recs = read_jsonl(out)
    # Written as they finish (shortest prompts first), each prompt's samples in index order.
    assert sorted(_keys(recs)) == [(f"t{i}", j) for i in range(5) for j in range(2)]
    for i in range(5):
        assert [j for t, j in _keys(recs) if t == f"t{i}"] == [0, 1]
    required = SCHEMAS["Completion"]["required"]
    for r in recs:
        assert all(f in r for f in required)
        c = Completion.from_dict(r)
        assert c.model == "tiny:random" and c.finish_reason in ("answer", "eos", "length")
        assert 1 <= c.completion_tokens <= 5 and c.prompt_tokens > 0


def test_rerun_after_interruption_resumes_without_duplicates(tasks_file, tmp_path):
    out = tmp_path / "c.jsonl"
    full = tmp_path / "full.jsonl"
    run_sample("tiny:random", tasks_file, full, **OPTS)
    # An interrupted run: 2 prompts done, a third cut off after one sample and mid-way through a line.
    run_sample("tiny:random", tasks_file, out, limit=2, **OPTS)
    first = read_jsonl(out)
    partial = [r for r in read_jsonl(full) if r["task_id"] == "t2"][:1]
    with out.open("a") as f:
        f.write(json.dumps(partial[0]) + "\n" + '{"task_id": "t2", "sample_ind')
    written, skipped = run_sample("tiny:random", tasks_file, out, **OPTS)
    recs = read_jsonl(out)
    assert skipped == 2 and written == 3 * 3 - 1
    assert sorted(_keys(recs)) == sorted(_keys(read_jsonl(full)))  # every sample exactly once
    assert recs[: len(first)] == first  # earlier lines untouched (append-only)
    # Per-sample seeds: the resumed samples are the ones an uninterrupted run draws.
    assert {tuple(k): r["text"] for k, r in zip(_keys(recs), recs, strict=True)} == {
        tuple(k): r["text"] for k, r in zip(_keys(read_jsonl(full)), read_jsonl(full), strict=True)
    }
    again, skipped = run_sample("tiny:random", tasks_file, out, **OPTS)
    assert (again, skipped) == (0, 5)


def test_resume_refuses_a_file_from_other_settings(tasks_file, tmp_path):
    out = tmp_path / "c.jsonl"
    run_sample("tiny:random", tasks_file, out, limit=1, **OPTS)
    with pytest.raises(InputError, match="temperature"):
        run_sample("tiny:random", tasks_file, out, **{**OPTS, "temperature": 0.1})


def test_cli_reports_a_missing_model_clearly(tasks_file, tmp_path, capsys):
    rc = main(["sample", "--model", str(tmp_path / "gone.gguf"), "--tasks", str(tasks_file), "--out",
               str(tmp_path / "o.jsonl"), "--quiet"])
    assert rc == 2
    assert "gone.gguf: model file not found" in capsys.readouterr().err


def _interrupt_after(monkeypatch: pytest.MonkeyPatch, finished_rows: int) -> None:
    """Make the HF sampler raise KeyboardInterrupt (as Ctrl-C would) once `finished_rows` samples finished."""
    from kgreason.sampling.hf import HFSampler

    original = HFSampler._run

    def run(self, *args, **kwargs):
        seen = 0
        for done in original(self, *args, **kwargs):
            yield done
            seen += len(done)
            if seen >= finished_rows:
                raise KeyboardInterrupt

    monkeypatch.setattr(HFSampler, "_run", run)


def test_an_interrupted_sample_keeps_what_it_finished_and_says_so_on_resume(tasks_file, tmp_path, monkeypatch,
                                                                           capsys):
    """Completions are appended as they finish, not per chunk of prompts: killed after two prompts
    (one prompt per batch here), the file holds their six samples; the rerun says how many it found
    and adds exactly the rest."""
    opts = {**OPTS, "chunk": None, "batch_size": 3}
    full = tmp_path / "full.jsonl"
    run_sample("tiny:random", tasks_file, full, **opts)
    out = tmp_path / "c.jsonl"
    with monkeypatch.context() as m:
        _interrupt_after(m, 6)
        with pytest.raises(KeyboardInterrupt):
            run_sample("tiny:random", tasks_file, out, **opts)
    kept = read_jsonl(out)
    assert len(kept) == 6 and len({r["task_id"] for r in kept}) == 2
    capsys.readouterr()
    written, skipped = run_sample("tiny:random", tasks_file, out, **opts)
    assert (written, skipped) == (15 - 6, 2)
    assert "sample: 6 of 15 samples already written to" in capsys.readouterr().err
    recs = read_jsonl(out)
    assert recs[:6] == kept  # append-only
    assert {(r["task_id"], r["sample_index"]): r["text"] for r in recs} == \
        {(r["task_id"], r["sample_index"]): r["text"] for r in read_jsonl(full)}


def test_sampler_hands_on_each_prompts_samples_in_index_order(tasks_file):
    from kgreason.models import load_model
    from kgreason.sampling import SamplingParams, get_sampler
    from kgreason.tasks.format import chat_messages
    from kgreason.tasks.generate import load_tasks

    model, tokenizer = load_model("tiny:random", dtype="fp32")
    sampler = get_sampler(model, tokenizer, backend="hf", batch_size=4)
    items = [(t.id, chat_messages(t)) for t in load_tasks(tasks_file)]
    seen: list[tuple[str, int]] = []
    params = SamplingParams(k=3, temperature=0.9, max_new_tokens=6, seed=1)
    returned = sampler.generate(items, params, progress=False, on_completion=lambda c: seen.append((c.task_id, c.sample_index)))
    assert sorted(seen) == sorted((c.task_id, c.sample_index) for c in returned) and len(seen) == 15
    for task_id, _ in items:
        assert [j for t, j in seen if t == task_id] == [0, 1, 2]
    assert [(c.task_id, c.sample_index) for c in returned] == [(t, j) for t, _ in items for j in range(3)]
