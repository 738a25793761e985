"""scripts/independent_dpo_pairs_check.py: the DPO pair audit that shares no code with kgreason.

A tiny synthetic run folder (2 questions, 3 samples each, hand-written rewards) passes; planted
faults (a chosen side with a wrong answer, a chosen hop the graph lacks, a pair text that is not
its episode's, too many pairs, a missing pair) make the checker exit 1 and name the fault.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "independent_dpo_pairs_check.py"

KG = {
    "name": "tiny",
    "entities": [{"id": x, "label": x} for x in (
        "TLSHandshakeError", "ClockSkew", "SyncNTP", "ntpdate", "ExpiredCertificate", "RenewCert", "certbot", "helm")],
    "relations": [
        {"id": "caused_by", "phrase": "is caused by", "inverse_phrase": "causes"},
        {"id": "fixed_by", "phrase": "is fixed by", "inverse_phrase": "fixes"},
        {"id": "uses_tool", "phrase": "uses", "inverse_phrase": "is used by"},
    ],
    "edges": [{"src": h, "rel": r, "dst": t} for h, r, t in (
        ("TLSHandshakeError", "caused_by", "ClockSkew"), ("ClockSkew", "fixed_by", "SyncNTP"),
        ("SyncNTP", "uses_tool", "ntpdate"), ("TLSHandshakeError", "caused_by", "ExpiredCertificate"),
        ("ExpiredCertificate", "fixed_by", "RenewCert"), ("RenewCert", "uses_tool", "certbot"))],
}


def _task(i: int, start: str, path: list[tuple[str, str, str]], options: dict[str, str], gold: str) -> dict:
    return {
        "id": f"train_hard-{i:05d}", "split": "train_hard", "hop_len": len(path),
        "question": f"Start at {start} and follow {len(path)} hops.", "options": options, "answer_star": gold,
        "path_star": {"entities": [start, *(t for _, _, t in path)],
                      "edges": [{"src": h, "rel": r, "dst": t} for h, r, t in path]},
        "prompt": "...", "start": start, "relation_chain": [r for _, r, _ in path],
        "option_ids": dict(options), "answer_id": path[-1][2], "mode": "closed",
    }


TASKS = [
    _task(0, "TLSHandshakeError", [("TLSHandshakeError", "caused_by", "ClockSkew"), ("ClockSkew", "fixed_by", "SyncNTP")],
          {"A": "ntpdate", "B": "SyncNTP", "C": "helm", "D": "certbot"}, "B"),
    _task(1, "ExpiredCertificate", [("ExpiredCertificate", "fixed_by", "RenewCert"), ("RenewCert", "uses_tool", "certbot")],
          {"A": "certbot", "B": "ntpdate", "C": "helm", "D": "SyncNTP"}, "A"),
]

# (task index, completion, format_ok, correct, faithful, total, claimed hops (head, rel, tail, valid))
SAMPLES = [
    (0, "TRACE: 1. TLSHandshakeError is caused by ClockSkew. 2. ClockSkew is fixed by SyncNTP.\nANSWER: SyncNTP (B)",
     True, True, True, 1.7, [("TLSHandshakeError", "caused_by", "ClockSkew", True),
                             ("ClockSkew", "fixed_by", "SyncNTP", True)]),
    (0, "TRACE: 1. TLSHandshakeError is caused by ClockSkew. 2. ClockSkew is fixed by helm.\nANSWER: helm (C)",
     True, False, False, -0.5, [("TLSHandshakeError", "caused_by", "ClockSkew", True),
                                ("ClockSkew", "fixed_by", "helm", False)]),
    (0, "TRACE: 1. TLSHandshakeError is caused by SyncNTP. 2. SyncNTP uses ntpdate.\nANSWER: SyncNTP (B)",
     True, True, False, 1.0, [("TLSHandshakeError", "caused_by", "SyncNTP", False),
                              ("SyncNTP", "uses_tool", "ntpdate", True)]),
    (1, "TRACE: 1. ExpiredCertificate is fixed by RenewCert. 2. RenewCert uses helm.\nANSWER: helm (C)",
     True, False, False, -0.5, [("ExpiredCertificate", "fixed_by", "RenewCert", True),
                                ("RenewCert", "uses_tool", "helm", False)]),
    (1, "ANSWER: certbot (A)", False, False, False, -1.5, []),
    (1, "TRACE: 1. ExpiredCertificate is fixed by RenewCert. 2. RenewCert uses ntpdate.\nANSWER: ntpdate (B)",
     True, False, False, -0.5, [("ExpiredCertificate", "fixed_by", "RenewCert", True),
                                ("RenewCert", "uses_tool", "ntpdate", False)]),
]


def _reward(fmt: bool, correct: bool, faithful: bool, total: float, hops: list, answer: str | None) -> dict:
    return {"preset": "kgreason", "format_ok": fmt, "answer": answer, "correct": correct, "path_coverage": 0.0,
            "hits": 0, "claimed_hops": [{"head": h, "relation": r, "tail": t, "valid": v} for h, r, t, v in hops],
            "valid_hops": sum(v for *_, v in hops), "faithful": faithful, "repetition": 0.0, "total": total,
            "components": {}}


def fake_run() -> dict:
    """The files of a consistent run folder, as Python objects (name -> object or list of lines)."""
    episodes = []
    counter: dict[int, int] = {}
    for t, text, fmt, correct, faithful, total, hops in SAMPLES:
        idx = counter.get(t, 0)
        counter[t] = idx + 1
        answer = text.rsplit("(", 1)[-1][0] if "ANSWER" in text else None
        episodes.append({"run": "fake", "phase": "dpo", "step": t, "task_id": TASKS[t]["id"], "prompt": "...",
                         "completion": text, "reward": _reward(fmt, correct, faithful, total, hops, answer),
                         "sample_index": idx, "round": 1, "kept": False})
    pairs = {TASKS[0]["id"]: [[0, 1]], TASKS[1]["id"]: []}
    metrics = [{"phase": "dpo", "step": 1, "round": 0, "loss": 0.69}]  # a trainer line: no task_id
    for i, task in enumerate(TASKS):
        eps = [e for e in episodes if e["task_id"] == task["id"]]
        chosen = sum(e["reward"]["format_ok"] and e["reward"]["correct"] and e["reward"]["faithful"] for e in eps)
        metrics.append({"phase": "dpo", "step": i, "round": 1, "time": 0.0, "task_id": task["id"], "hop_len": 2,
                        "k": len(eps), "pass_rate": sum(e["reward"]["correct"] for e in eps) / len(eps),
                        "chosen": chosen, "rejected": len(eps) - chosen, "pairs": pairs[task["id"]],
                        "mean_reward": 0.0})
    return {"episodes": episodes, "metrics": metrics, "pairs": pairs,
            "config": {"run": "fake", "dpo": {"model": "tiny:random", "options": {"pairs": 1, "k": 3}}}}


def write_run(root: Path, files: dict) -> Path:
    """Write the run folder; pairs.jsonl and the kept flags follow the metrics lines' pairs."""
    (root / "data").mkdir(parents=True)
    (root / "adapters" / "dpo").mkdir(parents=True)
    (root / "data" / "kg.json").write_text(json.dumps(KG))
    (root / "data" / "train_hard.jsonl").write_text("".join(json.dumps(t) + "\n" for t in TASKS))
    (root / "config.json").write_text(json.dumps(files["config"]))
    episodes = {(e["task_id"], e["sample_index"]): e for e in files["episodes"]}
    rows = []
    for m in files["metrics"]:
        for c, r in m.get("pairs", []):
            ec, er = episodes[(m["task_id"], c)], episodes[(m["task_id"], r)]
            ec["kept"] = er["kept"] = True
            rows.append({"task_id": m["task_id"], "hop_len": 2, "chosen_sample": c, "chosen": ec["completion"],
                         "chosen_reward": ec["reward"], "rejected_sample": r, "rejected": er["completion"],
                         "rejected_reward": er["reward"]})
    rows = files.get("pair_rows", rows)
    (root / "episodes.jsonl").write_text("".join(json.dumps(e) + "\n" for e in files["episodes"]))
    (root / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in files["metrics"]))
    (root / "adapters" / "dpo" / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def _check(root: Path) -> tuple[int, dict]:
    proc = subprocess.run([sys.executable, str(SCRIPT), str(root), "--json"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def test_consistent_run_passes(tmp_path: Path) -> None:
    rc, out = _check(write_run(tmp_path / "run", fake_run()))
    assert rc == 0, out["violations"]
    c = out["counts"]
    assert (c["questions"], c["questions_with_pairs"], c["pairs"], c["pairs_cap"]) == (2, 1, 1, 1)
    assert (c["correct_agreement"], c["correct_compared"]) == (6, 6)
    assert c["my_verdicts"] == {"correct": 2, "wrong": 3, "unparsable": 1}
    assert c["chosen"]["verified"] == 1 and c["chosen"]["hops read"] == 2
    assert c["chosen"].get("hops not in graph", 0) == 0
    assert c["chosen"]["hops match recorded claimed_hops"] == 1
    assert c["rejected"] == {"wrong": 1}
    assert out["warnings"] == {}

    text = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "run")], capture_output=True, text=True,
                          timeout=60)
    assert text.returncode == 0 and "result: OK" in text.stdout


def _set_completion(files: dict, task: int, sample: int, text: str) -> None:
    for e in files["episodes"]:
        if e["task_id"] == TASKS[task]["id"] and e["sample_index"] == sample:
            e["completion"] = text


def test_chosen_wrong_answer_fails(tmp_path: Path) -> None:
    files = fake_run()
    # The chosen episode (and so its pair) now answers A while its reward still says correct.
    _set_completion(files, 0, 0, "TRACE: 1. TLSHandshakeError is caused by ClockSkew. 2. ClockSkew is fixed by "
                                  "SyncNTP.\nANSWER: ntpdate (A)")
    rc, out = _check(write_run(tmp_path / "run", files))
    assert rc == 1
    assert "chosen side not correct (independent reading)" in out["violations"]
    assert out["counts"]["correct_agreement"] == 5


def test_chosen_hop_not_in_graph_fails(tmp_path: Path) -> None:
    files = fake_run()
    _set_completion(files, 0, 0, "TRACE: 1. TLSHandshakeError is caused by ClockSkew. 2. ClockSkew uses "
                                  "SyncNTP.\nANSWER: SyncNTP (B)")
    rc, out = _check(write_run(tmp_path / "run", files))
    assert rc == 1
    assert "chosen hop not in the graph" in out["violations"]
    assert out["counts"]["chosen"]["hops not in graph"] == 1


def test_pair_text_not_its_episode_fails(tmp_path: Path) -> None:
    files = fake_run()
    root = write_run(tmp_path / "run", files)
    rows = [json.loads(line) for line in (root / "adapters" / "dpo" / "pairs.jsonl").read_text().splitlines()]
    rows[0]["chosen"] = rows[0]["chosen"].replace("(B)", "(A)").replace("SyncNTP (A)", "ntpdate (A)")
    (root / "adapters" / "dpo" / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    rc, out = _check(root)
    assert rc == 1
    assert {"pair text differs from episode", "chosen side not correct (independent reading)"} <= set(out["violations"])


@pytest.mark.parametrize(("pairs", "fault"), [
    ([[0, 1], [0, 2]], "more pairs than the cap"),
    ([], "no pair although both sides exist"),
])
def test_per_question_pair_counts(tmp_path: Path, pairs: list, fault: str) -> None:
    files = copy.deepcopy(fake_run())
    files["metrics"][1]["pairs"] = pairs
    rc, out = _check(write_run(tmp_path / "run", files))
    assert rc == 1
    assert fault in out["violations"]


def test_pair_for_question_without_chosen_fails(tmp_path: Path) -> None:
    files = fake_run()
    files["metrics"][2]["pairs"] = [[0, 1]]  # question 2 has no chosen-eligible sample
    rc, out = _check(write_run(tmp_path / "run", files))
    assert rc == 1
    assert {"pair although one side is empty", "chosen not eligible by its reward"} <= set(out["violations"])
