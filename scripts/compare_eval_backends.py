"""Greedy answers of one trained phase on a run's held-out items, decoded by each sampling backend
(hf: kgreason's own loop; openvino: OpenVINO GenAI), timed and compared with the run's stored
evaluation of that phase (eval/<phase>/predictions.jsonl, written by the run's eval backend).

    python scripts/compare_eval_backends.py runs/quick sft [--backends openvino,hf] [--max-new-tokens 128]
    python scripts/compare_eval_backends.py runs/quick-ov rsft --backends hf --weights-f16

Prints one JSON line per backend: load and generation seconds, generated tokens per second, how
many texts and answer letters equal the stored evaluation's (and the first backend's), and
accuracy. Run it alone: two torch jobs at once on a 2-core CPU slow each other several times.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("phase")
    ap.add_argument("--backends", default="openvino,hf")
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=64, help="rows of the hf backend")
    ap.add_argument("--weights-f16", action="store_true",
                    help="round the merged weights to half precision first (what the OpenVINO backend's f16 GGUF "
                         "holds): tells rounding apart from the engine's kernels")
    args = ap.parse_args()

    import torch

    from kgreason.evaluate.runner import merged_for_sampling
    from kgreason.hardware import cpu_line
    from kgreason.models import load_model
    from kgreason.models.lora import read_adapter_base
    from kgreason.records import Task
    from kgreason.reward.parse import parse_completion
    from kgreason.sampling import SamplingParams, get_sampler
    from kgreason.tasks.format import chat_messages

    tasks = [Task.from_dict(json.loads(line)) for line in (args.run / "data" / "eval.jsonl").open()]
    if any(t.family != "multiple_choice" for t in tasks):  # letters are compared below
        raise SystemExit("compare_eval_backends: multiple-choice items only; this run's are free-form")
    stored = {}
    for line in (args.run / "eval" / args.phase / "predictions.jsonl").open():
        rec = json.loads(line)
        stored.setdefault(rec["task_id"], rec)
    adapter = args.run / "adapters" / args.phase
    model, tok = load_model(read_adapter_base(adapter), adapter=adapter, dtype=torch.float32)
    if args.weights_f16:
        model = model.merge_and_unload()  # the GGUF rounds the merged weights, not base and adapter apart
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.half().float())
    items = [(t.id, chat_messages(t)) for t in tasks]
    params = SamplingParams(k=1, temperature=0.0, max_new_tokens=args.max_new_tokens)
    print(json.dumps({"cpu": cpu_line(), "run": str(args.run), "phase": args.phase, "items": len(items)}))
    first: tuple[str, list] | None = None  # the first backend's letters, for the others to compare with
    for name in args.backends.split(","):
        start = time.perf_counter()
        sampler = get_sampler(model, tok, backend=name, batch_size=args.batch_size)
        load_s = time.perf_counter() - start
        start = time.perf_counter()
        with merged_for_sampling(model):
            done = sampler.generate(items, params, progress=False)
        gen_s = time.perf_counter() - start
        if hasattr(sampler, "close"):
            sampler.close()
        letters = [parse_completion(c.text, t.options).answer for c, t in zip(done, tasks, strict=True)]
        tokens = sum(c.completion_tokens for c in done)
        versus = {} if first is None else {
            f"same_letter_as_{first[0]}": sum(a == b for a, b in zip(letters, first[1], strict=True))}
        first = first or (name, letters)
        print(json.dumps({
            "backend": name + ("-weights-f16" if args.weights_f16 else ""), "load_s": round(load_s, 1), "gen_s": round(gen_s, 1), "tokens": tokens,
            "tokens_per_s": round(tokens / gen_s, 1),
            "same_text": sum(c.text.strip() == stored[c.task_id]["completion"].strip() for c in done),
            "same_letter": sum(a == stored[c.task_id]["reward"]["answer"] for a, c in zip(letters, done, strict=True)),
            "accuracy": round(sum(a == t.answer_star for a, t in zip(letters, tasks, strict=True)) / len(tasks), 4),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, **versus,
        }), flush=True)


if __name__ == "__main__":
    main()
