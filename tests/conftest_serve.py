"""Fixture runs for the web-demo tests, written from the records' to_dict (no training needed).

A small DevOps-like graph, well-posed tasks built by hand along its paths, a run with SFT and RSFT
episodes (k samples per question, some with false hops), metric curves, three evaluation phases,
and a distribution experiment folder. Everything is deterministic in `seed`, so tests can assert
exact counts.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from kgreason.config import PipelineConfig, RunConfig
from kgreason.io import atomic_write_json, atomic_write_jsonl, atomic_write_text
from kgreason.kg.graph import Edge, Entity, KnowledgeGraph, Relation
from kgreason.options import with_overrides
from kgreason.records import LETTERS, ClaimedHop, Episode, PathStar, RewardBreakdown, Task

RUN = "demo-run"
EXPERIMENT = "dist-exp"
EVAL_PHASES = ("base_eval", "sft", "rsft")
K = 4  # samples per question in the fixture episodes

RELATIONS = [
    Relation("caused_by", "is caused by", "causes"),
    Relation("fixed_by", "is fixed by", "fixes"),
    Relation("uses_tool", "uses", "is used by"),
    Relation("diagnosed_by", "is diagnosed by", "diagnoses"),
]


def build_kg() -> KnowledgeGraph:
    """24 entities in 4 layers: symptom -caused_by-> cause -fixed_by-> fix -uses_tool-> tool."""
    ents: list[Entity] = []
    edges: list[Edge] = []
    for i in range(6):
        ents += [
            Entity(f"symptom_{i}", f"Symptom{i}Error", "symptom"),
            Entity(f"cause_{i}", f"Cause{i}Fault", "cause"),
            Entity(f"fix_{i}", f"Fix{i}Patch", "fix"),
            Entity(f"tool_{i}", f"Tool{i}Kit", "tool"),
        ]
        edges += [
            Edge(f"symptom_{i}", "caused_by", f"cause_{i}"),
            Edge(f"cause_{i}", "fixed_by", f"fix_{i}"),
            Edge(f"fix_{i}", "uses_tool", f"tool_{i}"),
            Edge(f"symptom_{i}", "diagnosed_by", f"tool_{(i + 1) % 6}"),
        ]
    return KnowledgeGraph.from_parts(ents, RELATIONS, edges, name="fixture-devops")


def make_task(kg: KnowledgeGraph, i: int, hops: int, split: str, rng: random.Random) -> Task:
    chain = ["caused_by", "fixed_by", "uses_tool"][:hops]
    start = f"symptom_{i}"
    path = [start]
    edges = []
    for rel in chain:
        (nxt,) = kg.successors(path[-1], rel)
        edges.append((path[-1], rel, nxt))
        path.append(nxt)
    answer = path[-1]
    same_type = [e for e in kg.entities if kg.entities[e].type == kg.entities[answer].type and e != answer]
    distractors = rng.sample(same_type, 3)
    letter = LETTERS[i % 4]
    option_ids = dict(zip([x for x in LETTERS if x != letter], distractors, strict=True))
    option_ids[letter] = answer
    option_ids = {k: option_ids[k] for k in LETTERS}
    options = {k: kg.label(v) for k, v in option_ids.items()}
    chain_text = " → ".join(kg.phrase(r) for r in chain)
    question = f"Start at {kg.label(start)} and follow {hops} hop(s): {chain_text}. Which entity do you reach?"
    trace = " ".join(f"{kg.label(h)} {kg.phrase(r)} {kg.label(t)}." for h, r, t in edges)
    prompt = question + "\n\n" + "\n".join(f"{k}) {v}" for k, v in options.items())
    return Task(id=f"{split}-{i:03d}-h{hops}", split=split, hop_len=hops, question=question, options=options,
                answer_star=letter, path_star=PathStar(path, edges), prompt=prompt, start=start,
                relation_chain=chain, option_ids=option_ids, answer_id=answer, reference_trace=trace)


def breakdown(task: Task, kind: str) -> tuple[str, RewardBreakdown]:
    """A completion and its reward for one of: right, wrong_letter, false_hop, garbage."""
    edges = task.path_star.edges
    wrong = next(x for x in LETTERS if x != task.answer_star)
    if kind == "garbage":
        return "I am not sure.", RewardBreakdown("kgreason", False, None, False, 0.0, 0, [], 0, False, 0.0, -2.0)
    hops = [ClaimedHop(h, r, t, True) for h, r, t in edges]
    text = task.reference_trace
    letter = task.answer_star if kind != "wrong_letter" else wrong
    if kind == "false_hop":  # claims the first hop leads to the wrong cause
        h, r, t = edges[0]
        other = t[:-1] + str((int(t[-1]) + 1) % 6)
        hops[0] = ClaimedHop(h, r, other, False)
        text = text.replace(t.replace("cause_", "Cause") + "Fault", other.replace("cause_", "Cause") + "Fault", 1)
    correct = letter == task.answer_star
    valid = sum(h.valid for h in hops)
    faithful = correct and valid == len(hops)
    total = (1.0 if correct else -2.0) + 0.5 * valid / len(hops)
    return f"TRACE: {text}\nANSWER: {letter}", RewardBreakdown(
        "kgreason", True, letter, correct, valid / len(hops), valid, hops, valid, faithful, 0.0, round(total, 3),
        {"answer": 1.0 if correct else -2.0, "path": 0.5 * valid / len(hops)})


# a valid 1x1 PNG, so the report's image can be served and decoded
PNG_1x1 = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
                        "0000000b49444154789c63f80f040009fb03fdfb5e6b2b0000000049454e44ae426082")
KINDS = ("right", "false_hop", "wrong_letter", "garbage")


def references(n: int, hops: tuple[int, ...] = ()) -> dict:
    """The `references` block evaluate.runner writes: the KG oracle and shortcut baselines on the
    same items, overall and by hop; "most_common_letter" is the strongest here."""
    def ci(mean: float, k: int) -> dict:
        return {"mean": mean, "low": max(0.0, mean - 0.3), "high": min(1.0, mean + 0.3), "n": k}

    def iv(mean: float) -> dict:
        by_hop = {str(h): ci(mean, n // max(1, len(hops))) for h in hops}
        return {"accuracy": ci(mean, n), **({"by_hop": by_hop} if hops else {})}

    return {"KG oracle": iv(1.0), "shortcut: type_match": iv(1 / 6), "shortcut: most_common_letter": iv(0.5),
            "shortcut: max_degree": iv(1 / 3)}


def write_run(root: Path, name: str = RUN, n_steps: int = 6, questions_per_step: int = 3,
              model: str = "tiny:random", seed: int = 0, reward_preset: str = "kgreason",
              created: str = "2026-01-01T00:00:00+00:00") -> Path:
    rng = random.Random(seed)
    run = root / name
    kg = build_kg()
    atomic_write_json(run / "data" / "kg.json", kg.to_dict())
    train = [make_task(kg, i, 1 + i % 3, "train", rng) for i in range(6)]
    evals = [make_task(kg, i, 2 + i % 2, "eval", rng) for i in range(6)]
    atomic_write_jsonl(run / "data" / "train_easy.jsonl", [t.to_dict() for t in train])
    atomic_write_jsonl(run / "data" / "eval.jsonl", [t.to_dict() for t in evals])
    # the typed record `kgreason run` writes (kgreason/config.py's RunConfig)
    pipeline = with_overrides(PipelineConfig(), {"model": model, "reward_preset": reward_preset}).seeded()
    atomic_write_json(run / "config.json", {"run": name, "created": created, **RunConfig(
        model_ref=model, reward_preset=reward_preset, dataset_seed=seed, pipeline=pipeline).to_dict()})
    episodes, metrics = [], []
    for step in range(n_steps):
        metrics.append({"phase": "sft", "step": step, "round": 0, "loss": round(2.0 / (1 + step), 4)})
        for q in range(questions_per_step):
            task = train[(step * questions_per_step + q) % len(train)]
            for s in range(K):
                kind = KINDS[(s + step) % len(KINDS)] if step < n_steps - 1 else KINDS[s % 2]
                text, rb = breakdown(task, kind)
                episodes.append(Episode(name, "rsft", step, task.id, task.prompt, text, rb, sample_index=s,
                                        round=step // 3, kept=(s == 0)).to_dict())
        metrics.append({"phase": "rsft", "step": step, "round": step // 3, "reward_mean": 0.1 * step,
                        "accuracy": min(1.0, 0.2 + 0.1 * step),
                        # the held-out probe (kgreason.train.probe) logs beside the reward
                        "probe/accuracy": 0.25 + 0.05 * step, "probe/faithful": 0.1 * step})
    atomic_write_jsonl(run / "episodes.jsonl", episodes)
    atomic_write_jsonl(run / "metrics.jsonl", metrics)
    phases = {}
    for p, phase in enumerate(EVAL_PHASES):
        preds, cells = [], dict.fromkeys(("correct_faithful", "correct_unfaithful", "wrong_faithful", "wrong_unfaithful"), 0)
        for i, task in enumerate(evals):  # phase p answers 2p items right, every other one with a false hop
            kind = ("right" if i % 2 == 0 else "false_hop") if i < p * 2 else ("garbage" if p == 0 else "wrong_letter")
            text, rb = breakdown(task, kind)
            preds.append(Episode(name, phase, 0, task.id, task.prompt, text, rb).to_dict())
            cells[f"{'correct' if rb.correct else 'wrong'}_{'faithful' if rb.faithful else 'unfaithful'}"] += 1
        n_right = min(len(evals), p * 2)
        unreadable = sum(not Episode.from_dict(x).reward.format_ok for x in preds)
        acc = n_right / len(evals)
        by_hop = {str(h): {"mean": acc, "low": max(0.0, acc - 0.2), "high": min(1.0, acc + 0.2), "n": 3} for h in (2, 3)}
        atomic_write_jsonl(run / "eval" / phase / "predictions.jsonl", preds)
        atomic_write_json(run / "eval" / phase / "metrics.json", {
            "run": name, "phase": phase, "n_items": len(evals),
            "accuracy": {"mean": acc, "low": max(0.0, acc - 0.2), "high": min(1.0, acc + 0.2), "n": len(evals)},
            "by_hop": by_hop,
            "confusion": cells,
            # as a percentile bootstrap wrote it before the Wilson interval: collapsed at 6/6 (base)
            "format_failure_rate": {"mean": unreadable / len(evals), "low": unreadable / len(evals),
                                    "high": unreadable / len(evals) if unreadable in (0, len(evals)) else 1.0,
                                    "n": len(evals)},
            "references": references(len(evals))})
        phases[phase] = {"done": True, "accuracy": {"mean": acc, "low": 0, "high": 1, "n": len(evals)},
                         "wall_seconds": 1.5 + p}
    atomic_write_json(run / "summary.json", {"run": name, "phases": phases})
    return run


def write_failed_run(root: Path, winners: int = 0) -> Path:
    """A run that failed the way the quick recipe did on a large lexical KG (issue 28): answers that
    stop after one hop and write a fact, not an option, on the answer line (scored by the real KG
    reward), option names with a gloss in brackets and commas, RSFT rounds with no winners."""
    from kgreason.reward.score import Scorer

    run = write_run(root)
    kg = build_kg()  # the graph write_run saved
    tasks = [Task.from_dict(json.loads(line)) for line in (run / "data" / "eval.jsonl").read_text().splitlines()]
    scorer = Scorer(kg)
    preds = []
    for i, task in enumerate(tasks):
        h, r, t = task.path_star.edges[0]
        first = f"TRACE: 1. {kg.label(h)} {kg.phrase(r)} {kg.label(t)}.\n"
        # half write a fact on the answer line (no option letter), half stop at one hop and pick a wrong letter
        wrong = next(x for x in "ABCD" if x != task.answer_star)
        text = first + (f"ANSWER: {kg.label(t)} is fixed by something" if i % 2 else f"ANSWER: {task.options[wrong]} ({wrong})")
        preds.append(Episode("demo-run", "rsft", 0, task.id, task.prompt, text, scorer.score(task, text)).to_dict())
    atomic_write_jsonl(run / "eval" / "rsft" / "predictions.jsonl", preds)
    # option names as a large lexical KG gives them: a gloss in brackets, commas
    items = [json.loads(line) for line in (run / "data" / "eval.jsonl").read_text().splitlines()]
    for it in items:
        it["options"] = {k: f"{v} (provide with a, {n})" for n, (k, v) in enumerate(it["options"].items())}
    atomic_write_jsonl(run / "data" / "eval.jsonl", items)
    summary = json.loads((run / "summary.json").read_text())
    summary["phases"]["rsft"] = {**summary["phases"]["rsft"], "kind": "train", "rounds": [
        {"round": r, "questions": 64, "mean_pass_rate": rate, "winners": winners,
         "reasons": {"none_eligible": 64 - winners}} for r, rate in ((1, 0.16), (2, 0.23))]}
    atomic_write_json(run / "summary.json", summary)
    return run


def write_experiment(root: Path, name: str = EXPERIMENT) -> Path:
    """An experiment folder: results.json (per arm: accuracy by hop with intervals, the 2x2), report.md."""
    exp = root / name
    arms = []  # the shape kgreason.experiments.report.aggregate writes (schema_version 1)
    for a, arm in enumerate(("easy", "hard", "mixed")):
        by_hop = {str(h): {"mean": round(0.8 - 0.1 * h + 0.05 * a, 3), "low": round(0.7 - 0.1 * h + 0.05 * a, 3),
                           "high": round(0.9 - 0.1 * h + 0.05 * a, 3), "n": 100} for h in range(1, 6)}
        # the hard arm is compared with the easy one (experiments/arms.py's compare_to), so the
        # experiment has one answer sentence (experiments/report.py:answer_sentences)
        compared = {"compare_to": "easy", "vs_compare": {"accuracy": {"diff": 0.05, "low": 0.01, "high": 0.09, "n": 100,
                                                                      "p_value": 0.02}, "by_hop": {}, "seeds": [0, 1]}}
        arms.append({"name": arm, "label": f"RSFT on {arm}", "seeds_done": [0, 1], **(compared if arm == "hard" else {}),
                     "accuracy": {"mean": 0.5 + 0.05 * a, "low": 0.45, "high": 0.6, "n": 500}, "by_hop": by_hop,
                     "faithful_share": {"mean": 0.4 + 0.1 * a, "low": 0.35, "high": 0.65, "n": 500},
                     "drift_kl": {"mean": 0.01 * (a + 1), "per_seed": [0.01 * (a + 1)]},
                     "confusion": {"correct_faithful": 200 + a, "correct_unfaithful": 50, "wrong_faithful": 20,
                                   "wrong_unfaithful": 230 - a}})
        write_run(root, f"{name}/arms/{arm}-s0", n_steps=2, questions_per_step=1)
    atomic_write_json(exp / "results.json", {"experiment": "distribution", "schema_version": 1, "scale": "tiny",
                                             "question": "Which training distribution teaches 4-5 hops?",
                                             "arms": arms, "references": references(100, hops=(1, 2, 3, 4, 5))})
    atomic_write_text(exp / "report.md", "# Distribution experiment\n\nThe hard arm generalises best.\n\n"
                      "| arm | accuracy |\n|---|---|\n| hard | 75.0% |\n\n![accuracy by hop](accuracy_by_hop.png)\n\n"
                      "<script>window.pwned = 1</script>\n")
    (exp / "accuracy_by_hop.png").write_bytes(PNG_1x1)
    return exp


def write_runs_folder(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    write_run(root)
    write_experiment(root)
    return root


# --- a live server for browser tests -------------------------------------------------------------
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class LiveServer:
    """uvicorn serving `create_app(runs, queue)` in a thread on a free port of 127.0.0.1."""

    def __init__(self, runs: Path, queue: object = None) -> None:
        import socket
        import threading

        import uvicorn

        from kgreason.serve.app import create_app

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.runs = runs
        self.app = create_app(runs, queue=queue)  # type: ignore[arg-type]
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        import time

        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the demo server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


# --- models for Try It tests ---------------------------------------------------------------------
def write_adapters(run: Path, phases: tuple[str, ...] = ("sft", "rsft"), ref: str = "tiny:random") -> list[Path]:
    """Real (untrained, randomly initialised) LoRA adapters over `ref` in run/adapters/<phase>, so
    Try It offers base, sft and rsft models and each loads as a different model."""
    import torch

    from kgreason.models import load_model
    from kgreason.models.lora import attach_lora, save_adapter

    out = []
    for i, phase in enumerate(phases):
        model, _ = load_model(ref)
        peft = attach_lora(model, r=4, alpha=8)
        with torch.no_grad():  # LoRA's B starts at zero; make each adapter change the model
            for name, param in peft.named_parameters():
                if "lora_B" in name:
                    param.normal_(0.0, 0.02 * (i + 1))
        out.append(save_adapter(peft, run / "adapters" / phase, base_ref=ref))
    return out


class ScriptedModel:
    """Stands in for a transformers model in Try It tests: `generate` streams the tokens of `text`
    through the streamer the queue hands it, one every `delay_s`, and stops when a stopping
    criterion says so (the answer rule or a cancellation), as transformers' generate does.

    With a `gate` (a threading.Event) that is not set, each answer holds after its first `hold_at`
    tokens (several words: the streamer sends text a word at a time) until the test sets the gate,
    still answering a cancellation: a test looks at the page mid-answer for as long as it needs,
    without a slow stream to race against."""

    def __init__(self, text: str, delay_s: float = 0.0, repeat: int = 1, gate=None, hold_at: int = 12) -> None:
        self.text = text
        self.delay_s = delay_s
        self.repeat = repeat
        self.gate = gate
        self.hold_at = hold_at
        self.tokens_streamed = 0
        self.stopped_early = False

    def generate(self, input_ids, streamer=None, max_new_tokens: int = 16, stopping_criteria=None, **_kw):
        import time

        import torch

        from kgreason.models.tiny import bundled_tokenizer

        def stop(seq) -> bool:
            return stopping_criteria is not None and bool(stopping_criteria[0](seq, None).all())

        ids = bundled_tokenizer()(self.text * self.repeat, add_special_tokens=False)["input_ids"]
        streamer.put(input_ids)  # generate hands the prompt over first; skip_prompt drops it
        seq = input_ids
        deadline = time.monotonic() + 60  # a test that fails while the gate is clear frees this call by then
        try:
            for made, tok in enumerate(ids[:max_new_tokens], start=1):
                time.sleep(self.delay_s)
                step = torch.tensor([[tok]])
                seq = torch.cat([seq, step], dim=1)
                streamer.put(step[0])
                self.tokens_streamed += 1
                if stop(seq):
                    self.stopped_early = True
                    break
                if self.gate is not None and made >= self.hold_at:
                    while not self.gate.wait(0.02) and time.monotonic() < deadline:
                        if stop(seq):  # a cancellation while held
                            self.stopped_early = True
                            return seq
        finally:
            streamer.end()
        return seq


def scripted_loader(text: str, delay_s: float = 0.0, repeat: int = 1, gate=None):
    """A `GenerationQueue(load=...)` function giving every model a `ScriptedModel` and the real
    SmolLM2 tokenizer; the models made are kept in `.models` for the test to inspect."""
    from kgreason.models.tiny import bundled_tokenizer

    made: list[ScriptedModel] = []

    def load(spec):
        model = ScriptedModel(text, delay_s, repeat, gate)
        made.append(model)
        tok = bundled_tokenizer()
        tok.padding_side = "left"
        return model, tok

    load.models = made  # type: ignore[attr-defined]
    return load
