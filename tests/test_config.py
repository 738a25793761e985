"""One source for every option (kgreason/config.py -> flags, YAML, config.json), registries that a
package outside kgreason extends, and an import graph without circles."""

from __future__ import annotations

import ast
import json
import shutil
import sys
from pathlib import Path

import pytest

from kgreason import registry
from kgreason.cli import build_parser, main
from kgreason.config import (
    EvalSettings,
    ExperimentConfig,
    GRPOOptions,
    PipelineConfig,
    RSFTOptions,
    RunConfig,
    SFTOptions,
    experiment_scale,
    pipeline_profile,
)
from kgreason.io import InputError
from kgreason.options import from_dict, leaves, read_config_file, to_dict, with_overrides

SRC = Path(__file__).resolve().parents[1] / "src"


def parse(*argv: str):
    return build_parser().parse_args(list(argv))


# --- declared once ---------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [PipelineConfig, SFTOptions, RSFTOptions, GRPOOptions, EvalSettings, ExperimentConfig])
def test_every_field_has_help_and_a_flag_of_its_own(cls) -> None:
    found = list(leaves(cls))
    assert found and all(leaf.meta.get("help") for leaf in found)
    flags = [leaf.flag for leaf in found]
    assert len(flags) == len(set(flags)), "two fields would share a flag"


def test_the_train_flags_and_their_help_come_from_the_dataclass_defaults(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["train", "rsft", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    default = RSFTOptions()
    assert f"samples per question (default: {default.k})" in text
    assert f"(default: {default.train.learning_rate})" in text  # RSFT's own learning rate, not SFT's
    assert "--reward-preset" in text and "--preset " not in text
    args = parse("train", "rsft", "--run-dir", "r", "--data", "d", "-k", "3", "--learning-rate", "0.01")
    from kgreason.train.commands import options_from_args

    opts = options_from_args(RSFTOptions, args)
    assert (opts.k, opts.train.learning_rate, opts.rounds) == (3, 0.01, default.rounds)


def test_run_profile_then_yaml_then_flags(tmp_path: Path) -> None:
    from kgreason.pipeline.commands import pipeline_config_from_args

    cfg_file = tmp_path / "my.yaml"
    cfg_file.write_text("sft:\n  train: {max_steps: 50, learning_rate: 0.001}\nrsft: {rounds: 3}\nseed: 4\n")
    cfg = pipeline_config_from_args(parse("run", "--config", str(cfg_file), "--sft-max-steps", "7", "-k", "2"))
    quick = pipeline_profile("quick")
    assert cfg.sft.train.max_steps == 7  # the flag beats the file
    assert cfg.sft.train.learning_rate == 0.001 and cfg.rsft.rounds == 3  # the file beats the profile
    assert cfg.rsft.k == 2 and cfg.rsft.questions == quick.rsft.questions  # the rest is the profile's
    assert cfg.seed == 4 and cfg.sft.train.seed == cfg.rsft.train.seed == cfg.eval.seed == 4  # seeds follow
    assert cfg.profile == "quick"


def test_reward_preset_is_one_option_of_a_run(tmp_path: Path) -> None:
    from kgreason.pipeline.commands import pipeline_config_from_args

    cfg = pipeline_config_from_args(parse("run", "--reward-preset", "seed"))
    assert cfg.eval.reward_preset == cfg.rsft.reward_preset == cfg.grpo.reward_preset == "seed"
    bad = tmp_path / "bad.yaml"
    bad.write_text("rsft:\n  reward_preset: paper\n")
    with pytest.raises(InputError, match=r"bad.yaml:2: 'rsft.reward_preset' is set by another option"):
        pipeline_config_from_args(parse("run", "--config", str(bad)))


@pytest.mark.parametrize(("text", "message"), [
    ("sft:\n  train:\n    max_step: 5\n", r"x.yaml:3: unknown option 'sft.train.max_step'; did you mean max_steps"),
    ("rsft: {k: 0}\n", r"x.yaml:1: rsft.k: expected a whole number of at least 1"),
    ("rsft: {k: 2.5}\n", r"x.yaml:1: rsft.k: expected a whole number"),
    ("data: {mode: half}\n", r"x.yaml:1: data.mode: expected one of closed, open"),
    ("eval: {shuffle: maybe}\n", r"x.yaml:1: eval.shuffle: expected true or false"),
    ("sft: [1, 2]\n", r"x.yaml:1: expected a mapping of option names under 'sft'"),
    ("sft: {material: [facts, eval]}\n", r"x.yaml:1: sft.material: expected a comma list of facts, easy, hard"),
    ("rsft: {k: [\n", r"x.yaml:2: malformed YAML"),
    ("rsft: {k: 2}\nrsft: {k: 3}\n", r"x.yaml:2: 'rsft' is given twice \(first at line 1\)"),
])
def test_a_bad_config_file_names_file_line_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_config_file(path, PipelineConfig)


def test_profiles_and_scales_are_override_files() -> None:
    quick, smoke = pipeline_profile("quick"), pipeline_profile("smoke")
    assert quick.data.mode == "open" and quick.sft.material == ["easy"] and quick.rsft.distribution == "hard"
    assert smoke.model == "tiny:random" and quick.model == PipelineConfig().model
    scale = experiment_scale("quick")
    assert scale.seeds == 3 and to_dict(scale.run) == to_dict(quick), "the quick scale runs the quick profile"
    assert experiment_scale("tiny").run.model == "tiny:random"
    with pytest.raises(InputError, match="--profile: expected one of full, quick, smoke"):
        pipeline_profile("fast")


def test_a_profile_is_read_once_yet_each_caller_gets_its_own_copy_and_an_edit_is_read_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kgreason import config, options

    first = pipeline_profile("quick")
    first.sft.train.max_steps, first.sft.material = 12345, ["facts"]
    experiment_scale("quick").run.rsft.k = 99
    assert pipeline_profile("quick").sft.train.max_steps != 12345 and pipeline_profile("quick").sft.material == ["easy"]
    assert experiment_scale("quick").run.rsft.k != 99
    # A copy of the profiles folder (same names, times and sizes): read from the copy, and only once.
    folder = tmp_path / "profiles"
    shutil.copytree(config.PROFILES_DIR, folder)
    monkeypatch.setattr(config, "PROFILES_DIR", folder)
    reads: list[Path] = []
    real_read = options.read_config_file
    monkeypatch.setattr(options, "read_config_file", lambda path, *a, **k: reads.append(Path(path)) or real_read(path, *a, **k))
    assert pipeline_profile("smoke").seed == 0 and pipeline_profile("smoke").seed == 0
    assert reads == [folder / "smoke.yaml"]
    # An edit of the same size, at once: the next call reads the new value.
    smoke = folder / "smoke.yaml"
    text = smoke.read_text(encoding="utf-8") + "\nseed: 1\n"
    smoke.write_text(text, encoding="utf-8")
    assert pipeline_profile("smoke").seed == 1
    smoke.write_text(text.replace("seed: 1", "seed: 7"), encoding="utf-8")
    assert pipeline_profile("smoke").seed == 7 and experiment_scale("tiny").run.seed == 7


def test_round_trip_through_json_is_the_same_typed_object() -> None:
    cfg = with_overrides(pipeline_profile("quick"), {"rsft.k": 6, "sft.material": ["facts", "easy"]})
    back = from_dict(PipelineConfig, json.loads(json.dumps(to_dict(cfg))))
    assert back == cfg and isinstance(back.rsft, RSFTOptions)
    run_cfg = RunConfig(model_ref="tiny:random", reward_preset="paper", pipeline=cfg, command=["kgreason", "run"])
    loaded = RunConfig.from_json({**run_cfg.to_dict(), "created": "now", "unknown_future_key": 1})
    assert loaded.pipeline == cfg and loaded.scoring_preset() == "kgreason"  # the pipeline's own preset
    assert RunConfig.from_json({"model_ref": "m", "rsft": {"options": {"reward_preset": "seed"}}}).scoring_preset() \
        == "seed"
    with pytest.raises(InputError, match="unknown RSFTOptions option"):
        from_dict(RSFTOptions, {"rounds": 2, "preset": "kgreason"})


def test_with_overrides_never_shares_nested_objects() -> None:
    base = pipeline_profile("quick")
    changed = with_overrides(base, {"sft.train.max_steps": 3})
    assert changed.sft.train.max_steps == 3 and base.sft.train.max_steps != 3


# --- registries extended from outside ----------------------------------------------------------------
PLUGIN = '''
from kgreason.kg.sources import register_kg_source
from kgreason.reward.presets import PresetResult, register_reward_preset
from kgreason.tasks.baselines import register_baseline


@register_reward_preset("strict_faithful", "1 for a right answer with a faithful trace, else 0")
def strict(ev, kg):
    return PresetResult(float(ev.correct and ev.faithful), 0.0)


@register_kg_source("synthkg", "synthkg:N, a typed random graph of about N edges (a test plugin)")
def synth(rest, seed):
    from kgreason.tasks.synthetic import synthetic_kg

    return synthetic_kg(int(rest), seed=seed)


@register_baseline("plugin_first_option", "always the first option (a test plugin)")
def first(item, ctx):
    return [1.0] + [0.0] * (len(item.labels) - 1)
'''


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A module outside the package, named by $KGREASON_PLUGINS; registries restored afterwards."""
    from kgreason.kg.sources import KG_SOURCES
    from kgreason.reward.presets import REWARD_PRESETS
    from kgreason.tasks.baselines import BASELINES

    saved = [(r, dict(r._entries)) for r in (KG_SOURCES, REWARD_PRESETS, BASELINES)]
    (tmp_path / "kgr_config_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("KGREASON_PLUGINS", "kgr_config_plugin")
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    yield tmp_path
    for reg, entries in saved:
        reg.clear()
        reg.update(entries)
    sys.modules.pop("kgr_config_plugin", None)


def test_a_reward_preset_a_kg_source_and_a_baseline_added_from_outside(plugin: Path, capsys) -> None:
    from kgreason.kg.sources import open_kg
    from kgreason.reward.presets import REWARD_PRESETS

    kg = open_kg("synthkg:3000", seed=1)
    assert 2500 <= len(kg.edges) <= 3500 and open_kg("synthkg:3000", seed=1).to_dict() == kg.to_dict()
    assert "strict_faithful" in REWARD_PRESETS
    # the CLI takes the plugin's names where it takes the built-in ones
    assert main(["kg", "import", "synthkg:3000", "--out", str(plugin / "kg.json")]) == 0
    assert main(["tasks", "generate", "--kg", "synthkg:3000", "--out", str(plugin / "data"), "--eval-size", "6",
                 "--easy-size", "6", "--hard-size", "0"]) == 0
    tasks = [json.loads(line) for line in (plugin / "data" / "eval.jsonl").read_text().splitlines()]
    completions = plugin / "c.jsonl"
    completions.write_text("".join(json.dumps({"task_id": t["id"], "text": f"TRACE: x\nANSWER: {t['answer_star']}"})
                                   + "\n" for t in tasks))
    assert main(["score", "--kg", str(plugin / "kg.json"), "--tasks", str(plugin / "data" / "eval.jsonl"),
                 "--completions", str(completions), "--reward-preset", "strict_faithful",
                 "--out", str(plugin / "s.jsonl")]) == 0
    rows = [json.loads(line) for line in (plugin / "s.jsonl").read_text().splitlines()]
    assert len(rows) == len(tasks) == 6 and all(r["correct"] for r in rows)
    assert all(r["preset"] == "strict_faithful" and r["total"] == 0.0 for r in rows), \
        "right letters without a faithful trace score 0 under the plugin's formula"
    capsys.readouterr()
    main(["tasks", "audit", str(plugin / "data" / "eval.jsonl"), "--kg", str(plugin / "kg.json"), "--json"])
    row = json.loads(capsys.readouterr().out)["shortcuts"]["plugin_first_option"]
    assert row["description"] == "always the first option (a test plugin)" and 0.0 <= row["accuracy"] <= 1.0


def test_unknown_registry_names_suggest_the_closest() -> None:
    from kgreason.kg.sources import open_kg

    with pytest.raises(SystemExit):
        main(["score", "--kg", "k", "--tasks", "t", "--completions", "c", "--reward-preset", "kgreasn"])
    with pytest.raises(InputError, match=r"unknown KG source 'bultin'; did you mean builtin"):
        open_kg("bultin:devops")
    assert len(open_kg("builtin:devops", seed=1).edges) > 500


# --- the import graph --------------------------------------------------------------------------------
def _import_graph() -> dict[str, set[str]]:
    mods = {}
    for p in (SRC / "kgreason").rglob("*.py"):
        name = ".".join(p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        mods[name] = p
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):  # lazy imports count too
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    target = f"{node.module}.{alias.name}"
                    target = target if target in mods else node.module
                    if target in mods and target != m:
                        graph[m].add(target)
            elif isinstance(node, ast.Import):
                graph[m] |= {a.name for a in node.names if a.name in mods and a.name != m}
    return graph


def test_no_import_circle_anywhere_in_the_package() -> None:
    graph = _import_graph()
    assert "kgreason.reward.presets" not in graph["kgreason.reward.evidence"]
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                raise AssertionError("import circle: " + " -> ".join(path[path.index(n):] + [n]))
            if n not in state:
                visit(n)
        path.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_kg_tasks_reward_and_config_never_import_torch() -> None:
    graph = _import_graph()
    light = [m for m in graph if m.split(".")[1:2] in (["kg"], ["tasks"], ["reward"]) or m in (
        "kgreason.config", "kgreason.options", "kgreason.registry", "kgreason.stats")]
    for m in light:
        text = (SRC / Path(*m.split("."))).with_suffix(".py")
        source = text.read_text(encoding="utf-8") if text.exists() else ""
        assert "import torch" not in source, m
        heavy = {d for d in graph[m] if d.split(".")[1:2] in (["train"], ["models"], ["sampling"], ["evaluate"])}
        assert not heavy, f"{m} imports {heavy}"


# --- renamed splits still train --------------------------------------------------------------------------
def test_renamed_splits_are_found_through_the_manifest(tmp_path: Path) -> None:
    from kgreason.tasks.build import data_layout
    from kgreason.train.rsft import load_pool
    from kgreason.train.sft import load_material

    assert main(["kg", "build", "--out", str(tmp_path / "kg.json")]) == 0
    assert main(["tasks", "generate", "--kg", str(tmp_path / "kg.json"), "--out", str(tmp_path / "d"),
                 "--eval-size", "6", "--eval-name", "heldout", "--easy-size", "6", "--easy-name", "short_q",
                 "--hard-size", "4", "--hard-name", "long_q"]) == 0
    layout = data_layout(tmp_path / "d")
    assert layout.files == {"facts": "facts.jsonl", "easy": "short_q.jsonl", "hard": "long_q.jsonl"}
    assert layout.held_out == ("heldout",)
    assert len(load_pool(tmp_path / "d", "hard")) == 4
    assert len(load_material(tmp_path / "d", SFTOptions(material=["easy"]))) == 6
    # and a pool file that holds held-out items (a renamed eval copied over it) is refused
    (tmp_path / "d" / "long_q.jsonl").write_text((tmp_path / "d" / "heldout.jsonl").read_text())
    with pytest.raises(InputError, match="holds held-out items"):
        load_pool(tmp_path / "d", "hard")


# Lowest first. A module may import its own layer and the layers below it, never one above: the
# data side (kg -> families -> tasks -> reward), the recipe (config: every stage's options, reward presets and
# phases by name), the run folder record, then the model side in pipeline order, and the commands
# that put it together on top. Lazy imports inside functions count: they run up the layers too.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("kgreason", "io", "registry", "yaml_lines", "options", "records", "stats", "console", "hardware", "memory",
     "phases", "argtypes"),
    ("kg",), ("families",), ("tasks",), ("reward",), ("config",), ("runs",), ("models",), ("sampling",), ("evaluate",),
    ("train",), ("pipeline",), ("experiments",), ("bench",), ("export",), ("serve",), ("cli", "schemas"),
)


def _layer_of(module: str) -> int:
    unit = module.split(".")[1] if "." in module else module
    for i, names in enumerate(LAYERS):
        if unit in names:
            return i
    raise AssertionError(f"{module}: in no layer of tests/test_config.py's LAYERS; place it there")


def test_imports_never_run_up_the_layers() -> None:
    graph = _import_graph()
    upward = sorted(f"{m} -> {n}" for m, deps in graph.items() for n in deps if _layer_of(n) > _layer_of(m))
    assert not upward, "imports that run up the layers:\n" + "\n".join(upward)


def test_no_source_file_is_ignored_by_git() -> None:
    """A module git ignores would be missing from a clean clone (src/kgreason/runs/ once matched
    the run folders' `runs/` pattern)."""
    import subprocess

    sources = [str(p.relative_to(SRC.parent)) for p in (SRC / "kgreason").rglob("*.py") if "__pycache__" not in p.parts]
    out = subprocess.run(["git", "check-ignore", "--no-index", *sources], cwd=SRC.parent, capture_output=True,
                         text=True)
    assert out.returncode in (0, 1), out.stderr  # 1: nothing ignored
    assert out.stdout.split() == [], "ignored by .gitignore: " + out.stdout
