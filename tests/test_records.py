from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from kgreason.io import InputError, JsonlAppender, atomic_write_json, read_jsonl
from kgreason.records import (
    SCHEMAS,
    ClaimedHop,
    Completion,
    Episode,
    PathStar,
    RewardBreakdown,
    Task,
)
from kgreason.schemas import schemas_markdown

DOC = Path(__file__).resolve().parents[1] / "docs" / "schemas.md"


def _task() -> Task:
    return Task(
        id="eval-0001",
        split="eval",
        hop_len=2,
        question="Start at TLSHandshakeError and follow: is caused by, then is fixed by.",
        options={"A": "SyncNTP", "B": "RestartPod", "C": "RotateCert", "D": "ScaleUp"},
        answer_star="A",
        path_star=PathStar(
            entities=["TLSHandshakeError", "ClockSkew", "SyncNTP"],
            edges=[("TLSHandshakeError", "caused_by", "ClockSkew"), ("ClockSkew", "fixed_by", "SyncNTP")],
        ),
        prompt="...",
        start="TLSHandshakeError",
        relation_chain=["caused_by", "fixed_by"],
        option_ids={"A": "SyncNTP", "B": "RestartPod", "C": "RotateCert", "D": "ScaleUp"},
        answer_id="SyncNTP",
    )


def _breakdown() -> RewardBreakdown:
    return RewardBreakdown(
        preset="kgreason",
        format_ok=True,
        answer="A",
        correct=True,
        path_coverage=1.0,
        hits=1,
        claimed_hops=[ClaimedHop("TLSHandshakeError", "caused_by", "ClockSkew", True)],
        valid_hops=1,
        faithful=False,
        repetition=0.0,
        total=1.5,
        components={"correct": 1.0, "hops": 0.5},
    )


def test_each_record_round_trips_and_matches_its_schema() -> None:
    task = _task()
    comp = Completion(task_id=task.id, sample_index=0, text="TRACE: x\nANSWER: A", finish_reason="answer")
    ep = Episode(run="r", phase="rsft", step=3, task_id=task.id, prompt="p", completion="c", reward=_breakdown())
    for name, rec, cls in (("Task", task, Task), ("Completion", comp, Completion), ("Episode", ep, Episode)):
        d = json.loads(json.dumps(rec.to_dict()))
        schema = dict(SCHEMAS[name])
        if name == "Episode":  # resolve the reference to the breakdown schema
            schema = json.loads(json.dumps(schema).replace('{"$ref": "#/RewardBreakdown"}', json.dumps(SCHEMAS["RewardBreakdown"])))
        jsonschema.validate(d, schema)
        assert cls.from_dict(d) == rec
    jsonschema.validate(_breakdown().to_dict(), SCHEMAS["RewardBreakdown"])


def test_schema_rejects_a_bad_letter() -> None:
    d = _task().to_dict()
    d["answer_star"] = "E"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(d, SCHEMAS["Task"])


def test_hobby_task_without_our_fields_loads() -> None:
    hobby = {
        "id": "q1", "split": "eval", "hop_len": 2, "question": "What is the root cause of X?",
        "options": {"A": "a", "B": "b", "C": "c", "D": "d"}, "answer_star": "C",
        "path_star": {"entities": ["X", "Y", "c"], "edges": [{"src": "X", "rel": "caused_by", "dst": "Y"},
                                                           {"src": "Y", "rel": "fixed_by", "dst": "c"}]},
        "prompt": "Q",
    }
    t = Task.from_dict(hobby)
    assert t.start == "X" and t.answer_id == "c" and t.relation_chain == ["caused_by", "fixed_by"]
    assert t.mode == "closed" and t.option_ids == {}


def test_schema_doc_is_in_step_with_code() -> None:
    assert schemas_markdown() in DOC.read_text(encoding="utf-8"), "run: python -m kgreason.schemas docs/schemas.md"


def test_appender_recovers_from_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    with JsonlAppender(path) as log:
        log.write({"i": 1})
    with path.open("a") as f:
        f.write('{"i": 2, "trunc')  # a crash mid-write
    assert read_jsonl(path, tolerate_torn_tail=True) == [{"i": 1}]
    with pytest.raises(InputError, match=r"log.jsonl:2"):
        read_jsonl(path)
    with JsonlAppender(path) as log:
        log.write({"i": 3})
    assert read_jsonl(path) == [{"i": 1}, {"i": 3}]


def test_atomic_write_leaves_no_partial_file(tmp_path: Path) -> None:
    class Boom:
        pass

    target = tmp_path / "out.json"
    atomic_write_json(target, {"ok": 1})
    with pytest.raises(TypeError):
        atomic_write_json(target, {"bad": Boom()})
    assert json.loads(target.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_atomic_write_gives_ordinary_permissions(tmp_path: Path) -> None:
    import os

    target = tmp_path / "perm.json"
    atomic_write_json(target, {"ok": 1})
    old = os.umask(0o022)
    os.umask(old)
    assert target.stat().st_mode & 0o777 == 0o666 & ~old
