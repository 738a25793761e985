"""Fact recall against epochs (issue 23's first curve): how long a 135M model takes to hold the graph.

    python scripts/fact_recall_curve.py --data runs/quick/data --method lora --epochs 8 --out runs/recall/lora.jsonl
    python scripts/fact_recall_curve.py --data runs/quick/data --method full --epochs 8 --out runs/recall/full.jsonl

Trains on the fact material exactly as `kgreason train sft --material facts` builds it (one example
per (head, relation), every tail listed: kgreason.tasks.facts) with the SFT fast path (the token-
budget trainer), LoRA (rank --lora-r on every linear layer) or full fine-tuning, at a constant
learning rate after warm-up (so the recall after epoch e is what e epochs buy, not a point on a
schedule that depends on the total). Before training and after every epoch it asks every
(head, relation) greedily (kgreason.evaluate.recall) and appends one JSON line: epoch, step, training
seconds so far (recall passes excluded), recall over all facts and over the facts the held-out
items' gold paths use. An interrupted curve is rerun from the start into a new file (an existing one is refused). The
model after the last epoch is saved beside --out (OUT without its suffix).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="a data folder with facts.jsonl and eval.jsonl")
    ap.add_argument("--method", choices=("lora", "full"), default="lora")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--lr", type=float, default=None, help="default: 1e-3 for LoRA, 1e-4 for full fine-tuning")
    ap.add_argument("--lora-r", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--model", default="bundled:smollm2-135m")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    if args.out.exists() and args.out.stat().st_size:
        raise SystemExit(f"{args.out} already holds a curve; give another --out (rows are appended, and two runs "
                         "would mix in one file)")

    from datasets import Dataset
    from transformers import TrainerCallback

    from kgreason.config import LoraOptions, TrainOptions
    from kgreason.evaluate.recall import answer_queries, eval_path_edges, fact_recall, load_queries
    from kgreason.hardware import cpu_line
    from kgreason.io import read_jsonl
    from kgreason.models import load_model
    from kgreason.tasks.build import data_layout
    from kgreason.train.sft import (
        WIDTH_MULTIPLE,
        budget_trainer_class,
        completion_lm_head_forward,
        fact_examples,
        sft_config,
    )

    lr = args.lr if args.lr is not None else (1e-3 if args.method == "lora" else 1e-4)
    facts_path = args.data / data_layout(args.data).files["facts"]
    examples = fact_examples(read_jsonl(facts_path), facts_path)
    queries, hops = load_queries(args.data), eval_path_edges(args.data)
    options = TrainOptions(max_steps=0, epochs=float(args.epochs), learning_rate=lr, batch_size=args.batch_size,
                           seed=args.seed, save_steps=10**9, logging_steps=10**9,
                           lora=LoraOptions(r=args.lora_r))
    model, tokenizer = load_model(args.model, dtype=options.dtype, trainable=True)
    tokenizer.padding_side = "right"
    out_dir = args.out.with_suffix("")
    config = sft_config(out_dir, options, len(examples), pad_multiple=WIDTH_MULTIPLE)
    config.lr_scheduler_type = "constant_with_warmup"
    config.save_strategy = "no"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cpu = cpu_line()

    class RecallEveryEpoch(TrainerCallback):
        def __init__(self) -> None:
            self.train_s, self.mark = 0.0, time.perf_counter()

        def record(self, model, epoch: float, step: int) -> None:
            self.train_s += time.perf_counter() - self.mark
            t0 = time.perf_counter()
            answers = answer_queries(model, tokenizer, queries, rows=64)
            recall = fact_recall(answers, queries, hops)
            row = {"method": args.method, "lora_r": args.lora_r if args.method == "lora" else None, "lr": lr,
                   "epoch": round(epoch, 3), "step": step, "train_s": round(self.train_s, 1),
                   "recall_s": round(time.perf_counter() - t0, 1), "cpu": cpu, **recall,
                   "examples": {k: answers[k] for k in list(answers)[:3]}}
            with args.out.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"epoch {epoch:.0f}: recall all {recall['all']['edge_recall']:.3f} (exact "
                  f"{recall['all']['exact']:.3f}, precision {recall['all']['precision']:.3f}), eval paths "
                  f"{recall['eval_path_edges']['edge_recall']:.3f}; {self.train_s:.0f} s training", flush=True)
            self.mark = time.perf_counter()

        def on_train_begin(self, a, state, control, model=None, **kw):
            self.record(model, 0, 0)

        def on_epoch_end(self, a, state, control, model=None, **kw):
            self.record(model, float(state.epoch), int(state.global_step))

    trainer = budget_trainer_class()(
        model=model, args=config,
        train_dataset=Dataset.from_list([{"prompt": e["prompt"], "completion": e["completion"]} for e in examples]),
        processing_class=tokenizer,
        peft_config=options.lora.peft_config() if args.method == "lora" else None,
        callbacks=[RecallEveryEpoch()],
    )
    trainer.token_budget = options.micro_batch_tokens
    completion_lm_head_forward(trainer.model)
    trainer.train()
    trainer.save_model(str(out_dir))  # the adapter (LoRA) or the weights (full) after the last epoch
    if args.method == "lora":
        from kgreason.train.sft import name_base_in_adapter

        name_base_in_adapter(out_dir, args.model)


if __name__ == "__main__":
    main()
