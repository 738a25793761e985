"""Every option of kgreason's training, evaluation and experiment commands, declared once.

Each field carries its default and its help; kgreason/options.py turns them into the flags of
`kgreason run`, `train sft|rsft|grpo|dpo`, `eval` and `experiment GRID`, into the keys of their
`--config FILE.yaml`, and reads a run folder's config.json back into these same classes. The
named run profiles (quick, full, smoke) and experiment scales (tiny, quick, full) are small YAML
override files in kgreason/profiles/ (nanoGPT style: a recipe is a diff from the defaults).

Three words, three things:
* reward preset: the reward formula (`--reward-preset kgreason|seed|paper|<plugin>`);
* run profile: a named set of option values for `kgreason run` (`--profile quick`);
* experiment scale: the same for an experiment, plus its seeds (`--scale quick`).

Torch-free: the command line imports this module to build its parser.
"""

from __future__ import annotations

import copy
import functools
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kgreason import argtypes as at
from kgreason.io import InputError
from kgreason.memory import ALLOCATORS
from kgreason.options import option
from kgreason.phases import PHASES, rl_phases
from kgreason.tasks.defaults import DataOptions  # the run profile's data section

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"
BUNDLED_MODEL = "bundled:smollm2-135m"
MATERIALS = ("facts", "easy", "hard")
TRACE_STYLES = ("full", "short", "mix")
DISTRIBUTIONS = ("easy", "hard", "mixed", "curriculum")
GRPO_DISTRIBUTIONS = ("easy", "hard", "mixed")
GRPO_GENERATION = ("kgreason", "trl")
RL_PHASES = rl_phases(plugins=False)  # the KG-reward phases of kgreason/phases.py


def _reward_presets() -> list[str]:
    from kgreason.reward.presets import REWARD_PRESETS

    return REWARD_PRESETS.names()


# --- training --------------------------------------------------------------------------------------
@dataclass
class LoraOptions:
    """LoRA shape: rank 16 on every linear layer, a common choice for 100M-1B models."""

    r: int = option(16, flag="lora-r", parse=at.positive_int, help="LoRA rank")
    alpha: int | None = option(None, flag="lora-alpha", parse=at.positive_int,
                               help="LoRA alpha (default: 2 x rank)")
    # No dropout by default: on CPU its mask sampling and multiply were ~20% of an SFT step's time
    # (torch profiler, SmolLM2-135M), for little regularisation benefit at these data sizes.
    dropout: float = option(0.0, flag="lora-dropout", parse=at.unit_interval, help="LoRA dropout")
    target_modules: str = option("all-linear", flag="lora-targets", help="layers LoRA adapts (PEFT target_modules)")

    @property
    def scale_alpha(self) -> int:
        return self.alpha if self.alpha is not None else 2 * self.r

    def peft_config(self) -> Any:
        from peft import LoraConfig

        return LoraConfig(r=self.r, lora_alpha=self.scale_alpha, lora_dropout=self.dropout,
                          target_modules=self.target_modules, task_type="CAUSAL_LM")


@dataclass
class TrainOptions:
    """Optimisation settings of every trainer (a TrainingArguments subset)."""

    max_steps: int = option(300, parse=int, help="optimizer steps (<= 0: --epochs passes over the data instead)")
    epochs: float = option(1.0, parse=at.positive_float, help="passes over the data when --max-steps <= 0")
    learning_rate: float = option(2e-4, parse=at.positive_float, help="peak learning rate (cosine schedule; GRPO: linear decay)")
    batch_size: int = option(8, parse=at.positive_int, help="examples per device per step")
    grad_accum: int = option(1, parse=at.positive_int, help="gradient accumulation steps")
    warmup_ratio: float = option(0.05, parse=at.unit_interval, help="share of the steps spent warming up (not GRPO's)")
    weight_decay: float = option(0.0, parse=at.non_negative_float, help="AdamW weight decay")
    max_length: int = option(512, parse=at.positive_int, help="sequence cap in tokens (prompt + completion)")
    dtype: str = option("auto", choices=at.DTYPE_CHOICES,
                        help="training precision (auto: bf16 where the CPU/GPU runs it natively, else fp32)")
    seed: int = option(0, help="training seed (data order, LoRA init, sampling)")
    save_steps: int = option(50, parse=at.positive_int, help="checkpoint every N steps (the resume points)")
    logging_steps: int = option(10, parse=at.positive_int, help="log loss every N steps")
    # Reward hacking shows as a training reward that rises while the task gets worse (TRL #2959
    # asks for exactly this check); the probe costs one greedy pass over probe_items items.
    probe_every: int = option(0, parse=at.non_negative_int,
                              help="every N optimizer steps (and before the first), answer a fixed subset of the "
                                   "held-out eval items greedily and log probe/accuracy and probe/faithful beside "
                                   "the reward (0: off; GRPO and RSFT)")
    probe_items: int = option(32, parse=at.positive_int, help="held-out items the probe answers (a fixed seeded subset)")
    gradient_checkpointing: bool = option(False, help="recompute activations: less memory, ~30% more compute")
    # Activations grow with the tokens of one pass. Measured on the quick SFT material (2-core CPU,
    # SmolLM2-135M, bf16, jemalloc, 16 steps): 1024 tokens 79 s and 2.0 GB peak, 1536 71 s and
    # 2.4 GB, 2048 73 s and 2.7 GB. In the whole quick run 1536 peaked at 2.7 GB (SFT, 100 steps)
    # and 2.75 GB (RSFT), over the 2.5 GB the quick profile is held to, so the default is 1024.
    micro_batch_tokens: int = option(1024, parse=at.positive_int,
                                     help="tokens per forward pass: each step's examples are cut into passes of at "
                                          "most this many (rows x padded width) and accumulated into the same "
                                          "update; lower: less memory")
    # Eager LoRA training on CPU spends ~43% of a step in the elementwise work between the matmuls
    # (LoRA's scale and add, RMSNorm's fp32 round trip, RoPE, SiLU); inductor fuses it. Measured on
    # the bench's SFT material (2-core CPU, SmolLM2-135M, bf16, jemalloc; `kgreason bench train`):
    # 1.1-1.3x tokens/s, after compiling 4 graph variants per process (13 s with inductor's disk
    # cache warm, ~40 s cold). Off by default: on open-book examples it measured 1.10x, so the quick
    # profile's ~400 s of SFT would save about what a fresh process spends compiling.
    compile_layers: bool = option(False, help="torch.compile each decoder layer while training (SFT and RSFT, not "
                                              "GRPO; needs a C++ compiler on CPU): faster steps after a short compile")
    lora: LoraOptions = option(default_factory=LoraOptions, flatten=True, help="LoRA shape")


@dataclass
class SFTOptions:
    """Supervised fine-tuning: what to train on and how the reference traces look."""

    material: list[str] = option(default_factory=lambda: ["facts", "easy"], choices=MATERIALS,
                                 help="comma list: facts (one statement per KG edge), easy (1-3 hop questions), "
                                      "hard (the 4-5 hop training pool, never the eval file)")
    trace_style: str = option("full", choices=TRACE_STYLES,
                              help="reference traces: the full chain, the key hops only, or a mix of both")
    short_share: float = option(0.5, parse=at.unit_interval, help="with --trace-style mix: share of short traces")
    max_examples: int = option(0, parse=at.non_negative_int,
                               help="per material, a seeded subset (0: all); for facts, of the (head, relation) "
                                    "examples, each with all its tails")
    train: TrainOptions = option(default_factory=TrainOptions, flatten=True, help="optimisation")

    def validate(self) -> None:
        bad = [m for m in self.material if m not in MATERIALS]
        if bad or not self.material:
            raise InputError(f"--material: expected a comma list of {', '.join(MATERIALS)}, got {self.material!r}")
        if self.trace_style not in TRACE_STYLES:
            raise InputError(f"--trace-style: expected one of {', '.join(TRACE_STYLES)}, got {self.trace_style!r}")
        if not 0.0 <= self.short_share <= 1.0:
            raise InputError(f"--short-share: expected a number in [0, 1], got {self.short_share}")


def _rsft_train_defaults() -> TrainOptions:
    # A round trains on its winners only (tens to hundreds of examples): a fixed pass count, not steps.
    return TrainOptions(max_steps=0, epochs=2.0, learning_rate=1e-4, save_steps=25)


@dataclass
class RSFTOptions:
    """Rejection-sampling fine-tuning (expert iteration): sample, score with the KG, keep, fine-tune."""

    rounds: int = option(2, parse=at.positive_int, help="expert-iteration rounds R")
    k: int = option(8, short="-k", parse=at.positive_int, help="samples per question")
    temperature: float = option(0.7, parse=at.non_negative_float, help="sampling temperature")
    top_p: float = option(1.0, parse=at.probability, help="nucleus sampling mass")
    max_new_tokens: int = option(160, parse=at.positive_int, help="token cap per sample")
    keep: int = option(1, parse=at.positive_int, help="winners kept per question (best N by reward)")
    distribution: str = option("easy", choices=DISTRIBUTIONS,
                               help="training questions: easy (1-3 hops), hard (the 4-5 hop training pool, never "
                                    "the eval file), mixed (half each), curriculum (easy rounds, then hard rounds)")
    easy_rounds: int = option(0, parse=at.non_negative_int, help="curriculum: easy rounds first (0: half, rounded up)")
    questions: int = option(200, parse=at.non_negative_int, help="questions per round (0: the whole pool)")
    frontier: bool = option(False, help="keep only questions whose pass rate over k is strictly between 0 and 1")
    faithful_only: bool = option(False, help="winners must also have a faithful trace")
    reward_preset: str = option("kgreason", choices=_reward_presets, help="reward formula (docs/reward.md)")
    backend: str = option("auto", choices=at.BACKEND_CHOICES,
                          help="sampling backend (auto: vllm when installed with a GPU, else hf; openvino: OpenVINO "
                               "GenAI on the CPU, by name only)")
    chunk: int = option(16, parse=at.positive_int, help="questions per sampling call (saved after each)")
    # Each row holds a KV cache for its prompt and answer (~17 MB for an open-book prompt and 128
    # new tokens with SmolLM2-135M); measured on 64 eval prompts: 64 rows 30.2 s and +1.7 GB, 32
    # rows 33.5 s and +1.2 GB, 16 rows 39.3 s and +0.8 GB. Sampled answers depend a little on it too.
    sample_rows: int = option(64, parse=at.positive_int,
                              help="rows (question x sample) decoded together on the hf backend: fewer use less "
                                   "memory and decode slower")
    train: TrainOptions = option(default_factory=_rsft_train_defaults, flatten=True, help="optimisation")

    def validate(self) -> None:
        if self.distribution not in DISTRIBUTIONS:
            raise InputError(f"--distribution: expected one of {', '.join(DISTRIBUTIONS)}, got {self.distribution!r}")
        for name in ("rounds", "k", "keep", "chunk"):
            if getattr(self, name) < 1:
                raise InputError(f"--{name}: must be at least 1, got {getattr(self, name)}")
        if self.questions < 0:
            raise InputError(f"--questions: must be >= 0, got {self.questions}")

    def pool_for_round(self, round_index: int) -> str:
        """Which pool round `round_index` (1-based) draws from: easy, hard or mixed."""
        if self.distribution != "curriculum":
            return self.distribution
        easy = self.easy_rounds or (self.rounds + 1) // 2
        return "easy" if round_index <= easy else "hard"


def _grpo_train_defaults() -> TrainOptions:
    return TrainOptions(max_steps=100, learning_rate=2e-5, save_steps=25, logging_steps=5)


@dataclass
class GRPOOptions:
    """GRPO (TRL GRPOTrainer) with the KG reward as a Python reward function."""

    distribution: str = option("easy", choices=GRPO_DISTRIBUTIONS, help="training questions")
    questions: int = option(200, parse=at.non_negative_int, help="prompts in the training set (0: the whole pool)")
    num_generations: int = option(4, parse=at.at_least(2),
                                  help="group size: completions per prompt, compared with each other")
    # TRL's reference for a LoRA policy is the same model with the adapter switched off: continuing an
    # SFT adapter, that is the model before SFT, which cannot answer; so no KL term unless asked for
    beta: float = option(0.0, parse=at.non_negative_float,
                         help="KL coefficient against the model with the LoRA adapter switched off: the base "
                              "model, not the SFT model, when GRPO continues an SFT adapter (0: none)")
    temperature: float = option(0.7, parse=at.non_negative_float, help="sampling temperature")
    max_completion_length: int = option(160, flag="max-new-tokens", parse=at.positive_int,
                                        help="max completion length in tokens")
    reward_preset: str = option("kgreason", choices=_reward_presets, help="reward formula (docs/reward.md)")
    generation: str = option("kgreason", choices=GRPO_GENERATION,
                             help="who samples the groups without vLLM: kgreason (its batched sampler, through "
                                  "TRL's rollout_func) or trl (transformers' generate, TRL's stock path)")
    use_vllm: str = option("auto", choices=("auto", "yes", "no"),
                           help="generate with vLLM (colocated) when installed and a GPU is present")
    share_prompt: bool = option(True, help="in the update, run each group's prompt once and share it between "
                                           "the group's completions (kgreason.train.grpo_prefix): TRL's log-"
                                           "probabilities and gradients on ~1/3 of the tokens; off: TRL's own path")
    train: TrainOptions = option(default_factory=_grpo_train_defaults, flatten=True, help="optimisation")

    def validate(self) -> None:
        if self.distribution not in GRPO_DISTRIBUTIONS:
            raise InputError(f"--distribution: expected easy, hard or mixed, got {self.distribution!r}")
        if self.num_generations < 2:
            raise InputError("--num-generations: GRPO compares completions within a group; use at least 2")
        if self.train.batch_size % self.num_generations:
            raise InputError(f"--batch-size ({self.train.batch_size}) must be a multiple of --num-generations "
                             f"({self.num_generations}): each step holds whole groups")


def _dpo_train_defaults() -> TrainOptions:
    # Tens to hundreds of pairs: a fixed pass count, as for RSFT's winners. 8 pairs an update, 2 a
    # pass: TRL scores full-vocabulary log-probabilities of chosen, rejected and the reference, and
    # 8 pairs a pass peaked at 23.6 GB RSS on the quick run's samples (docs/learning.md).
    return TrainOptions(max_steps=0, epochs=2.0, learning_rate=1e-4, batch_size=2, grad_accum=4, save_steps=10,
                        logging_steps=1)


@dataclass
class DPOOptions:
    """DPO (TRL DPOTrainer) on pairs the KG verifies: from k samples per question, chosen = correct and
    faithful, rejected = wrong or unfaithful; the reference is the adapter it starts from (the SFT model)."""

    distribution: str = option("hard", choices=GRPO_DISTRIBUTIONS, help="questions sampled for pairs")
    questions: int = option(128, parse=at.non_negative_int, help="questions sampled (0: the whole pool)")
    k: int = option(4, parse=at.positive_int, help="samples per question")
    temperature: float = option(0.7, parse=at.non_negative_float, help="sampling temperature")
    top_p: float = option(1.0, parse=at.probability, help="nucleus sampling mass")
    max_new_tokens: int = option(128, parse=at.positive_int, help="token cap per sample")
    pairs: int = option(1, parse=at.positive_int, help="pairs kept per question (best chosen x worst rejected first)")
    beta: float = option(0.1, parse=at.non_negative_float,
                         help="DPO's beta: how far from the reference (the starting adapter) the policy may move")
    reward_preset: str = option("kgreason", choices=_reward_presets,
                                help="reward formula that ranks the samples of a question (docs/reward.md)")
    backend: str = option("auto", choices=at.BACKEND_CHOICES, help="sampling backend (as RSFT's)")
    chunk: int = option(16, parse=at.positive_int, help="questions per sampling call (saved after each)")
    sample_rows: int = option(64, parse=at.positive_int, help="rows decoded together on the hf backend")
    train: TrainOptions = option(default_factory=_dpo_train_defaults, flatten=True, help="optimisation")

    def validate(self) -> None:
        if self.distribution not in GRPO_DISTRIBUTIONS:
            raise InputError(f"--distribution: expected easy, hard or mixed, got {self.distribution!r}")
        if self.k < 2:
            raise InputError("-k: a pair needs two samples of one question; use at least 2")


# --- evaluation ------------------------------------------------------------------------------------
@dataclass
class EvalSettings:
    """How a model is evaluated: greedy answers scored by the KG reward, and the extra passes."""

    max_items: int = option(0, parse=at.non_negative_int, help="a seeded random subset of this many items (0: all)")
    max_new_tokens: int = option(192, parse=at.positive_int, help="generation budget per answer")
    # Greedy answers in bf16 depend on which prompts share a batch: the quick profile's SFT model
    # scored 60.7% at 64 rows and 56.0% at 32 on the same 150 items (same adapter, byte for byte).
    # Compare evaluations only at the same batch size.
    batch_size: int = option(64, parse=at.positive_int,
                             help="items decoded together (hf backend), also the items saved per chunk: fewer use "
                                  "less memory (~17 MB an item) and decode slower; bf16 answers shift a little "
                                  "with it, so compare evaluations at the same value")
    reward_preset: str = option("kgreason", choices=_reward_presets, help="reward formula to score with")
    backend: str = option("auto", choices=at.BACKEND_CHOICES,
                          help="sampling backend (auto: vllm when installed with a GPU, else hf; openvino: OpenVINO "
                               "GenAI on the CPU, by name only)")
    shuffle: bool = option(True, help="also answer with permuted options (doubles the time)")
    drift: bool = option(True, help="KL from the base model (an extra forward pass per item)")
    references: bool = option(True, help="shortcut baselines and the KG oracle on the same items (cheap)")
    plots: bool = option(True, help="PNG plots beside report.md")
    seed: int = option(0, help="seed of the item subset, the option shuffle and the bootstrap")
    n_resamples: int = option(2000, flag="resamples", parse=at.positive_int, help="bootstrap resamples per interval")


# --- one section per training phase --------------------------------------------------------------------
def _options_class(phase: Any) -> type:
    # The built-in phases' options are the classes above: this module is still being imported
    # when the sections are made, so they are read from its namespace, not imported again.
    module, _, name = phase.options.partition(":")
    return globals()[name] if module == __name__ else phase.options_class()


# phase name -> its options class, in the pipeline's order (kgreason/phases.py: the built-in phases)
PHASE_SECTIONS: dict[str, type] = {p.name: _options_class(p) for p in PHASES.values(plugins=False)
                                   if p.trains and p.options is not None}


def _phase_sections(kind: str) -> Any:
    """Class decorator (before @dataclass): a field per training phase, named after it. `options`:
    the phase's options (PipelineConfig: a run profile's `sft:`, `rsft:`, ... and flags --sft-*, ...);
    `record`: what a `train <phase>` command wrote (RunConfig, a plain dict)."""
    def add(cls: type) -> type:
        for name, options_cls in PHASE_SECTIONS.items():
            if kind == "options":
                cls.__annotations__[name] = options_cls
                setattr(cls, name, option(default_factory=options_cls, prefix=name, help=PHASES.get(name).label))
            else:
                cls.__annotations__[name] = dict | None
                setattr(cls, name, None)
        return cls
    return add


# --- kgreason run ------------------------------------------------------------------------------------
@dataclass
@_phase_sections("options")
class PipelineConfig:
    """`kgreason run`: data -> base eval -> SFT -> eval -> RSFT or GRPO -> eval. Also one arm-seed of an experiment."""

    profile: str = option("quick", help="the run profile these values started from", cli=False)
    model: str = option(BUNDLED_MODEL, metavar="REF",
                        help="base model: bundled:smollm2-135m, tiny:random, a Hugging Face folder or a .gguf file")
    seed: int = option(0, help="training, sampling and evaluation seed (the data has --data-seed)")
    reward_preset: str = option("kgreason", choices=_reward_presets,
                                help="reward formula of RSFT/GRPO and of every evaluation (docs/reward.md)")
    data: DataOptions = option(default_factory=DataOptions, flatten=True, help="data")
    eval: EvalSettings = option(default_factory=lambda: EvalSettings(shuffle=False, drift=False, max_new_tokens=160),
                                prefix="eval", help="held-out evaluation of each phase")
    stage_processes: bool = option(True, help="run each model stage (evaluations, SFT, RSFT) in a process of its own, "
                                              "so memory returns to the system between stages (~5 s start-up each)")
    allocator: str = option("auto", choices=ALLOCATORS,
                            help="memory allocator of those processes: jemalloc (a system library, Debian's "
                                 "libjemalloc2) keeps memory bounded and trains faster on CPU, but samples ~12% "
                                 "slower; auto uses it where installed, system never")
    # The untrained model never writes the answer format, so a short budget shows that as well as a
    # long one and saves minutes on a CPU (0: the same budget as the other phases).
    base_eval_max_new_tokens: int = option(0, parse=at.non_negative_int,
                                           help="generation budget of the base model's evaluation (0: --eval-max-new-tokens)")
    rl: str = option("rsft", choices=RL_PHASES,
                     help="the KG-reward phase after SFT: rsft (sample k, keep correct faithful answers, fine-tune "
                          "on them) or grpo (TRL's GRPOTrainer with the KG reward; the --grpo-* options)")
    # then one options section per training phase (sft, rsft, grpo, dpo): see _phase_sections

    def seeded(self) -> PipelineConfig:
        """Every stage's seed follows `seed` (the data keeps its own), every stage's reward preset
        follows `reward_preset`."""
        self.eval.seed, self.eval.reward_preset = self.seed, self.reward_preset
        for name in PHASE_SECTIONS:
            section = getattr(self, name)
            section.train.seed = self.seed
            if hasattr(section, "reward_preset"):
                section.reward_preset = self.reward_preset
        return self


# Values that follow PipelineConfig.seed and .reward_preset: not flags or YAML keys of their own.
PIPELINE_DERIVED = ("eval.seed", *(f"{name}.train.seed" for name in PHASE_SECTIONS), "eval.reward_preset",
                    *(f"{name}.reward_preset" for name, cls in PHASE_SECTIONS.items()
                      if "reward_preset" in cls.__dataclass_fields__))


def profile_names() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml") if not p.stem.startswith("scale-"))


def pipeline_profile(name: str) -> PipelineConfig:
    """The defaults with the named profile's file laid over them (kgreason/profiles/NAME.yaml)."""
    path = PROFILES_DIR / f"{name}.yaml"
    if name.startswith("scale-") or not path.is_file():
        raise InputError(f"--profile: expected one of {', '.join(profile_names())}, got {name!r}")
    return copy.deepcopy(_pipeline_profile(name, _profiles_stamp()))


def _profiles_stamp() -> tuple[str, tuple[tuple[str, str], ...]]:
    """The profiles folder and a digest of each file in it: an edited profile is read again, even
    an edit of the same size within the file system's clock tick (reading ~15 small files and
    hashing them costs microseconds; parsing and checking them, milliseconds)."""
    files = sorted(PROFILES_DIR.glob("*.yaml"))
    return str(PROFILES_DIR), tuple((p.name, hashlib.blake2b(p.read_bytes(), digest_size=16).hexdigest()) for p in files)


# Every parser build lays out each profile's and scale's values as flag defaults (15 YAML files
# read and checked, a third of a CLI call's start-up); callers get deep copies to change freely.
@functools.lru_cache(maxsize=32)
def _pipeline_profile(name: str, stamp: tuple) -> PipelineConfig:  # stamp: part of the cache key only
    from kgreason.options import read_config_file, with_overrides

    cfg = with_overrides(PipelineConfig(), read_config_file(PROFILES_DIR / f"{name}.yaml", PipelineConfig,
                                                            PIPELINE_DERIVED))
    cfg.profile = name
    return cfg.seeded()


# --- kgreason experiment distribution ------------------------------------------------------------
@dataclass
class ExperimentConfig:
    """`kgreason experiment GRID`: the grid's arms x seeds of one recipe, scored on one held-out set."""

    scale: str = option("quick", help="the experiment scale these values started from", cli=False)
    seeds: int = option(3, parse=at.positive_int, help="seeds per trained arm")
    arms: list[str] = option(default_factory=list,
                             help="comma list of the grid's arms to run (empty: all; RSFT/GRPO arms bring the SFT "
                                  "arm they start from and the arm they are compared to)")
    share: bool = option(True, help="copy a finished arm-seed from an experiment folder beside this one instead of "
                                    "training it again, when its data files, resolved recipe and starting SFT "
                                    "adapter are identical (kgreason/experiments/share.py; arm.json names the source)")
    run: PipelineConfig = option(default_factory=PipelineConfig, flatten=True,
                                 help="the recipe every arm-seed follows (a run profile)")


EXPERIMENT_DERIVED = tuple(f"run.{p}" for p in PIPELINE_DERIVED) + ("run.seed", "run.profile")  # seed: per arm


def scale_names() -> list[str]:
    return sorted(p.stem.removeprefix("scale-") for p in PROFILES_DIR.glob("scale-*.yaml"))


def experiment_scale(name: str) -> ExperimentConfig:
    """An experiment scale: kgreason/profiles/scale-NAME.yaml, whose `profile:` names the run profile
    its arm-seeds start from, with the scale's own overrides laid over it."""
    path = PROFILES_DIR / f"scale-{name}.yaml"
    if not path.is_file():
        raise InputError(f"--scale: expected one of {', '.join(scale_names())}, got {name!r}")
    return copy.deepcopy(_experiment_scale(name, _profiles_stamp()))


@functools.lru_cache(maxsize=32)
def _experiment_scale(name: str, stamp: tuple) -> ExperimentConfig:  # stamp: part of the cache key only
    import yaml

    from kgreason.options import read_config_file, with_overrides

    path = PROFILES_DIR / f"scale-{name}.yaml"
    profile = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("run", {}).get("profile", "quick")
    base = ExperimentConfig(run=pipeline_profile(profile))
    cfg = with_overrides(base, read_config_file(path, ExperimentConfig, EXPERIMENT_DERIVED[:-1]))
    cfg.scale = name
    return cfg


# --- a run folder's config.json ----------------------------------------------------------------------
@dataclass
@_phase_sections("record")
class RunConfig:
    """config.json of a run folder, written by `kgreason run`, `train *` and experiment arm-seeds and
    read back (the demo included) as this one record; docs/schemas.md.

    `pipeline` is the whole recipe of `kgreason run` and of experiment arm-seeds; the `train *`
    commands each own one section (`sft`, `rsft`, `grpo`, `dpo`: model, data folder, that phase's options),
    so several of them can share a folder."""

    model_ref: str = ""
    reward_preset: str = "kgreason"  # what the run's answers were scored with
    dataset_seed: int | None = None
    pipeline: PipelineConfig | None = None
    experiment: dict | None = None  # an experiment arm-seed: experiment, arm, seed, scale
    command: list[str] = field(default_factory=list)
    # written by Run.create_or_resume
    run: str | None = None
    created: str | None = None
    git_revision: str | None = None
    git_dirty: bool | None = None
    # then one section per training phase (`sft`, `rsft`, ...): what `train <phase>` wrote

    def to_dict(self) -> dict:
        from kgreason.options import to_dict

        return {k: v for k, v in to_dict(self).items() if v is not None}

    @classmethod
    def from_json(cls, data: Any, source: str = "config.json") -> RunConfig:
        """The typed record from a config.json object. Keys a newer or older kgreason wrote and this
        one does not know are ignored (a demo must still open old run folders); a `pipeline` section
        that no longer reads leaves `pipeline` None."""
        from kgreason.options import from_dict

        if not isinstance(data, dict):
            raise InputError(f"{source}: expected a JSON object, got {type(data).__name__}")
        known = {f for f in cls.__dataclass_fields__}
        kept = {k: v for k, v in data.items() if k in known and k != "pipeline"}
        cfg = from_dict(cls, kept, source)
        if isinstance(data.get("pipeline"), dict):
            try:
                cfg.pipeline = from_dict(PipelineConfig, data["pipeline"], f"{source}: pipeline")
            except (InputError, TypeError):
                cfg.pipeline = None
        return cfg

    def scoring_preset(self) -> str:
        """The reward preset the run's RSFT/GRPO and evaluations scored with: a `train rsft|grpo`
        section's own, else the pipeline's evaluation preset, else the top-level field."""
        for name in PHASE_SECTIONS:
            value = ((getattr(self, name) or {}).get("options") or {}).get("reward_preset")
            if isinstance(value, str) and value:
                return value
        if self.pipeline is not None:
            return self.pipeline.reward_preset
        return self.reward_preset
