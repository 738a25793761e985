"""One table of training phases (kgreason/phases.py): every consumer reads its list from there."""

from __future__ import annotations

import pytest

from kgreason.config import RL_PHASES, PipelineConfig
from kgreason.phases import PHASES, Phase, get_phase, phase_order, register_phase, rl_phases, training_phases


def test_the_table_in_pipeline_order() -> None:
    assert phase_order() == ("base", "sft", "rsft", "grpo", "dpo")
    assert training_phases() == ("sft", "rsft", "grpo", "dpo") and rl_phases() == ("rsft", "grpo", "dpo") == RL_PHASES
    assert get_phase("grpo").starts_from == "sft" and get_phase("sft").starts_from is None
    for name in training_phases():  # each has its options section of the run profile and a runner that imports
        assert isinstance(getattr(PipelineConfig(), name).train.learning_rate, float)
        assert callable(get_phase(name).run_function())
    with pytest.raises(ValueError, match="trains nothing"):
        get_phase("base").run_function()


def test_consumers_read_the_table() -> None:
    from kgreason.evaluate.diagnosis import phase_name
    from kgreason.export.model import TRAIN_PHASES
    from kgreason.pipeline.stages import MODEL_PHASES, MODEL_STAGES
    from kgreason.serve.data import pipeline_order

    assert phase_order() == MODEL_PHASES and training_phases() == TRAIN_PHASES
    assert set(MODEL_STAGES) == {"base_eval", *training_phases(), *(f"{p}_eval" for p in training_phases())}
    assert pipeline_order(["grpo", "rsft_eval", "base_eval", "sft", "zzz"]) == ["base_eval", "sft", "rsft_eval", "grpo", "zzz"]
    assert phase_name("rsft_eval") == "RSFT" and phase_name("base") == "the base model"


def test_a_registered_phase_joins_the_order_the_labels_and_the_experiment_kinds(tmp_path) -> None:
    from kgreason.evaluate.diagnosis import phase_name
    from kgreason.experiments.arms import load_grid

    saved = dict(PHASES.items())
    try:
        register_phase(Phase("kto", "KTO", starts_from="sft", runner="kgreason.train.sft:run_sft"))
        assert phase_order()[-1] == "kto" and "kto" in training_phases() and phase_name("kto") == "KTO"
        grid = tmp_path / "g.yaml"
        grid.write_text("question: q\narms:\n  - name: sft\n    kind: sft\n  - name: kto_arm\n    kind: kto\n")
        arm = load_grid(str(grid)).arm("kto_arm")
        assert arm.needs_sft and arm.compare_to == "sft"
    finally:
        PHASES.clear()
        PHASES.update(saved)
    assert "kto" not in phase_order()


def test_each_training_phase_gets_its_command_its_run_profile_section_and_its_config_json_section() -> None:
    from kgreason.cli import build_parser
    from kgreason.config import PIPELINE_DERIVED, RunConfig

    parser = build_parser()
    for name in training_phases():
        phase = get_phase(name)
        args = parser.parse_args(["train", name, "--run-dir", "r", "--data", "d"])
        assert args.phase == name and isinstance(args, object)
        assert isinstance(getattr(PipelineConfig(), name), phase.options_class())
        assert f"{name}.train.seed" in PIPELINE_DERIVED
        assert RunConfig.from_json({name: {"model": "m"}}).to_dict()[name] == {"model": "m"}
    dpo = parser.parse_args(["train", "dpo", "--run-dir", "r", "--data", "d", "--beta", "0.3"])
    assert dpo.init_adapter == "auto" and dpo.beta == 0.3
