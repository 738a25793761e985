"""GRPO with the KG reward, on TRL's GRPOTrainer (`kgreason train grpo`).

The reward is a plain Python function over (prompt, completion, task id): kgreason.reward.Scorer
with any preset. Every scored completion is appended to episodes.jsonl (phase "grpo", the trainer
step, the full reward breakdown) and the means of the reward components are logged next to TRL's
own metrics (reward, KL, entropy), so metrics.jsonl and TensorBoard show why the reward moves.
LoRA via `peft_config` (or continuing an SFT adapter), KL coefficient `beta`, group size
`num_generations`. On CPU precision flags are explicit; with vLLM and a GPU, generation uses vLLM
(colocated). Resume: Trainer checkpoints inside adapters/grpo/.

Generation: TRL's own path calls transformers' `generate` on the training model (left-padded,
every row decoded to the longest). With `--generation kgreason` (the default without vLLM) the
groups come from kgreason's batched sampler instead, through TRL's `rollout_func` hook
(`SamplerRollout`): each prompt is prefilled once for its whole group, rows leave the batch at
their answer line, and the LoRA is folded into the weights for the pass. TRL still computes the
log-probabilities, advantages and loss itself, on exactly the token ids the sampler returns.
A held-out probe (kgreason.train.probe) can answer a fixed set of eval items greedily every N steps.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from kgreason.config import GRPOOptions
from kgreason.families import DEFAULT_FAMILY, family_of_tasks
from kgreason.io import InputError
from kgreason.records import Task
from kgreason.reward.episode import scored_episode
from kgreason.runs.folder import Run, dump_options
from kgreason.train.phase_model import PhaseModel
from kgreason.train.sft import name_base_in_adapter, remove_checkpoints, shared_trainer_args


class KGReward:
    """The KG reward as a GRPOTrainer reward function; logs episodes and component means."""

    __name__ = "kg_reward"  # TRL names the logged reward column after the function

    def __init__(self, scorer: Any, tasks: dict[str, Task], run: Run | None, phase: str = "grpo") -> None:
        self.scorer = scorer
        self.tasks = tasks
        self.run = run
        self.phase = phase
        self._seen: dict[tuple[int, str], int] = defaultdict(int)

    def __call__(self, prompts: list, completions: list, task_id: list[str], trainer_state: Any = None,
                 log_metric: Any = None, **_: Any) -> list[float]:
        step = int(getattr(trainer_state, "global_step", 0) or 0)
        rewards: list[float] = []
        sums: dict[str, float] = defaultdict(float)
        for completion, tid in zip(completions, task_id, strict=True):
            task = self.tasks[tid]
            # TRL generates past the answer line; scored_episode cuts there with the samplers' rule,
            # so GRPO scores and logs the same text that evaluation and RSFT would have kept.
            index = self._seen[(step, tid)]
            self._seen[(step, tid)] += 1
            episode = scored_episode(self.scorer, task, completion_text(completion), phase=self.phase, step=step,
                                     run=self.run.name if self.run is not None else "grpo", sample_index=index)
            breakdown = episode.reward
            rewards.append(float(breakdown.total))
            for name, value in breakdown.components.items():
                sums[f"kg/{name}"] += float(value)
            sums["kg/correct"] += float(breakdown.correct)
            sums["kg/format_ok"] += float(breakdown.format_ok)
            sums["kg/faithful"] += float(breakdown.faithful)
            sums["kg/path_coverage"] += float(breakdown.path_coverage)
            sums["kg/valid_hops"] += float(breakdown.valid_hops)
            if self.run is not None:
                self.run.append_episode(episode)
        if log_metric is not None and rewards:
            for name, total in sums.items():
                log_metric(name, total / len(rewards))
        return rewards


class SamplerRollout:
    """TRL's `rollout_func`: the trainer's prompts sampled by kgreason's batched sampler.

    TRL hands over the step's prompts with each prompt repeated `num_generations` times in a row
    (its RepeatSampler); they are grouped back, each group's prompt prefilled once and sampled k
    times (kgreason.sampling.hf), and the completions returned in the same order as the prompts.
    The completion ids are the tokens the model drew (the sampler's `token_ids`), cut where the
    sampler stops: at the end of the answer line (plus at most the token that closed it), at the
    model's end token, or at `max_completion_length`. The end token itself is not among them: its
    text is empty, so the shortest prefix that covers the completion's text leaves it out, and
    stopping gets no gradient here (found by a review on 2026-12-07; the reward, which reads the
    text up to the answer line, is unchanged by it, and the reward grid's GRPO arms all ran so). TRL's own
    path decodes on to the end token instead, so it also trains on whatever follows the answer
    line; that difference is part of what `kgreason bench grpo` measures. No sampling
    log-probabilities are returned: with one generation per optimizer step and one iteration, TRL
    computes the old log-probabilities as the current ones, as on its own path.
    """

    def __init__(self, tokenizer: Any, options: GRPOOptions, rows: int | None = None,
                 family: str | None = None) -> None:
        self.tokenizer, self.options, self.rows = tokenizer, options, rows
        self.family = family or DEFAULT_FAMILY  # whose answer line ends a sample

    def __call__(self, prompts: list, trainer: Any) -> dict[str, Any]:
        import hashlib

        from kgreason.evaluate.runner import merged_for_sampling
        from kgreason.sampling import SamplingParams
        from kgreason.sampling.hf import HFSampler

        k = int(trainer.num_generations if trainer.model.training else trainer.num_generations_eval)
        groups = [prompts[i] for i in range(0, len(prompts), k)]
        if len(prompts) % k or any(p != prompts[i - i % k] for i, p in enumerate(prompts)):
            # TRL's RepeatSampler hands over whole groups in a row; anything else is a TRL change
            raise RuntimeError(f"GRPO rollout: expected {len(prompts)} prompts in runs of {k} identical ones")
        model = trainer.accelerator.unwrap_model(trainer.model)
        sampler = HFSampler(model, self.tokenizer, batch_size=self.rows)
        sampler.token_ids = {}
        step = int(getattr(trainer.state, "global_step", 0) or 0)
        params = SamplingParams(k=k, temperature=self.options.temperature,
                                max_new_tokens=self.options.max_completion_length,
                                seed=self.options.train.seed * 100_003 + step, family=self.family)
        items = [(f"{hashlib.blake2b(repr(m).encode(), digest_size=6).hexdigest()}-{i}", m)
                 for i, m in enumerate(groups)]
        with merged_for_sampling(model):
            completions = sampler.generate(items, params, progress=False)
        encoded = [sampler.encode(messages) for messages in groups]
        prompt_ids = [ids for ids in encoded for _ in range(k)]
        completion_ids = [sampler.token_ids[(c.task_id, c.sample_index)] for c in completions]
        return {"prompt_ids": prompt_ids, "completion_ids": completion_ids, "logprobs": None}


def completion_text(completion: Any) -> str:
    """A TRL completion (plain text, or a conversational list of messages) as text."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        return "".join(m.get("content", "") for m in completion if isinstance(m, dict))
    return str(completion)


def want_vllm(setting: str) -> bool:
    import torch

    from kgreason.sampling.vllm_backend import vllm_available

    if setting == "no":
        return False
    available = vllm_available() and torch.cuda.is_available()
    if setting == "yes" and not available:
        raise InputError("--use-vllm yes: needs vllm installed (pip install 'kgreason[gpu]') and a CUDA GPU")
    return available


def grpo_config(output_dir: Path, options: GRPOOptions) -> Any:
    from trl import GRPOConfig

    from kgreason.models.dtype import default_device

    device = default_device()
    use_vllm = want_vllm(options.use_vllm)
    extra: dict[str, Any] = {"vllm_mode": "colocate"} if use_vllm else {}
    # The learning rate follows TRL's default schedule here (linear decay from the first step, no
    # warm-up): warmup_ratio and the cosine schedule of TrainOptions are not passed, unlike SFT's
    # and DPO's configs. Every GRPO figure in docs/ so far (the reward grid's arms included) ran so;
    # passing them would change GRPO's recipe in the middle of that grid (see docs/learning.md).
    return GRPOConfig(
        output_dir=str(output_dir),
        max_steps=options.train.max_steps,
        per_device_train_batch_size=options.train.batch_size,
        gradient_accumulation_steps=options.train.grad_accum,
        num_generations=options.num_generations,
        beta=options.beta,
        learning_rate=options.train.learning_rate,
        temperature=options.temperature,
        max_completion_length=options.max_completion_length,
        activation_checkpointing=False,
        use_vllm=use_vllm,
        log_completions=False,  # every completion already goes to episodes.jsonl
        **shared_trainer_args(options.train, device),
        **extra,
    )


def run_grpo(run: Run, model_ref: str, data_dir: Path, options: GRPOOptions, init_adapter: Path | None = None,
             phase: str = "grpo", kg: Any = None, callbacks: list | None = None, scorer: Any = None,
             held: PhaseModel | None = None) -> dict:
    """The GRPO phase of a run (skipped when done; resumes from the last checkpoint).

    TRL's trainer samples its groups from the model it trains (or from vLLM, which loads its own).
    With `held`, the phase's model is loaded there and stays loaded for the phase's evaluation.

    `scorer` (anything with `.score(task, text) -> RewardBreakdown`) defaults to
    kgreason.reward's Scorer with `options.reward_preset`.
    """
    from datasets import Dataset
    from trl import GRPOTrainer

    from kgreason.console import LOG_NAME, log_to
    from kgreason.models import load_model, load_tokenizer
    from kgreason.reward.score import Scorer
    from kgreason.tasks.format import chat_messages
    from kgreason.train.probe import collapse_note, make_probe, reward_hacking_note
    from kgreason.train.rsft import _load_run_kg, pool_questions
    from kgreason.train.sft import _last_checkpoint
    from kgreason.train.tracking import RunMetricsCallback, quiet_trainer

    options.validate()
    if run.is_done(phase):
        print(f"[{phase}] already done; reusing {run.adapter_dir(phase)}")
        return run.phase_info(phase) or {}
    log_to(run.root / LOG_NAME)  # library chatter of this phase goes to the run's log.txt
    start = time.perf_counter()
    kg = kg if kg is not None else _load_run_kg(data_dir)
    tasks = pool_questions(Path(data_dir), options.distribution, options.questions, options.train.seed, 0)
    dataset = Dataset.from_list([{"prompt": chat_messages(t), "task_id": t.id} for t in tasks])
    loads_before = held.loads if held is not None else 0
    if held is not None:
        model, tokenizer = held.load(init_adapter), load_tokenizer(model_ref)
    else:
        model, tokenizer = load_model(model_ref, adapter=init_adapter, dtype=options.train.dtype, trainable=True)
    if options.train.compile_layers:  # GRPO's trainer generates with the same layers between its updates
        print(f"[{phase}] --compile-layers applies to SFT and RSFT training; GRPO trains its layers eagerly")
    if init_adapter is not None and options.beta > 0:
        print(f"[{phase}] note: --beta {options.beta} pulls towards the base model without the SFT adapter (TRL's "
              "reference for a LoRA policy is the adapter switched off), not towards the SFT model")
    scorer = scorer if scorer is not None else Scorer(kg, preset=options.reward_preset)
    reward = KGReward(scorer, {t.id: t for t in tasks}, run, phase)
    output_dir = run.adapter_dir(phase)
    output_dir.mkdir(parents=True, exist_ok=True)
    args = grpo_config(output_dir, options)
    rollout = None
    if options.generation == "kgreason" and not args.use_vllm:
        os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # rollout_func is documented, flagged experimental
        rollout = SamplerRollout(tokenizer, options, family=family_of_tasks(tasks))
    probe = make_probe(run, phase, tokenizer, data_dir, kg, options.train, options.max_completion_length)
    from kgreason.train.grpo_prefix import prefix_sharing_trainer

    trainer_class = prefix_sharing_trainer(GRPOTrainer) if options.share_prompt else GRPOTrainer
    trainer = trainer_class(
        model=model,
        reward_funcs=[reward],
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=None if init_adapter is not None else options.train.lora.peft_config(),
        callbacks=[RunMetricsCallback(run, phase), *([probe] if probe is not None else []), *(callbacks or [])],
        rollout_func=rollout,
    )
    quiet_trainer(trainer, phase.upper())  # one progress bar; no Trainer log dicts on the console
    resume = _last_checkpoint(output_dir)
    print(f"[{phase}] GRPO on {len(tasks)} {options.distribution} questions, group size "
          f"{options.num_generations}, beta {options.beta}, {options.train.max_steps} steps"
          + (f"; resuming GRPO from checkpoint step {Path(resume).name.removeprefix('checkpoint-')}"
             if resume else ""))
    out = trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(str(output_dir))
    if trainer.is_world_process_zero():
        name_base_in_adapter(output_dir, model_ref)
    if held is not None:
        held.trained(trainer.model, output_dir)
    info = {"kind": "train", "steps": int(out.global_step), "questions": len(tasks),
            "train_loss": float(out.training_loss) if out.training_loss is not None else None,
            "wall_s": round(time.perf_counter() - start, 2), "resumed_from": resume,
            "adapter": str(output_dir.relative_to(run.root)), "use_vllm": bool(trainer.args.use_vllm),
            "generation": "vllm" if trainer.args.use_vllm else ("kgreason" if rollout is not None else "trl"),
            "share_prompt": bool(options.share_prompt),
            "options": dump_options(options), "model_loads": held.loads - loads_before if held is not None else 1}
    if probe is not None and probe.history:
        info["probe"] = [{"step": step, **values} for step, values in probe.history]
        rewards = [(int(m["step"]), float(m["reward"])) for m in run.read_metrics(phase)
                   if isinstance(m.get("reward"), (int, float))]
        note = reward_hacking_note(probe.history, rewards) or collapse_note(probe.history)
        if note:
            info["warning"] = note
            print(f"[{phase}] WARNING: {note}")
    run.mark_done(phase, info)
    remove_checkpoints(output_dir)
    return info
