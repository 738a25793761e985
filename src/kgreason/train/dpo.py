"""DPO on pairs the KG verifies, on TRL's DPOTrainer (`kgreason train dpo`, `kgreason run --rl dpo`).

RSFT keeps the correct, faithful samples of a question and throws the rest away; DPO uses both:

1. sample k completions per question of the training pool from the adapter it starts from (SFT's);
2. score each with the KG reward (kgreason.reward.Scorer): the answer, and every hop the trace claims;
3. per question, pair a *chosen* sample (well formed, correct, faithful trace) with a *rejected* one
   (wrong answer, unparsable, or a trace that claims a hop the graph does not have): the best chosen
   by reward with the worst rejected first, at most `pairs` pairs, none when either side is empty;
4. train the adapter on the pairs with TRL's DPOTrainer. The reference is the adapter DPO starts
   from: TRL copies a PEFT model's pretrained adapter into a frozen "ref" adapter (so the KL anchor
   is the SFT model, not the base model with the adapter switched off, as for GRPO).

Every scored sample is appended to episodes.jsonl (phase "dpo", round 1) as it is produced, then a
per-question metrics line with the pairs it made; that line marks the question finished, so an
interrupted sampling pass resumes after the last finished question, and the pairs are rebuilt from
the files on disk. pairs.jsonl beside the adapter lists every pair with both texts and verdicts.
"""

from __future__ import annotations

import time
from collections import defaultdict
from itertools import product
from pathlib import Path
from typing import Any

from kgreason.config import DPOOptions
from kgreason.families import family_of_tasks
from kgreason.io import atomic_write_jsonl
from kgreason.records import RewardBreakdown, Task
from kgreason.reward.episode import scored_episode
from kgreason.runs.folder import Run, dump_options
from kgreason.train.phase_model import PhaseModel

ROUND = 1  # one sampling pass; episodes and metrics lines carry it as their round, as RSFT's do
PAIRS_FILE = "pairs.jsonl"


def is_chosen(r: RewardBreakdown) -> bool:
    """A sample DPO prefers: its answer parses and is right, and every hop its trace claims is in the graph."""
    return bool(r.format_ok and r.correct and r.faithful)


def question_pairs(scored: list[tuple[int, RewardBreakdown]], max_pairs: int) -> list[tuple[int, int]]:
    """(chosen sample index, rejected sample index) pairs of one question: the chosen ranked by reward
    (highest first), the rejected by reward (lowest first), pairs taken in order of rank sum."""
    chosen = sorted((s for s in scored if is_chosen(s[1])), key=lambda s: (-s[1].total, s[0]))
    rejected = sorted((s for s in scored if not is_chosen(s[1])), key=lambda s: (s[1].total, s[0]))
    ranks = sorted(product(range(len(chosen)), range(len(rejected))), key=lambda ij: (ij[0] + ij[1], ij))
    return [(chosen[i][0], rejected[j][0]) for i, j in ranks[:max_pairs]]


def _finished(run: Run, phase: str) -> dict[str, dict]:
    """Questions already sampled (their metrics line), by task id."""
    return {m["task_id"]: m for m in run.read_metrics(phase)
            if m.get("round") == ROUND and "task_id" in m and "pairs" in m}


def sample_pairs(run: Run, phase: str, questions: list[Task], model: Any, tokenizer: Any, scorer: Any,
                 options: DPOOptions) -> None:
    """Sample, score and pair every question not yet finished, appending episodes then its metrics line."""
    from kgreason.console import progress
    from kgreason.sampling import SamplingParams, get_sampler
    from kgreason.tasks.format import chat_messages
    from kgreason.train.rsft import is_pass

    done = _finished(run, phase)
    todo = [t for t in questions if t.id not in done]
    if not todo:
        return
    if done:
        print(f"[{phase}] resuming sampling after {len(done)} finished questions")
    sampler = get_sampler(model, tokenizer, backend=options.backend, batch_size=options.sample_rows)
    params = SamplingParams(k=options.k, temperature=options.temperature, top_p=options.top_p,
                            max_new_tokens=options.max_new_tokens, seed=options.train.seed * 1000 + ROUND,
                            family=family_of_tasks(questions))
    bar = progress(len(questions), f"[{phase}] sample k={options.k} + score", unit="q", initial=len(done))
    for start in range(0, len(todo), options.chunk):
        chunk = todo[start:start + options.chunk]
        by_task: dict[str, list[Any]] = defaultdict(list)
        for c in sampler.generate([(t.id, chat_messages(t)) for t in chunk], params, progress=False):
            by_task[c.task_id].append(c)
        for task in chunk:
            episodes = [scored_episode(scorer, task, c.text, run=run.name, phase=phase, step=len(done),
                                       sample_index=c.sample_index, round=ROUND)
                        for c in sorted(by_task[task.id], key=lambda c: c.sample_index)]
            pairs = question_pairs([(ep.sample_index, ep.reward) for ep in episodes], options.pairs)
            in_pairs = {i for pair in pairs for i in pair}
            for ep in episodes:
                ep.kept = ep.sample_index in in_pairs
                run.append_episode(ep)
            chosen = sum(is_chosen(ep.reward) for ep in episodes)
            # written last: this line marks the question finished for a resumed pass
            run.log_metrics(phase, len(done), {
                "task_id": task.id, "hop_len": task.hop_len, "k": len(episodes),
                "pass_rate": sum(is_pass(ep.reward) for ep in episodes) / max(len(episodes), 1),
                "chosen": chosen, "rejected": len(episodes) - chosen, "pairs": [list(p) for p in pairs],
                "mean_reward": sum(ep.reward.total for ep in episodes) / max(len(episodes), 1)}, round=ROUND)
            done[task.id] = {"pairs": pairs}
            bar.update(1)
    bar.close()


def pair_records(run: Run, phase: str, questions: list[Task], finished: dict[str, dict]) -> list[dict]:
    """The pairs of the finished questions (`_finished`), their texts read back from episodes.jsonl."""
    episodes = {(ep["task_id"], int(ep.get("sample_index", 0))): ep for ep in run.iter_episodes(phase, ROUND)}
    rows = []
    for task in questions:
        for chosen, rejected in (finished.get(task.id) or {}).get("pairs", []):
            c, r = episodes[(task.id, chosen)], episodes[(task.id, rejected)]
            rows.append({"task_id": task.id, "hop_len": task.hop_len,
                         "chosen_sample": chosen, "chosen": c["completion"], "chosen_reward": c["reward"],
                         "rejected_sample": rejected, "rejected": r["completion"], "rejected_reward": r["reward"]})
    return rows


def dpo_config(output_dir: Path, options: DPOOptions, n_pairs: int) -> Any:
    from trl import DPOConfig

    from kgreason.models.dtype import default_device
    from kgreason.train.sft import shared_trainer_args

    return DPOConfig(
        output_dir=str(output_dir),
        max_steps=options.train.max_steps if options.train.max_steps > 0 else -1,
        num_train_epochs=options.train.epochs,
        per_device_train_batch_size=min(options.train.batch_size, max(1, n_pairs)),
        gradient_accumulation_steps=options.train.grad_accum,
        learning_rate=options.train.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=options.train.warmup_ratio,  # a float in [0, 1) is a share of the total steps
        weight_decay=options.train.weight_decay,
        beta=options.beta,
        max_length=options.train.max_length,
        activation_checkpointing=options.train.gradient_checkpointing,
        **shared_trainer_args(options.train, default_device()),
    )


def run_dpo(run: Run, model_ref: str, data_dir: Path, options: DPOOptions, init_adapter: Path | None = None,
            phase: str = "dpo", kg: Any = None, callbacks: list | None = None,
            held: PhaseModel | None = None) -> dict:
    """The DPO phase of a run (skipped when done; sampling and training resume)."""
    from datasets import Dataset
    from trl import DPOTrainer

    from kgreason.console import LOG_NAME, log_to, quiet_libraries
    from kgreason.evaluate.runner import merged_for_sampling
    from kgreason.io import InputError
    from kgreason.models import load_tokenizer
    from kgreason.reward.score import Scorer
    from kgreason.tasks.format import chat_messages
    from kgreason.train.rsft import _load_run_kg, pool_questions
    from kgreason.train.sft import (
        _last_checkpoint,
        name_base_in_adapter,
        remove_checkpoints,
        training_tokenizer,
    )
    from kgreason.train.tracking import RunMetricsCallback, quiet_trainer

    options.validate()
    if run.is_done(phase):
        print(f"[{phase}] already done; reusing {run.adapter_dir(phase)}")
        return run.phase_info(phase) or {}
    if init_adapter is None:
        raise InputError(f"{phase}: DPO continues an adapter (SFT's) and uses it as its reference; pass --init-adapter")
    quiet_libraries()
    log_to(run.root / LOG_NAME)
    start = time.perf_counter()
    kg = kg if kg is not None else _load_run_kg(data_dir)
    scorer = Scorer(kg, preset=options.reward_preset)
    questions = pool_questions(Path(data_dir), options.distribution, options.questions, options.train.seed, ROUND)
    held = held if held is not None else PhaseModel(model_ref, options.train.dtype)
    loads_before = held.loads
    model = held.load(init_adapter)
    with merged_for_sampling(model):
        sample_pairs(run, phase, questions, model, load_tokenizer(model_ref), scorer, options)
    sample_s = time.perf_counter() - start
    finished = _finished(run, phase)
    rows = pair_records(run, phase, questions, finished)
    output_dir = run.adapter_dir(phase)
    output_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_jsonl(output_dir / PAIRS_FILE, rows)
    stats = {"questions": len(questions), "pairs": len(rows),
             "questions_with_pairs": sum(1 for t in questions if (finished.get(t.id) or {}).get("pairs")),
             "mean_pass_rate": sum(float(finished[t.id]["pass_rate"]) for t in questions) / max(len(questions), 1),
             "sample_s": round(sample_s, 2)}
    print(f"[{phase}] {stats['questions']} {options.distribution} questions x {options.k} samples: mean pass rate "
          f"{stats['mean_pass_rate']:.2f}, {stats['pairs']} pairs from {stats['questions_with_pairs']} questions")
    info: dict[str, Any] = {"kind": "train", **stats, "steps": 0, "train_loss": None,
                            "options": dump_options(options)}
    if not rows:
        info["warning"] = ("no question had both a correct faithful sample and a wrong or unfaithful one: DPO "
                           "trained nothing, and its evaluation is the starting adapter's")
        print(f"[{phase}] WARNING: {info['warning']}")
        info.update(adapter=None, wall_s=round(time.perf_counter() - start, 2), model_loads=held.loads - loads_before)
        run.mark_done(phase, info)
        return info
    by_id = {t.id: t for t in questions}
    dataset = Dataset.from_list([{"prompt": chat_messages(by_id[r["task_id"]]),
                                  "chosen": [{"role": "assistant", "content": r["chosen"]}],
                                  "rejected": [{"role": "assistant", "content": r["rejected"]}]} for r in rows])
    trainer = DPOTrainer(model=model, args=dpo_config(output_dir, options, len(rows)), train_dataset=dataset,
                         processing_class=training_tokenizer(model_ref),
                         callbacks=[RunMetricsCallback(run, phase), *(callbacks or [])])
    quiet_trainer(trainer, phase.upper())
    resume = _last_checkpoint(output_dir)
    if resume:
        print(f"[{phase}] resuming DPO from checkpoint step {Path(resume).name.removeprefix('checkpoint-')}")
    out = trainer.train(resume_from_checkpoint=resume)
    trained = trainer.model
    if "ref" in getattr(trained, "peft_config", {}):
        trained.delete_adapter("ref")  # TRL's frozen copy of the starting adapter: the reference, not the result
    trainer.save_model(str(output_dir))
    if trainer.is_world_process_zero():
        name_base_in_adapter(output_dir, model_ref)
    held.trained(trained, output_dir)
    info.update(steps=int(out.global_step), resumed_from=resume,
                train_loss=float(out.training_loss) if out.training_loss is not None else None,
                adapter=str(output_dir.relative_to(run.root)), wall_s=round(time.perf_counter() - start, 2),
                model_loads=held.loads - loads_before)
    run.mark_done(phase, info)
    remove_checkpoints(output_dir)
    return info
