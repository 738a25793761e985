"""Rejection-sampling fine-tuning (expert iteration), `kgreason train rsft`.

TRL has no rejection-sampling trainer, so this is ours, built on its pieces. One round:

1. pick the round's questions (easy, hard pool, mixed, or a curriculum: easy rounds then hard ones);
2. sample k completions per question from the current model (kgreason.sampling, batched);
3. score each with the KG reward (kgreason.reward.Scorer);
4. keep, per question, the best up to N among samples that are correct and well formed (optionally
   faithful too), optionally only for questions on the learning frontier (0 < pass rate < 1);
5. fine-tune the current adapter on the winners with the same `train_lora` SFT uses.

Every scored sample is appended to episodes.jsonl as it is produced, and a per-question line
(pass rate, best reward, winners kept) to metrics.jsonl right after its samples: that line marks the
question finished, so an interrupted round resumes after the last finished question. A round is
marked done in summary.json once its adapter is saved.
"""

from __future__ import annotations

import random
import shutil
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kgreason.config import RSFTOptions
from kgreason.io import InputError
from kgreason.records import Completion, RewardBreakdown, Task
from kgreason.reward.episode import scored_episode
from kgreason.runs.folder import Run, dump_options, is_main_process, main_process_first
from kgreason.train.phase_model import PhaseModel
from kgreason.train.sft import remove_checkpoints, task_example, train_lora


# --- selection -----------------------------------------------------------------------------------
@dataclass
class Scored:
    """One sampled completion and its reward."""

    sample_index: int
    text: str
    reward: RewardBreakdown


@dataclass
class QuestionOutcome:
    """Per-question result of a round: what the metrics line records."""

    task_id: str
    k: int
    passed: int  # samples with a well-formed, correct answer
    pass_rate: float
    best_reward: float | None
    mean_reward: float
    eligible: int  # samples that could be kept (correct, well formed, faithful when required)
    kept: list[int]  # sample indices of the winners, best first
    reason: str  # kept | none_eligible | below_frontier | above_frontier

    def metrics(self) -> dict[str, Any]:
        return {"task_id": self.task_id, "k": self.k, "passed": self.passed, "pass_rate": self.pass_rate,
                "best_reward": self.best_reward, "mean_reward": self.mean_reward, "eligible": self.eligible,
                "kept": len(self.kept), "kept_samples": self.kept, "reason": self.reason}


def is_pass(r: RewardBreakdown) -> bool:
    """A sample 'passes' when its answer parses and is right (the pass rate counts these)."""
    return bool(r.format_ok and r.correct)


def select_winners(task_id: str, samples: Sequence[Scored], keep: int = 1, faithful_only: bool = False,
                   frontier: bool = False) -> QuestionOutcome:
    """The best up to `keep` samples that are correct and well formed (and faithful if asked).

    Ranking: reward total, highest first; ties go to the lower sample index (deterministic).
    Duplicate texts count once, so `keep` > 1 never keeps the same completion twice.
    With `frontier`, a question whose pass rate is 0 or 1 keeps nothing: it teaches either nothing
    (always solved) or nothing the model can reach (never solved).
    """
    k = len(samples)
    passed = sum(1 for s in samples if is_pass(s.reward))
    pass_rate = passed / k if k else 0.0
    eligible = [s for s in samples if is_pass(s.reward) and (s.reward.faithful or not faithful_only)]
    totals = [s.reward.total for s in samples]
    outcome = QuestionOutcome(task_id=task_id, k=k, passed=passed, pass_rate=pass_rate,
                              best_reward=max(totals) if totals else None,
                              mean_reward=sum(totals) / k if k else 0.0,
                              eligible=len(eligible), kept=[], reason="kept")
    if frontier and passed == 0:
        outcome.reason = "below_frontier"
        return outcome
    if frontier and passed == k:
        outcome.reason = "above_frontier"
        return outcome
    if not eligible:
        outcome.reason = "none_eligible"
        return outcome
    seen: set[str] = set()
    for s in sorted(eligible, key=lambda s: (-s.reward.total, s.sample_index)):
        key = s.text.strip()
        if key in seen:
            continue
        seen.add(key)
        outcome.kept.append(s.sample_index)
        if len(outcome.kept) == keep:
            break
    return outcome


# --- questions -----------------------------------------------------------------------------------
def load_pool(data_dir: Path, name: str) -> list[Task]:
    """A training pool (train_easy / train_hard); refuses held-out items so eval never leaks in."""
    from kgreason.tasks.build import data_layout
    from kgreason.tasks.generate import load_tasks

    layout = data_layout(data_dir)
    path = Path(data_dir) / layout.files[name]
    if not path.exists():
        raise InputError(f"{path}: file not found (the {name} training pool); generate it with `kgreason tasks generate`")
    tasks = load_tasks(path)
    leaked = [t.id for t in tasks if t.split in layout.held_out]
    if leaked:
        raise InputError(f"{path}: holds held-out items ({', '.join(leaked[:3])} ...); RSFT never trains on eval items")
    return tasks


def pool_questions(data_dir: Path, distribution: str, n: int, seed: int, round_index: int) -> list[Task]:
    """`round_questions` over the pool(s) `distribution` names (easy, hard, or both for mixed), read
    from the data folder: GRPO's and DPO's questions, drawn the way an RSFT round draws its own."""
    names = ("easy", "hard") if distribution == "mixed" else (distribution,)
    return round_questions({name: load_pool(data_dir, name) for name in names}, distribution, n, seed, round_index)


def round_questions(pools: dict[str, list[Task]], pool: str, n: int, seed: int, round_index: int) -> list[Task]:
    """The round's questions: a seeded subset of the pool ("mixed": half easy, half hard)."""
    rng = random.Random(seed * 1000 + round_index)
    if pool == "mixed":
        half = n // 2 if n else 0
        easy = _subset(pools["easy"], n - half if n else 0, rng)
        hard = _subset(pools["hard"], half, rng)
        questions = easy + hard
        rng.shuffle(questions)
        return questions
    return _subset(pools[pool], n, rng)


def _subset(tasks: list[Task], n: int, rng: random.Random) -> list[Task]:
    if n <= 0 or n >= len(tasks):
        picked = list(tasks)
        rng.shuffle(picked)
        return picked
    return rng.sample(tasks, n)


# --- one round -----------------------------------------------------------------------------------
@dataclass
class RoundState:
    """What a round has already done, read back from the run's logs (resume)."""

    finished: dict[str, dict] = field(default_factory=dict)  # task id -> its per-question metrics line
    winners: dict[tuple[str, int], str] = field(default_factory=dict)  # (task id, sample index) -> text


def read_round_state(run: Run, phase: str, round_index: int) -> RoundState:
    state = RoundState()
    for rec in run.read_metrics(phase):
        if rec.get("round") == round_index and "task_id" in rec and "pass_rate" in rec:
            state.finished[rec["task_id"]] = rec
    for ep in run.iter_episodes(phase, round_index):
        if ep.get("kept") and ep.get("task_id") in state.finished:
            state.winners[(ep["task_id"], int(ep.get("sample_index", 0)))] = ep["completion"]
    return state


SamplerFactory = Callable[[Any, Any, str], Any]  # (model, tokenizer, backend) -> Sampler


def sample_round(run: Run, phase: str, round_index: int, questions: list[Task], model_ref: str,
                 adapter: Path | None, scorer: Any, options: RSFTOptions, state: RoundState,
                 sampler_factory: SamplerFactory | None = None, held: PhaseModel | None = None) -> None:
    """Sample, score and select for every unfinished question, appending as it goes. With `held`,
    the phase's loaded model samples (the adapter folded in while it does), else a merged copy is loaded."""
    todo = [t for t in questions if t.id not in state.finished]
    if not todo:
        return
    if held is None:
        from kgreason.models import load_model

        model, tokenizer = load_model(model_ref, adapter=adapter, merge=adapter is not None)
        _sample_questions(run, phase, round_index, questions, todo, model, tokenizer, scorer, options, state,
                          sampler_factory)
        return
    from kgreason.evaluate.runner import merged_for_sampling
    from kgreason.memory import release_between_phases
    from kgreason.models import load_tokenizer

    model = held.load(adapter)
    release_between_phases()  # the previous round's training memory, before the KV caches
    with merged_for_sampling(model):
        _sample_questions(run, phase, round_index, questions, todo, model, load_tokenizer(model_ref), scorer,
                          options, state, sampler_factory)


def _sample_questions(run: Run, phase: str, round_index: int, questions: list[Task], todo: list[Task], model: Any,
                      tokenizer: Any, scorer: Any, options: RSFTOptions, state: RoundState,
                      sampler_factory: SamplerFactory | None) -> None:
    from kgreason.console import progress
    from kgreason.families import family_of_tasks
    from kgreason.sampling import SamplingParams
    from kgreason.tasks.format import chat_messages

    if sampler_factory is not None:
        sampler = sampler_factory(model, tokenizer, options.backend)
    else:
        sampler = _default_sampler(model, tokenizer, options.backend, options.sample_rows)
    params = SamplingParams(k=options.k, temperature=options.temperature, top_p=options.top_p,
                            max_new_tokens=options.max_new_tokens, seed=options.train.seed * 1000 + round_index,
                            family=family_of_tasks(questions))
    bar = progress(len(questions), f"[{phase}] round {round_index}: sample k={options.k} + score", unit="q",
                   initial=len(questions) - len(todo))
    for start in range(0, len(todo), options.chunk):
        chunk = todo[start:start + options.chunk]
        completions = sampler.generate([(t.id, chat_messages(t)) for t in chunk], params, progress=False)
        by_task: dict[str, list[Completion]] = defaultdict(list)
        for c in completions:
            by_task[c.task_id].append(c)
        for task in chunk:
            outcome = record_question(run, phase, round_index, len(state.finished), task, by_task[task.id],
                                      scorer, options)
            state.finished[task.id] = outcome.metrics()
            bar.update(1)
            bar.set_postfix(pass_rate=f"{_mean(r['pass_rate'] for r in state.finished.values()):.2f}")
    bar.close()


def _default_sampler(model: Any, tokenizer: Any, backend: str, rows: int | None = None) -> Any:
    from kgreason.sampling import get_sampler

    return get_sampler(model, tokenizer, backend=backend, batch_size=rows)


def record_question(run: Run, phase: str, round_index: int, step: int, task: Task,
                    completions: list[Completion], scorer: Any, options: RSFTOptions) -> QuestionOutcome:
    """Score one question's samples, select its winners, append its episodes then its metrics line."""
    # The sampler already cut at the answer line when it stopped there; cutting again (a no-op
    # then) keeps a run-on sample's tail out of the scored text and the fine-tuning targets.
    episodes = [scored_episode(scorer, task, c.text, run=run.name, phase=phase, step=step,
                               sample_index=c.sample_index, round=round_index)
                for c in sorted(completions, key=lambda c: c.sample_index)]
    scored = [Scored(ep.sample_index, ep.completion, ep.reward) for ep in episodes]
    outcome = select_winners(task.id, scored, keep=options.keep, faithful_only=options.faithful_only,
                             frontier=options.frontier)
    kept = set(outcome.kept)
    for ep in episodes:
        ep.kept = ep.sample_index in kept
        run.append_episode(ep)
    # Written last: this line is what marks the question finished for a resumed round.
    run.log_metrics(phase, step, {**outcome.metrics(), "hop_len": task.hop_len}, round=round_index)
    return outcome


def _mean(values: Any) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0


def round_summary(state: RoundState, questions: list[Task]) -> dict[str, Any]:
    rows = [state.finished[t.id] for t in questions if t.id in state.finished]
    reasons: dict[str, int] = defaultdict(int)
    for r in rows:
        reasons[r["reason"]] += 1
    return {
        "questions": len(rows),
        "mean_pass_rate": round(_mean(r["pass_rate"] for r in rows), 4),
        "mean_reward": round(_mean(r["mean_reward"] for r in rows), 4),
        "best_reward_mean": round(_mean(r["best_reward"] for r in rows if r["best_reward"] is not None), 4),
        "on_frontier": sum(1 for r in rows if 0 < r["pass_rate"] < 1),
        "with_winners": sum(1 for r in rows if r["kept"]),
        "winners": sum(r["kept"] for r in rows),
        "reasons": dict(reasons),
    }


# --- the phase -----------------------------------------------------------------------------------
def run_rsft(run: Run, model_ref: str, data_dir: Path, options: RSFTOptions, init_adapter: Path | None,
             phase: str = "rsft", kg: Any = None, callbacks: list | None = None,
             sampler_factory: SamplerFactory | None = None, held: PhaseModel | None = None) -> dict:
    """R rounds of sample → score → select → fine-tune, starting from `init_adapter` (usually SFT's).

    The phase loads its model once (`held`, made here when not given): every round samples from
    it and trains it in place; the caller may evaluate it afterwards. `sampler_factory` replaces
    kgreason.sampling.get_sampler (tests wrap it to plant known answers).
    """
    from kgreason.reward.score import Scorer

    options.validate()
    if run.is_done(phase):
        print(f"[{phase}] already done; reusing {run.adapter_dir(phase)}")
        return run.phase_info(phase) or {}
    kg = kg if kg is not None else _load_run_kg(data_dir)
    scorer = Scorer(kg, preset=options.reward_preset)
    both = options.distribution in ("mixed", "curriculum")
    names = ("easy", "hard") if both else (options.distribution,)
    pools = {name: load_pool(data_dir, name) for name in names}
    info = run.phase_info(phase) or {}
    rounds: list[dict] = list(info.get("rounds", []))
    adapter = _resolve(run, rounds[-1]["adapter_path"]) if rounds else init_adapter
    phase_start = time.perf_counter() - float(info.get("wall_s", 0.0))
    held = held if held is not None else PhaseModel(model_ref, options.train.dtype)
    loads_before = held.loads
    probes: list[tuple[int, dict[str, float]]] = []  # the held-out probe, in order over the rounds
    for r in range(len(rounds) + 1, options.rounds + 1):
        t0 = time.perf_counter()
        pool = options.pool_for_round(r)
        questions = round_questions(pools, pool, options.questions, options.train.seed, r)
        state = read_round_state(run, phase, r)
        if state.finished:
            print(f"[{phase}] round {r}: resuming after {len(state.finished)} finished questions")
        # Under `accelerate launch` the main process samples and writes; the others wait, then read
        # the winners back from episodes.jsonl, so every process trains on the same examples.
        with main_process_first():
            if is_main_process():
                sample_round(run, phase, r, questions, model_ref, adapter, scorer, options, state,
                             sampler_factory, held)
        state = read_round_state(run, phase, r)
        summary = round_summary(state, questions)
        sample_s = time.perf_counter() - t0
        by_id = {t.id: t for t in questions}
        examples = [task_example(by_id[tid], text) for (tid, _), text in sorted(state.winners.items())
                    if tid in by_id]
        print(f"[{phase}] round {r} ({pool}): {summary['questions']} questions, mean pass rate "
              f"{summary['mean_pass_rate']:.2f}, {summary['on_frontier']} on the frontier, "
              f"{summary['winners']} winners")
        round_dir = run.adapter_dir(phase) / f"round-{r}"
        train_info: dict[str, Any] = {"steps": 0, "train_loss": None}
        if examples:
            probe = _round_probe(run, phase, model_ref, data_dir, kg, options, r)
            result = train_lora(model_ref, examples, round_dir, options.train, run=run, phase=phase,
                                round_index=r, init_adapter=adapter,
                                callbacks=[*(callbacks or []), *([probe] if probe is not None else [])], held=held)
            for _, values in probe.history if probe is not None else []:
                probes.append((len(probes), values))
            train_info = {"steps": result.steps, "train_loss": result.train_loss, "train_s": result.wall_s}
            adapter = round_dir
        else:
            print(f"[{phase}] round {r}: no winners; the model is unchanged this round")
        row = {"round": r, "pool": pool, **summary, **train_info, "sample_s": round(sample_s, 2),
               "wall_s": round(time.perf_counter() - t0, 2),
               "adapter_path": _relative(run, adapter)}
        rounds.append(row)
        run.log_metrics(phase, r, {k: v for k, v in row.items() if isinstance(v, (int, float))}, round=r)
        run.update_phase(phase, {"kind": "train", "rounds": rounds, "rounds_done": r,
                                 "wall_s": round(time.perf_counter() - phase_start, 2),
                                 "options": dump_options(options)})
        if examples:
            remove_checkpoints(round_dir)
    final = run.adapter_dir(phase)
    if adapter is not None and Path(adapter) != final:
        publish_adapter(Path(adapter), final)
        if held.holds(adapter):
            held.saved_as(final)
    info = {"kind": "train", "rounds": rounds, "rounds_done": len(rounds),
            "winners": sum(r["winners"] for r in rounds),
            "adapter": str(final.relative_to(run.root)) if adapter is not None else None,
            "wall_s": round(time.perf_counter() - phase_start, 2), "options": dump_options(options),
            "model_loads": held.loads - loads_before}
    if probes:
        from kgreason.train.probe import collapse_note, reward_hacking_note

        info["probe"] = [values for _, values in probes]
        note = reward_hacking_note(probes, [(r["round"], r["mean_reward"]) for r in rounds
                                            if isinstance(r.get("mean_reward"), (int, float))]) or collapse_note(probes)
        if note:
            info["warning"] = note
            print(f"[{phase}] WARNING: {note}")
    run.mark_done(phase, info)
    return info


def _round_probe(run: Run, phase: str, model_ref: str, data_dir: Path, kg: Any, options: RSFTOptions,
                 round_index: int) -> Any:
    """The held-out probe of one round's training (kgreason.train.probe), when --probe-every is set."""
    if options.train.probe_every <= 0:
        return None
    from kgreason.models import load_tokenizer
    from kgreason.train.probe import make_probe

    return make_probe(run, phase, load_tokenizer(model_ref), data_dir, kg, options.train, options.max_new_tokens,
                      round=round_index)


def _relative(run: Run, path: Path | None) -> str | None:
    """A path inside the run folder is stored relative to it, so the folder can be moved."""
    if path is None:
        return None
    path = Path(path)
    try:
        return str(path.resolve().relative_to(run.root.resolve()))
    except ValueError:
        return str(path.resolve())


def _resolve(run: Run, path: str | None) -> Path | None:
    if path is None:
        return None
    p = Path(path)
    return p if p.is_absolute() else run.root / p


def publish_adapter(src: Path, dst: Path) -> None:
    """Copy the last round's adapter files to adapters/<phase>/ (the round-N folders stay beside them)."""
    if not is_main_process():
        return
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.is_file():
            tmp = dst / f".{f.name}.tmp"
            shutil.copy2(f, tmp)
            tmp.replace(dst / f.name)


def _load_run_kg(data_dir: Path) -> Any:
    from kgreason.kg.kgjson import load_kg

    path = Path(data_dir) / "kg.json"
    if not path.exists():
        raise InputError(f"{path}: file not found; RSFT scores samples against the run's graph (pass --kg)")
    return load_kg(path)
