"""The training phases in one table: what `kgreason run` makes, in order, and how each is run.

Every place that needs the list of phases reads it here: the pipeline's stages and table
(pipeline/stages.py), `--rl`'s choices (config.py), the experiment grid's arm kinds and their
dispatch (experiments/), which adapters `kgreason export model` takes (export/model.py), how
reports and the diagnosis name a phase (evaluate/diagnosis.py), the demo's phase order
(serve/data.py). A training method registers one `Phase`: its name (also its options section of
the run profile, its adapter folder and its eval folder), its label, the phase whose adapter it
continues, whether `--rl` may choose it, its training function and the curves an experiment report
averages over seeds. Torch-free: `runner` is a "module:function" path imported when the phase runs.

A phase's options class becomes its section of the run profile (config.py's PipelineConfig.<name>,
flags --<name>-*), its section of a run folder's config.json (RunConfig.<name>) and the flags of
`kgreason train <name>` (cli.py makes one command per phase); the built-in phases' classes live in
config.py. A plugin's phase joins the order, the labels, the train commands, export and the
experiment's arm kinds, and is refused with a clear message where it needs a run-profile section
(sections are made when config.py is imported, before plugins load). Lists taken at import time
(`--rl` choices, the pipeline's stages) hold the built-in phases only.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kgreason.registry import Registry


@dataclass(frozen=True)
class Phase:
    name: str  # the options section (PipelineConfig.<name>), adapters/<name>, eval/<name>, Episode.phase
    label: str  # how reports, the headline and the diagnosis name it
    trains: bool = True  # an adapter comes out of it (the base model's phase trains nothing)
    starts_from: str | None = None  # the phase whose adapter it continues (the KG-reward phases: sft)
    rl: bool = False  # a KG-reward phase: `kgreason run --rl NAME` runs it after SFT
    runner: str | None = None  # "module:function": run(run, model_ref, data_dir, options, **kw) -> info
    # "module:Class": the phase's options dataclass. It becomes the phase's section of the run profile
    # (PipelineConfig.<name>, flags --<name>-*), of a run folder's config.json (RunConfig.<name>) and
    # the flags of `kgreason train <name>`.
    options: str | None = None
    help: str = ""  # what `kgreason train <name> --help` says the phase does
    # (curve name, x key, y key) of metrics.jsonl records with "phase" == name, averaged over seeds
    # in experiment reports (experiments/report.py)
    curves: tuple[tuple[str, str, str], ...] = ()

    def run_function(self) -> Callable[..., dict]:
        if self.runner is None:
            raise ValueError(f"phase {self.name} trains nothing")
        return _resolve(self.runner)

    def options_class(self) -> type:
        if self.options is None:
            raise ValueError(f"phase {self.name} has no options")
        return _resolve(self.options)


def _resolve(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


PHASES: Registry[Phase] = Registry("training phase")


def register_phase(phase: Phase) -> Phase:
    """Add a phase; the pipeline order is the registration order (a plugin's phase comes last)."""
    return PHASES.add(phase.name, phase)


register_phase(Phase("base", "the base model", trains=False))
register_phase(Phase(
    "sft", "SFT", runner="kgreason.train.sft:run_sft", options="kgreason.config:SFTOptions",
    curves=(("sft_loss", "step", "loss"),),
    help="Supervised fine-tuning (TRL SFTTrainer, LoRA, loss on the completion only) on facts, easy questions "
         "and/or the hard training pool."))
register_phase(Phase(
    "rsft", "RSFT", starts_from="sft", rl=True, runner="kgreason.train.rsft:run_rsft",
    options="kgreason.config:RSFTOptions",
    curves=(("rsft_pass_rate", "round", "mean_pass_rate"), ("rsft_reward", "round", "mean_reward")),
    help="Rejection-sampling fine-tuning: sample k answers per question, score them with the KG reward, keep the "
         "best correct well-formed ones, fine-tune on them; R rounds."))
register_phase(Phase(
    "grpo", "GRPO", starts_from="sft", rl=True, runner="kgreason.train.grpo:run_grpo",
    options="kgreason.config:GRPOOptions", curves=(("grpo_reward", "step", "reward"),),
    help="GRPO (TRL GRPOTrainer) with the KG reward as a Python reward function; LoRA, KL coefficient and group "
         "size as options; vLLM generation on a GPU when installed."))
register_phase(Phase(
    "dpo", "DPO", starts_from="sft", rl=True, runner="kgreason.train.dpo:run_dpo",
    options="kgreason.config:DPOOptions", curves=(("dpo_loss", "step", "loss"),),
    help="DPO (TRL DPOTrainer) on KG-verified pairs: sample k answers per question, chosen = correct with a "
         "faithful trace, rejected = wrong or unfaithful, as the KG reward scores them."))


# plugins=False: for lists taken at import time (config.py's --rl choices), where importing a
# plugin that imports kgreason would be circular.
def phase_order(plugins: bool = True) -> tuple[str, ...]:
    """Every phase, in the order `kgreason run` makes them (base, sft, rsft, grpo)."""
    return tuple(PHASES.names(plugins))


def training_phases(plugins: bool = True) -> tuple[str, ...]:
    return tuple(p.name for p in PHASES.values(plugins) if p.trains)


def rl_phases(plugins: bool = True) -> tuple[str, ...]:
    return tuple(p.name for p in PHASES.values(plugins) if p.rl)


def get_phase(name: str) -> Phase:
    return PHASES.get(name)


def phase_labels(plugins: bool = True) -> dict[str, str]:
    return {p.name: p.label for p in PHASES.values(plugins)}


def phase_options(config: Any, name: str) -> Any:
    """The options section `name` of a PipelineConfig (InputError when the run profile has none)."""
    from kgreason.io import InputError

    options = getattr(config, name, None)
    if options is None or not hasattr(options, "train"):
        raise InputError(f"training phase {name!r} has no options section in the run profile "
                         "(kgreason/config.py's PipelineConfig): it cannot run in `kgreason run` or an experiment")
    return options


def run_phase(name: str, run: Any, model_ref: str, data_dir: Any, options: Any, *, init_adapter: Any = None,
              kg: Any = None, held: Any = None) -> dict:
    """Train phase `name` in `run` (skipped when done; every runner resumes itself): SFT from the base
    model, a phase with `starts_from` from `init_adapter` with the graph `kg` as its reward."""
    phase = get_phase(name)
    fn = phase.run_function()
    if phase.starts_from is None:
        return fn(run, model_ref, data_dir, options, phase=name, held=held)
    return fn(run, model_ref, data_dir, options, init_adapter=init_adapter, phase=name, kg=kg, held=held)
