"""Experiment grids as data: the bundled grid files, a new arm as a file, errors with file and line,
the reward ablation's arms and its report sentences."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kgreason.cli import main
from kgreason.config import experiment_scale
from kgreason.experiments.arms import grid_names, grid_reference, load_grid
from kgreason.experiments.grid import arm_config
from kgreason.experiments.report import answer_sentences
from kgreason.io import InputError

REPO = Path(__file__).resolve().parents[1]


def test_bundled_grids_and_the_repository_copy_of_the_reward_grid():
    assert {"distribution", "reward"} <= set(grid_names())
    shipped = REPO / "experiments" / "reward.yaml"
    assert shipped.read_text() == (REPO / "src/kgreason/experiments/grids/reward.yaml").read_text()
    assert load_grid(str(shipped)).arm_names == load_grid("reward").arm_names


def test_reward_grid_arms_differ_only_in_their_reward():
    grid = load_grid("reward")
    recipe = experiment_scale("quick").run
    by = {a.name: arm_config(recipe, a, seed=2) for a in grid.arms}
    for method in ("rsft", "grpo"):
        for reward in ("answer", "paper", "kgreason"):
            cfg = by[f"{method}_{reward}"]
            assert getattr(cfg, method).reward_preset == reward and getattr(cfg, method).distribution == "hard"
            assert cfg.eval.reward_preset == "kgreason", "every arm is evaluated with the same scorer"
            assert cfg.seed == 2 and getattr(cfg, method).train.seed == 2
        assert grid.arm(f"{method}_paper").compare_to == grid.arm(f"{method}_kgreason").compare_to == f"{method}_answer"
    assert by["rsft_kgreason"].rsft.faithful_only and not by["rsft_answer"].rsft.faithful_only
    assert [a.name for a in grid.select(["grpo_paper"])] == ["sft", "grpo_answer", "grpo_paper"]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "grid.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_new_arm_is_a_file(tmp_path, monkeypatch):
    path = write(tmp_path, """question: Does a higher RSFT temperature help?
arms:
  - {name: sft, kind: sft}
  - name: rsft_hot
    kind: rsft
    overrides: {rsft: {temperature: 1.0, distribution: hard}}
""")
    grid = load_grid(str(path))
    assert grid.name == "grid" and grid.arm("rsft_hot").compare_to == "sft"
    # a report names a user's grid file relative to the working folder when it lies below it
    monkeypatch.chdir(tmp_path.parent)
    assert grid_reference(grid.source) == f"{tmp_path.name}/{path.name}"
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # not below: the whole path
    assert grid_reference(grid.source) == str(path.resolve())
    # a link is named as given, not by what it points to
    (tmp_path / "elsewhere" / "mine.yaml").symlink_to(path)
    assert grid_reference("mine.yaml") == "mine.yaml"
    assert arm_config(experiment_scale("quick").run, grid.arm("rsft_hot"), 0).rsft.temperature == 1.0


@pytest.mark.parametrize("body, message", [
    ("arms:\n  - {name: sft, kind: sft}\n  - {name: x, kind: rsft, overrides: {rsft: {temprature: 1}}}\n",
     "grid.yaml:3"),
    ("arms:\n  - {name: sft, kind: sft}\n  - {name: x, kind: kto}\n", "kind must be one of"),
    ("arms:\n  - {name: x, kind: rsft}\n", "add an arm named sft"),
    ("arms:\n  - {name: sft, kind: sft}\n  - {name: sft, kind: sft}\n", "used twice"),
    ("arms:\n  - {name: sft, kind: sft}\n  - {name: x, kind: rsft, compare_to: nobody}\n", "not an arm"),
    ("arms:\n  - {name: ../x, kind: sft}\n", "letters, digits"),
    ("arms: []\n", "non-empty list"),
    ("question: q\narm: []\n", "unknown key"),
    ("arms:\n  - {name: sft, kind: sft, colour: red}\n", "unknown arm key"),
    ("arms:\n  - {name: sft, kind: sft, overrides: {seed: 3}}\n", "grid.yaml:2"),
    ("arms:\n  - {name: sft, kind: sft}\n  - {name: x, kind: rsft, overrides: {eval: {max_items: 5}}}\n",
     "only its own `rsft:` options"),
    ("arms:\n  - {name: sft, kind: sft}\n  - {name: x, kind: grpo, overrides: {rsft: {k: 8}}}\n", "grid.yaml:3"),
])
def test_bad_grid_files_name_file_and_line(tmp_path, body, message):
    with pytest.raises(InputError, match=message.replace(".", r"\.")):
        load_grid(str(write(tmp_path, body)))


def test_unknown_grid_name_lists_the_bundled_ones(capsys):
    assert main(["experiment", "nosuchgrid", "--scale", "tiny", "--out", "/tmp/never-written"]) == 2
    err = capsys.readouterr().err
    assert "distribution" in err and "reward" in err and "Traceback" not in err
    assert not Path("/tmp/never-written").exists()


def test_answer_sentences_say_what_the_interval_says():
    def arm(name, label, compare_to, diff, low, high):
        return {"name": name, "label": label, "compare_to": compare_to, "seeds_done": [0, 1, 2],
                "accuracy": {"mean": 0.6}, "faithful_share": {"mean": 0.5},
                "vs_compare": {"accuracy": {"diff": diff, "low": low, "high": high, "n": 150}} if compare_to else None}

    results = {"arms": [arm("a", "A", "", 0, 0, 0), arm("b", "B", "a", 0.05, 0.01, 0.09),
                        arm("c", "C", "a", -0.05, -0.09, -0.01), arm("d", "D", "a", 0.01, -0.03, 0.05)],
               "references": {"shortcut: nearest": {"accuracy": {"mean": 0.3}}, "KG oracle": {"accuracy": {"mean": 1}}}}
    lines = answer_sentences(results)
    assert len(lines) == 3
    assert "better than A" in lines[0] and "+5.0 points [+1.0, +9.0]" in lines[0] and "nearest" in lines[0]
    assert "worse than A" in lines[1]
    assert "not distinguishable" in lines[2] and "3 seed(s)" in lines[2]


def test_reward_grid_end_to_end_on_tiny(tmp_path, capsys):
    out = tmp_path / "reward"
    assert main(["experiment", "reward", "--scale", "tiny", "--seeds", "1", "--out", str(out),
                 "--arms", "rsft_kgreason,grpo_paper"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["experiment"] == "reward" and res["question"].startswith("Does the KG path signal")
    assert res["grid"] == "reward", "a bundled grid is named as `kgreason experiment` takes it, not by a checkout's path"
    names = [a["name"] for a in res["arms"]]
    assert names == ["sft", "rsft_answer", "rsft_kgreason", "grpo_answer", "grpo_paper"]
    by = {a["name"]: a for a in res["arms"]}
    assert by["grpo_paper"]["vs_compare"]["reference"] == "grpo_answer"
    assert by["rsft_answer"]["vs_compare"]["reference"] == "sft"
    record = json.loads((out / "runs" / "grpo_paper-s0" / "arm.json").read_text())
    assert record["definition"]["overrides"] == {"grpo.distribution": "hard", "grpo.reward_preset": "paper"}
    episodes = [json.loads(x) for x in (out / "runs" / "grpo_paper-s0" / "episodes.jsonl").read_text().splitlines()]
    assert episodes and {e["reward"]["preset"] for e in episodes} == {"paper"}, "GRPO trained on the arm's reward"
    report = (out / "report.md").read_text()
    assert "## Answer" in report and "GRPO, paper's overlap reward** vs GRPO, answer-only reward" in report
    # Drift is on at this scale: each evaluation wrote its items' entropy, which the report pairs by item.
    sft_eval = out / "runs" / "sft-s0" / "eval" / "final"
    rows = {r["task_id"]: r for r in map(json.loads, (sft_eval / "drift.jsonl").read_text().splitlines())}
    assert rows and all(r["tokens"] > 0 and r["entropy"] >= 0 and r["kl"] >= 0 for r in rows.values())
    assert by["sft"]["entropy"]["n"] == len(rows) and by["rsft_kgreason"]["vs_sft"]["entropy"]["n"] > 0
    # the paired difference is RSFT minus SFT, item by item, from the two files (one seed)
    rsft_rows = {r["task_id"]: r for r in map(json.loads, (out / "runs" / "rsft_kgreason-s0" / "eval" / "final" /
                                                            "drift.jsonl").read_text().splitlines())}
    shared = rows.keys() & rsft_rows.keys()
    want = sum(rsft_rows[t]["entropy"] - rows[t]["entropy"] for t in shared) / len(shared)
    assert by["rsft_kgreason"]["vs_sft"]["entropy"]["diff"] == pytest.approx(want, abs=1e-9)
    assert "## Entropy of the model" in report
    # `--drift` measures an arm-seed evaluated without it from its saved answers, to the same numbers,
    # and trains nothing
    (sft_eval / "drift.jsonl").unlink()
    metrics = json.loads((sft_eval / "metrics.json").read_text())
    metrics.pop("drift")
    (sft_eval / "metrics.json").write_text(json.dumps(metrics))
    adapter = (out / "runs" / "sft-s0" / "adapters" / "sft" / "adapter_model.safetensors").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["experiment", "reward", "--scale", "tiny", "--seeds", "1", "--out", str(out),
                 "--arms", "rsft_kgreason,grpo_paper", "--report-only", "--drift"]) == 0
    assert "sft seed 0: drift KL" in capsys.readouterr().out
    again = {r["task_id"]: r for r in map(json.loads, (sft_eval / "drift.jsonl").read_text().splitlines())}
    assert again.keys() == rows.keys()
    assert all(again[t]["tokens"] == rows[t]["tokens"] and all(abs(again[t][k] - rows[t][k]) < 1e-4
               for k in ("kl", "entropy", "base_entropy")) for t in rows)
    assert json.loads((sft_eval / "metrics.json").read_text())["drift_measured_after"] is True
    assert (out / "runs" / "sft-s0" / "adapters" / "sft" / "adapter_model.safetensors").stat().st_mtime_ns == adapter
    # the findings row reads the paired entropy difference from results.json
    from kgreason.experiments.findings import Claim, paired_entropy_row

    res = json.loads((out / "results.json").read_text())
    claim = Claim(id="x", claim="x", source="x", results="reward", command="x", measure="paired_entropy",
                  arm="rsft_kgreason", control="sft", expect="lower")
    text, verdict = paired_entropy_row(claim, res)
    d = next(a for a in res["arms"] if a["name"] == "rsft_kgreason")["vs_sft"]["entropy"]
    assert f"**{d['diff']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]**" in text and "nats per token" in text
    assert verdict.split(" (")[0] in ("supported", "not supported", "no difference resolved at this budget",
                                      "not consistent across seeds")

    # another grid beside it copies the SFT arm-seed it defines the same way instead of training it again;
    # its dry run says so before its data exist (a sibling made with the same data options has them)
    capsys.readouterr()
    assert main(["experiment", "frontier", "--scale", "tiny", "--seeds", "1", "--out", str(tmp_path / "frontier"),
                 "--dry-run"]) == 0
    plan = capsys.readouterr().out
    assert f"sft              seed 0  copied from {(out / 'runs' / 'sft-s0').resolve()}" in plan
    assert "rsft_hard_frontier seed 0  ~" in plan
    assert main(["experiment", "frontier", "--scale", "tiny", "--seeds", "1", "--out", str(tmp_path / "frontier"),
                 "--arms", "sft"]) == 0
    copied = json.loads((tmp_path / "frontier" / "runs" / "sft-s0" / "arm.json").read_text())
    assert copied["copied_from"] == str((out / "runs" / "sft-s0").resolve())
    frontier = json.loads((tmp_path / "frontier" / "results.json").read_text())
    assert frontier["arms"][0]["accuracy"]["mean"] == by["sft"]["accuracy"]["mean"]
    assert ((tmp_path / "frontier" / "runs" / "sft-s0" / "adapters" / "sft" / "adapter_model.safetensors").read_bytes()
            == (out / "runs" / "sft-s0" / "adapters" / "sft" / "adapter_model.safetensors").read_bytes())
    # a grid edited after an arm finished: its results are refused, not relabelled
    edited = tmp_path / "reward.yaml"
    edited.write_text((REPO / "src/kgreason/experiments/grids/reward.yaml").read_text().replace(
        "{grpo: {distribution: hard, reward_preset: paper}}", "{grpo: {distribution: easy, reward_preset: paper}}"))
    with pytest.raises(InputError, match="grid now says"):
        from kgreason.experiments.commands import experiment_from_args
        from kgreason.experiments.grid import run_experiment

        parser_args = ["experiment", str(edited), "--scale", "tiny", "--seeds", "1", "--out", str(out),
                       "--arms", "grpo_paper", "--no-stage-processes"]
        from kgreason.cli import build_parser

        run_experiment(experiment_from_args(build_parser().parse_args(parser_args)))


@pytest.mark.parametrize("grid_name, factor", [
    ("frontier", {"rsft_hard_frontier": ("rsft_hard", {"rsft.frontier": True})}),
    ("curriculum", {"rsft_curriculum": ("rsft_hard", {"rsft.distribution": "curriculum"})}),
    ("trace_style", {"sft_short": ("sft", {"sft.trace_style": "short"}),
                     "sft_mix": ("sft", {"sft.trace_style": "mix"})}),
])
def test_the_findings_grids_change_one_factor_against_their_control(grid_name, factor):
    """Each claim's grid (issue: findings): the arm under test differs from the arm it is compared to
    in the claim's factor alone, so its paired difference measures that factor."""
    from kgreason.options import to_dict

    def flat(d: dict, prefix: str = "") -> dict:
        out = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    grid = load_grid(grid_name)
    shipped = REPO / "experiments" / f"{grid_name}.yaml"
    assert shipped.read_text() == (REPO / f"src/kgreason/experiments/grids/{grid_name}.yaml").read_text()
    recipe = experiment_scale("quick").run
    for arm_name, (control_name, changed) in factor.items():
        arm, control = grid.arm(arm_name), grid.arm(control_name)
        assert arm.compare_to == control_name
        a, c = flat(to_dict(arm_config(recipe, arm, seed=1))), flat(to_dict(arm_config(recipe, control, seed=1)))
        differing = {k for k in a if a[k] != c.get(k)}
        assert {k: a[k] for k in differing} == changed, (arm_name, {k: (a[k], c.get(k)) for k in differing})


def test_entropy_row_reads_only_the_paired_seeds_and_each_seeds_own_difference():
    """The findings row's means, interval and per-seed signs come from the item pairing over the seeds
    both arms measured; a control without a pooled entropy (a seed unmeasured) does not break it."""
    from kgreason.experiments.findings import Claim, paired_entropy_row

    def diff(d, low, high, a, b):
        return {"diff": d, "low": low, "high": high, "n": 150, "mean_a": a, "mean_b": b, "p_value": 0.01}

    arm = {"name": "rsft_kgreason", "label": "RSFT", "kind": "rsft", "compare_to": "rsft_answer", "seeds_done": [0, 1],
           "entropy": None,
           "vs_sft": {"reference": "sft", "seeds": [0, 1], "accuracy": diff(0.1, 0.05, 0.15, 0.5, 0.6),
                      "entropy": diff(-0.2, -0.3, -0.1, 0.9, 0.7)},
           "per_seed": [{"seed": 0, "vs_sft": {"entropy": diff(-0.3, -0.4, -0.2, 0.9, 0.6)}},
                        {"seed": 1, "vs_sft": {"entropy": diff(0.05, -0.05, 0.15, 0.9, 0.95)}}]}
    sft = {"name": "sft", "label": "SFT", "kind": "sft", "seeds_done": [0, 1, 2], "entropy": None}
    claim = Claim(id="x", claim="x", source="x", results="reward", command="x", measure="paired_entropy",
                  arm="rsft_kgreason", control="sft", expect="lower")
    text, verdict = paired_entropy_row(claim, {"arms": [sft, arm], "seeds": 3})
    assert text.startswith("RSFT 0.700 vs SFT 0.900 nats per token: **-0.200 [-0.300, -0.100]** (seeds: -0.300, +0.050)")
    assert verdict.startswith("not consistent across seeds") and "preliminary: 2 of 3 seeds" in verdict
    arm["per_seed"][1]["vs_sft"]["entropy"]["diff"] = -0.1
    assert paired_entropy_row(claim, {"arms": [sft, arm], "seeds": 2})[1] == "supported"
    del arm["vs_sft"]["entropy"]
    assert paired_entropy_row(claim, {"arms": [sft, arm], "seeds": 2})[1] == "not measured yet"


def test_a_drift_mean_over_some_seeds_says_how_many():
    """An arm whose drift was measured on seed 0 alone shows that mean as such, not as the arm's."""
    from kgreason.experiments.report import drift_cell

    arm = {"drift_kl": {"mean": 0.845, "per_seed": [0.845]}, "seeds_done": [0, 1, 2]}
    assert drift_cell(arm) == "0.845 (1 of 3 seeds)"
    arm["drift_kl"] = {"mean": 0.8, "per_seed": [0.7, 0.8, 0.9]}
    assert drift_cell(arm) == "0.8"
    assert drift_cell({"drift_kl": None, "seeds_done": [0]}) == "–"
