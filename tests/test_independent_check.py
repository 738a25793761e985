"""scripts/independent_check.py: the shortcut audit that shares no code with kgreason.

(a) on real generator output (built with the project's CLI) both oracles are 100%;
(b) on tiny hand-made datasets with a planted shortcut the checker exits 1 and names the rule.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "independent_check.py"


def _check(kg: Path, data: Path, *extra: str) -> tuple[int, dict]:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--kg", str(kg), "--data", str(data), "--json", *extra],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def _load_script():
    spec = importlib.util.spec_from_file_location("independent_check", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# --- (a) the project's own generator -------------------------------------------------------------


@pytest.fixture(scope="module")
def seed3_kg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`kgreason kg build --seed 3`, once for both modes (the CLI in this process: the checker, not
    the generator, is what must run apart)."""
    from kgreason.cli import main

    kg = tmp_path_factory.mktemp("kg") / "kg.json"
    assert main(["kg", "build", "--seed", "3", "--out", str(kg)]) == 0
    return kg


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_oracles_are_perfect_on_generated_data(tmp_path: Path, mode: str, seed3_kg: Path) -> None:
    from kgreason.cli import main

    kg = seed3_kg
    out = tmp_path / mode
    assert main(["tasks", "generate", "--kg", str(kg), "--out", str(out), "--seed", "3", "--mode", mode,
                 "--eval-size", "80", "--easy-size", "60", "--hard-size", "40"]) == 0
    rc, rep = _check(kg, out)
    # every generated item is read (open mode may make fewer than asked: strict decoys are rejected, not weakened)
    made = sum(1 for line in (out / "eval.jsonl").read_text().splitlines() if line.strip())
    assert 40 <= made <= 80
    assert rep["n"] == made
    assert rep["oracles"]["kg"]["acc"] == 1.0
    assert rep["oracles"]["kg"]["bad_path_star"] == 0
    if mode == "open":
        assert rep["oracles"]["context"]["acc"] == 1.0
        assert rep["oracles"]["context"]["unparsed_facts"] == 0
        assert "ctx.mentions:max" in rep["rules"]
    for rule in ("kg.undirected_distance:min", "kg.reach_walk_k:max", "train.gold_count:max"):
        assert rule in rep["rules"]
    assert rc == (0 if rep["ok"] else 1)
    assert rep["ok"] == (not rep["failed_rules"] and not rep["failed_oracles"])


# --- (b) hand-made data with a planted shortcut --------------------------------------------------


def _write(tmp_path: Path, kg: dict, items: list[dict]) -> tuple[Path, Path]:
    kg_path = tmp_path / "kg.json"
    kg_path.write_text(json.dumps(kg))
    data = tmp_path / "data"
    data.mkdir()
    (data / "eval.jsonl").write_text("".join(json.dumps(it) + "\n" for it in items))
    return kg_path, data


def _tiny(n: int, context: bool = False, break_oracle: bool = False) -> tuple[dict, list[dict]]:
    """Start S_i -a-> M_i -b-> G_i; distractors X_i_j hang off a far-away hub (-b-> from H_i_j),
    so the gold is always the option nearest the start. With context, the gold is also named in
    three extra facts, the distractors once."""
    ents, edges, items = [], [], []
    rels = [
        {"id": "a", "label": "is a to", "phrase": "is a to"},
        {"id": "b", "label": "is b to", "phrase": "is b to"},
    ]
    for i in range(n):
        s, m, gold = f"S{i}", f"M{i}", f"G{i}"
        ds = [f"X{i}x{j}" for j in range(3)]
        for e in [s, m, gold, *ds, *[f"H{i}x{j}" for j in range(3)]]:
            ents.append({"id": e, "label": e, "type": "thing"})
        edges += [{"src": s, "rel": "a", "dst": m}, {"src": m, "rel": "b", "dst": gold}]
        edges += [{"src": f"H{i}x{j}", "rel": "b", "dst": d} for j, d in enumerate(ds)]
        letters = "ABCD"
        pos = i % 4
        opts = ds[:pos] + [gold] + ds[pos:]
        option_ids = dict(zip(letters, opts, strict=True))
        chain = ["a", "a"] if break_oracle and i == 0 else ["a", "b"]
        facts = []
        if context:
            facts = [f"{s} is a to {m}.", f"{m} is b to {gold}."]
            facts += [f"H{i}x{j} is b to {d}." for j, d in enumerate(ds)]
            facts += [f"{gold} is a to {m}.", f"{gold} is b to {m}.", f"{gold} is a to {s}."]
        items.append(
            {
                "id": f"eval-{i:05d}",
                "hop_len": 2,
                "question": f"Start at {s} and follow 2 hops: {' → '.join(chain)}. Which entity do you reach?",
                "options": option_ids,
                "option_ids": option_ids,
                "answer_star": letters[pos],
                "answer_id": gold,
                "start": s,
                "relation_chain": chain,
                "path_star": {"entities": [s, m, gold], "edges": edges[-5:-3]},
                "mode": "open" if context else "closed",
                "context_facts": facts,
            }
        )
    return {"name": "tiny", "entities": ents, "relations": rels, "edges": edges}, items


def test_planted_nearest_shortcut_fails(tmp_path: Path) -> None:
    kg, items = _tiny(40)
    rc, rep = _check(*_write(tmp_path, kg, items))
    assert rc == 1
    assert rep["oracles"]["kg"]["acc"] == 1.0
    assert "kg.undirected_distance:min" in rep["failed_rules"]
    assert rep["rules"]["kg.undirected_distance:min"]["acc"] == 1.0
    # ties count as 1/k: every option is a tail of the last relation, so that rule is at chance
    assert rep["rules"]["kg.is_tail_of_last_rel:max"]["acc"] == pytest.approx(0.25)
    assert rep["rules"]["text.alphabetical:max"]["acc"] <= 0.35


def test_planted_context_mention_shortcut_fails(tmp_path: Path) -> None:
    kg, items = _tiny(40, context=True)
    rc, rep = _check(*_write(tmp_path, kg, items))
    assert rc == 1
    assert rep["oracles"]["context"]["acc"] == 1.0
    assert rep["oracles"]["context"]["unparsed_facts"] == 0
    assert "ctx.mentions:max" in rep["failed_rules"]


def test_broken_oracle_fails_even_without_shortcut_limit(tmp_path: Path) -> None:
    kg, items = _tiny(8, break_oracle=True)
    rc, rep = _check(*_write(tmp_path, kg, items), "--max", "1.0")
    assert rc == 1
    assert rep["failed_rules"] == []
    assert rep["failed_oracles"] == ["kg"]
    assert rep["oracles"]["kg"]["gold_unreached"] == 1


def test_text_report_and_bad_input(tmp_path: Path) -> None:
    kg, items = _tiny(8)
    kg_path, data = _write(tmp_path, kg, items)
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--kg", str(kg_path), "--data", str(data)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert "KG oracle" in proc.stdout and "FAIL" in proc.stdout
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--kg", str(kg_path), "--data", str(data), "--split", "nope"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "no nope.jsonl" in proc.stderr


def test_helpers() -> None:
    ic = _load_script()
    assert ic.expected_hit([3, 3, 1, 0], 0, True) == 0.5
    assert ic.expected_hit([3, 3, 1, 0], 3, False) == 1.0
    assert ic.expected_hit([None] * 4, 2, True) == 0.25
    lo, hi = ic.wilson(0.25, 300)
    assert lo < 0.25 < hi and hi - lo < 0.11
    g = ic.Graph(
        {
            "entities": [{"id": "x", "label": "Big Box"}, {"id": "y", "label": "y"}],
            "relations": [{"id": "r", "phrase": "is part of", "inverse_phrase": "contains"}],
            "edges": [{"src": "x", "rel": "r", "dst": "y"}],
        }
    )
    assert ic.parse_fact("Big Box is part of y.", g) == ("x", "r", "y")
    assert ic.parse_fact("y contains Big Box.", g) == ("x", "r", "y")
    assert ic.parse_fact("Big Box likes y.", g) is None
