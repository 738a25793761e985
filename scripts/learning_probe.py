"""Learning probes behind docs/learning.md: SFT (LoRA) on 1-3 hop questions, optionally one
RSFT round on the hard pool, then greedy accuracy on held-out 4-5 hop items and on training items.

    python scripts/learning_probe.py sft  --data DIR --out OUT --steps 40 [--init ADAPTER --offset 320]
    python scripts/learning_probe.py rsft --data DIR --out OUT --init ADAPTER --questions 64 --temperature 0.5
    python scripts/learning_probe.py eval --data DIR --out OUT --init ADAPTER --n-eval 100
    python scripts/learning_probe.py sft  --data CLOSED --out OUT --init FACTS_ADAPTER --replay-facts --steps 60

DIR is a `kgreason tasks generate` folder (with kg.json copied into it); closed book, --replay-facts
keeps training on the facts (scripts/fact_recall_curve.py trains FACTS_ADAPTER) beside the questions. It uses only the
package's public functions (train_lora, run_rsft, evaluate_model), so a probe measures exactly what
`kgreason run` would do with the same settings; it exists to try settings faster than a whole run.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path


def evaluate(data: Path, out: Path, adapter: Path | None, n_eval: int, max_new: int) -> None:
    from kgreason.evaluate.runner import evaluate_model
    from kgreason.kg.kgjson import load_kg
    from kgreason.models import load_model
    from kgreason.tasks.generate import load_tasks

    kg = load_kg(data / "kg.json")
    for split, n in (("eval", n_eval), ("train_easy", 40)):
        t0 = time.time()
        model, tok = load_model("bundled:smollm2-135m", adapter=adapter, merge=adapter is not None)
        m = evaluate_model(model, tok, load_tasks(data / f"{split}.jsonl"), kg, out_dir=out / f"ev_{split}",
                           max_items=n, shuffle=False, drift=False, references=False, plots=False,
                           max_new_tokens=max_new, batch_size=16, progress=False)
        acc = m["accuracy"]
        print(f"{split}: accuracy {acc['mean']:.3f} [{acc['low']:.3f}, {acc['high']:.3f}] by hop "
              f"{ {h: round(v['mean'], 2) for h, v in m['by_hop'].items()} } faithful "
              f"{m['trace']['faithful_share']['mean']:.3f} format failures {m['format_failure_rate']['mean']:.3f} "
              f"({time.time() - t0:.0f} s)", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=["sft", "rsft", "eval"])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--init", type=Path, default=None, help="adapter to start from / evaluate")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--offset", type=int, default=0, help="skip this many shuffled training items (a next pass)")
    p.add_argument("--replay-facts", action="store_true",
                   help="sft: train on the data folder's fact material too (closed book: keep the facts learned); "
                        "then one pass over the --steps x --batch-size questions and the facts sets the steps")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--questions", type=int, default=64)
    p.add_argument("--temperature", type=float, default=0.5)
    p.add_argument("--keep", type=int, default=2)
    p.add_argument("--n-eval", type=int, default=100)
    p.add_argument("--max-new", type=int, default=128)
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    adapter = a.init
    if a.what == "sft":
        from kgreason.tasks.generate import load_tasks
        from kgreason.train.sft import TrainOptions, question_examples, train_lora

        tasks = load_tasks(a.data / "train_easy.jsonl")
        random.Random(0).shuffle(tasks)
        examples = question_examples(tasks[a.offset: a.offset + a.steps * a.batch_size])
        if a.replay_facts:
            from kgreason.io import read_jsonl
            from kgreason.tasks.build import data_layout
            from kgreason.train.sft import fact_examples

            facts = a.data / data_layout(a.data).files["facts"]
            examples += fact_examples(read_jsonl(facts), facts)
            random.Random(1).shuffle(examples)
        t0 = time.time()
        # with --replay-facts: one pass over the steps x batch-size questions and the facts, shuffled
        opts = TrainOptions(max_steps=0 if a.replay_facts else a.steps, epochs=1.0, batch_size=a.batch_size,
                            learning_rate=a.lr, max_length=512,
                            save_steps=10_000, logging_steps=5)
        res = train_lora("bundled:smollm2-135m", examples, a.out / "adapter", opts, init_adapter=adapter)
        print(f"sft: {res.steps} steps in {time.time() - t0:.0f} s, loss {res.train_loss}", flush=True)
        adapter = a.out / "adapter"
    elif a.what == "rsft":
        from kgreason.kg.kgjson import load_kg
        from kgreason.runs.folder import Run
        from kgreason.train.rsft import RSFTOptions, run_rsft
        from kgreason.train.sft import TrainOptions

        opts = RSFTOptions(rounds=1, k=4, questions=a.questions, distribution="hard", faithful_only=True,
                           keep=a.keep, temperature=a.temperature, max_new_tokens=a.max_new, chunk=16,
                           train=TrainOptions(max_steps=0, epochs=2.0, batch_size=8, learning_rate=2e-4,
                                              max_length=512, save_steps=10_000, logging_steps=1))
        with Run.create_or_resume(a.out / "run", {"probe": "rsft"}) as run:
            info = run_rsft(run, "bundled:smollm2-135m", a.data, opts, init_adapter=adapter,
                            kg=load_kg(a.data / "kg.json"))
        print(f"rsft: rounds {[(r['mean_pass_rate'], r['winners']) for r in info['rounds']]}", flush=True)
        adapter = a.out / "run" / info["adapter"] if info.get("adapter") else adapter
    evaluate(a.data, a.out, adapter, a.n_eval, a.max_new)


if __name__ == "__main__":
    main()
