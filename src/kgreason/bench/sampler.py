"""`kgreason bench sampler`: our sampler against what a user would otherwise run, same prompts, one run.

Rows (each in its own child process, one at a time, so each `peak_rss_mb` is that process's own
high-water mark: Python + torch + the model + the generation, not a delta):
  hf-generate  Hugging Face's batched `model.generate`: `prompts_per_call` = rows // k prompts per
               call, left padded, sorted by length (as our sampler is), `num_return_sequences=k`,
               do_sample, top_k=0 (transformers would otherwise default to 50; ours samples the full
               distribution), one row per `--hf-cache` setting (dynamic = transformers' default cache,
               static = `cache_implementation="static"`). With `--hf-stop answer` (the default) it gets
               our stop rule as a StoppingCriteria built on kgreason.sampling.base's answer-line
               check; with `none` it stops at eos or max_new_tokens only.
  ours         `get_sampler(model, tok, backend="hf")` at its defaults (shared prefill across k,
               continuous batching, preallocated KV cache, stop at the answer line).
  openvino     OpenVINO GenAI's batched `LLMPipeline.generate` (kgreason.sampling.openvino_backend):
               the merged model written as an f16 GGUF, kgreason's token ids handed over, every
               prompt x k in one call, in fp32 as the backend runs it (the engine's own bf16 changed
               the answers on an AMX CPU: sampling/openvino_backend.py); it
               stops at eos or max_new_tokens, the answer-line cut applied to its text after.
  ctranslate2  optional (not a dependency): the merged model saved as an HF folder, converted with
               `ctranslate2.converters.TransformersConverter`, sampled with `Generator.generate_batch`
               (each prompt repeated k times, full-distribution sampling, our stop rule in the
               per-token callback). Skipped with the reason when the package is missing or the
               conversion fails.
  naive        `--naive`: the hobby project's loop, one `generate` per sample, fp32, same stop rule
               as hf-generate; on `--naive-prompts` prompts only (it is slow).
Every row uses the same prompts (except naive's subset), k, temperature, max_new_tokens and seed,
and the same dtype (naive: fp32; ctranslate2: its compute type). Each child runs a short warm-up
generation first. Generated tokens are counted as our sampler counts them: up to eos or the end of
the answer line (a token decoded past the line is trimmed), so tokens/s and samples/s compare
useful work; padding, and the finished rows HF keeps computing until its whole call is done, count
as time only.

The limit: the best sustained matmul FLOP/s among probes (kgreason.bench.harness.probe_limit) at the
model's own shapes with 64 rows (a decoding step of 8 prompts x k=8) and 2,048 rows (saturating),
in bf16 and fp32. `share_of_limit` = generated tokens/s x 2 x N / limit, N = parameters in matmuls
(LM head included; attention scores left out). `prefill_share_of_limit` counts each prompt's
tokens once too ((unique prompt + generated tokens)/s x 2N / limit), the least work any row must do.

Where our time goes: in the last round, ours generates once more under torch.profiler, in the same
process after its timed run (whose time and peak RSS are read first: the profiler's records would
inflate both; a process of its own would cost one more start-up). Its matmul and
attention kernel seconds give `step_time_split`, `matmul_bound_share` (share_of_limit if everything
but the matmuls, as this CPU runs them inside the generation, cost nothing) and `kernel_bound_share`
(the attention kernels counted too).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kgreason.sampling.base import eos_ids

if TYPE_CHECKING:
    import torch

ROWS = ("hf-generate", "ours", "openvino", "ctranslate2", "naive")
HF_CACHES = ("dynamic", "static")
# As kgreason.sampling.hf: trailing tokens decoded when looking for the answer line.
_ANSWER_WINDOW = 48


# --- prompts -------------------------------------------------------------------------------------
def bench_items(n_prompts: int, tasks: str | None, mode: str = "open") -> list[tuple[str, list[dict]]]:
    """Eval-style prompts: from a task file, else the held-out eval split (4-5 hops, open-book: the
    facts are in the prompt) generated from the built-in KG."""
    from kgreason.tasks.format import chat_messages

    if tasks:
        from kgreason.tasks.generate import load_tasks

        chosen = load_tasks(Path(tasks))[:n_prompts]
        from kgreason.families import DEFAULT_FAMILY, family_of_tasks
        from kgreason.io import InputError

        family = family_of_tasks(chosen)
        if family != DEFAULT_FAMILY:
            # every row's stop rule (hf generate's criteria, ours, the engines') is multiple choice's
            raise InputError(f"{tasks}: the sampler bench stops at multiple-choice answer lines; these items are "
                             f"{family}")
    else:
        from dataclasses import replace

        from kgreason.kg.builtin import build_devops_kg
        from kgreason.tasks.generate import DEFAULT_SPLITS, TaskConfig, generate

        # Only as many eval items as asked, the training splits kept small: the full default
        # dataset takes ~30 s to generate, and the prompts' form does not depend on those sizes.
        splits = tuple(replace(s, size=n_prompts if s.name == "eval" else min(s.size, 8)) for s in DEFAULT_SPLITS)
        made = generate(build_devops_kg(seed=0), TaskConfig(seed=0, mode=mode, splits=splits), with_facts=False)
        pool = made.splits.get("eval") or [t for ts in made.splits.values() for t in ts]
        chosen = pool[:n_prompts]
    return [(t.id, chat_messages(t)) for t in chosen]


def encode(tokenizer: Any, messages: list[dict]) -> list[int]:
    """The prompt as our sampler encodes it (kgreason.sampling.base.encode_prompt)."""
    from kgreason.sampling.base import encode_prompt

    return encode_prompt(tokenizer, messages)


def has_answer_line(tokenizer: Any, tokens: list[int]) -> bool:
    """Our stop rule on a generation so far, exactly as HFSampler applies it."""
    from kgreason.sampling.base import window_has_answer_line

    return window_has_answer_line(tokenizer.decode(tokens[-_ANSWER_WINDOW:]), whole=len(tokens) <= _ANSWER_WINDOW)


def counted_tokens(tokenizer: Any, tokens: list[int], finish: str) -> int:
    """Generated tokens as HFSampler reports them: a sample stopped at its answer line keeps only the
    tokens of the text up to the end of that line (the rule may decide a token past it)."""
    if finish != "answer":
        return len(tokens)
    from kgreason.sampling.base import trim_after_answer

    text = tokenizer.decode(tokens, skip_special_tokens=True)
    trimmed = trim_after_answer(text)
    return len(tokens) if trimmed == text else len(tokenizer(trimmed, add_special_tokens=False)["input_ids"])


def finish_of(tokenizer: Any, tokens: list[int], eos: set[int], stop: bool) -> tuple[list[int], str]:
    """Cut a generation where our sampler would have stopped it: first eos, or the answer line."""
    for n in range(1, len(tokens) + 1):
        if tokens[n - 1] in eos:
            return tokens[:n], "eos"
        if stop and has_answer_line(tokenizer, tokens[:n]):
            return tokens[:n], "answer"
    return tokens, "length"


# --- the rows (each runs in a child process) -----------------------------------------------------
def _answer_stop(tokenizer: Any, prompt_width: int, eos: set[int]) -> Any:
    """A transformers StoppingCriteria: a row is done at eos or once its answer line is complete.

    Finished rows are remembered so each row is decoded only while it runs (as in our sampler);
    transformers keeps computing them, padded, until every row of the call is done.
    """
    import torch
    from transformers import StoppingCriteria

    class AnswerLineStop(StoppingCriteria):
        def __init__(self) -> None:
            self.done: set[int] = set()

        def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
            out = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
            for r in range(input_ids.shape[0]):
                if r not in self.done:
                    tokens = input_ids[r, prompt_width:].tolist()
                    if tokens and (tokens[-1] in eos or has_answer_line(tokenizer, tokens)):
                        self.done.add(r)
                out[r] = r in self.done
            return out

    return AnswerLineStop()


def _hf_generate(model: Any, tokenizer: Any, prompts: list[list[int]], k: int, temperature: float,
                 max_new_tokens: int, cache: str, stop: bool) -> list[list[int]]:
    """One batched `generate` call: k samples of each prompt, their generated token ids (row-major)."""
    import torch
    from transformers import StoppingCriteriaList

    width = max(len(p) for p in prompts)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    ids = torch.full((len(prompts), width), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, p in enumerate(prompts):  # left padding, as decoder-only batched generation needs
        ids[i, width - len(p):], mask[i, width - len(p):] = torch.tensor(p), 1
    sampling = {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0} if temperature > 0 \
        else {"do_sample": False}
    criteria = StoppingCriteriaList([_answer_stop(tokenizer, width, eos_ids(model, tokenizer))]) if stop else None
    with torch.inference_mode():
        out = model.generate(input_ids=ids.to(model.device), attention_mask=mask.to(model.device),
                             num_return_sequences=k, max_new_tokens=max_new_tokens, pad_token_id=pad,
                             cache_implementation=None if cache == "dynamic" else cache,
                             stopping_criteria=criteria, **sampling)
    return [row[width:].tolist() for row in out]


def _tally(tokenizer: Any, generations: list[list[int]], eos: set[int], stop: bool) -> tuple[int, Counter]:
    tokens, finishes = 0, Counter()
    for gen in generations:
        kept, finish = finish_of(tokenizer, gen, eos, stop)
        tokens += counted_tokens(tokenizer, kept, finish)
        finishes[finish] += 1
    return tokens, finishes


def row_hf_generate(spec: dict, model: Any, tok: Any, prompts: list[list[int]]) -> dict:
    import torch

    k, rows = spec["k"], spec["rows_per_call"]
    per_call = max(1, rows // k)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # as ours: less padding
    stop = spec["hf_stop"] == "answer"
    temperature, cache = spec["temperature"], spec["cache"]
    _hf_generate(model, tok, prompts[:1], 1, temperature, 4, cache, stop)  # warm-up
    torch.manual_seed(spec["seed"])
    generations: list[list[int]] = []
    start = time.perf_counter()
    for c in range(0, len(order), per_call):
        generations += _hf_generate(model, tok, [prompts[i] for i in order[c : c + per_call]], k, temperature,
                                    spec["max_new_tokens"], cache, stop)
    seconds = time.perf_counter() - start
    tokens, finishes = _tally(tok, generations, eos_ids(model, tok), stop)
    return {"samples": len(generations), "tokens": tokens, "seconds": seconds, "finish": dict(finishes),
            "prompts_per_call": per_call, "cache": spec["cache"], "stop": spec["hf_stop"]}


def row_naive(spec: dict, model: Any, tok: Any, prompts: list[list[int]]) -> dict:
    """One `generate` per sample (batch of one row), as the hobby project sampled for RSFT."""
    import torch

    stop = spec["hf_stop"] == "answer"
    temperature = spec["temperature"]
    _hf_generate(model, tok, prompts[:1], 1, temperature, 4, "dynamic", stop)  # warm-up
    torch.manual_seed(spec["seed"])
    generations: list[list[int]] = []
    start = time.perf_counter()
    for p in prompts:
        for _ in range(spec["k"]):
            generations += _hf_generate(model, tok, [p], 1, temperature, spec["max_new_tokens"], "dynamic", stop)
    seconds = time.perf_counter() - start
    tokens, finishes = _tally(tok, generations, eos_ids(model, tok), stop)
    return {"samples": len(generations), "tokens": tokens, "seconds": seconds, "finish": dict(finishes),
            "stop": spec["hf_stop"]}


def _ours(spec: dict, model: Any, tok: Any) -> tuple[Any, Any]:
    """Our sampler and the row's sampling parameters (the timed run and the profiled one alike)."""
    from kgreason.sampling import SamplingParams, get_sampler

    sampler = get_sampler(model, tok, backend="hf", batch_size=spec["batch_size"])
    return sampler, SamplingParams(k=spec["k"], temperature=spec["temperature"],
                                   max_new_tokens=spec["max_new_tokens"], seed=spec["seed"])


def row_ours(spec: dict, model: Any, tok: Any, items: list[tuple[str, list[dict]]]) -> dict:
    from kgreason.sampling import SamplingParams

    sampler, params = _ours(spec, model, tok)
    sampler.generate(items[:1], SamplingParams(k=1, temperature=0, max_new_tokens=4), progress=False)  # warm-up
    start = time.perf_counter()
    done = sampler.generate(items, params, progress=False)
    seconds = time.perf_counter() - start
    return {"samples": len(done), "tokens": sum(c.completion_tokens for c in done), "seconds": seconds,
            "finish": dict(Counter(c.finish_reason for c in done)), "batch_rows": sampler.batch_size}


def profile_ours(spec: dict, model: Any, tok: Any, items: list[tuple[str, list[dict]]]) -> dict:
    """Our row's generation once more, under torch.profiler: its kernel times."""
    import torch

    from kgreason.bench.harness import kernel_times

    sampler, params = _ours(spec, model, tok)
    # the profiler is entered before the clock starts: its start-up is not timed
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
        start = time.perf_counter()
        done = sampler.generate(items, params, progress=False)
        seconds = time.perf_counter() - start
    return {"tokens": sum(c.completion_tokens for c in done), "wall_s": round(seconds, 3), **kernel_times(profiler)}


def row_openvino(spec: dict, model: Any, tok: Any, items: list[tuple[str, list[dict]]]) -> dict:
    """OpenVINO GenAI (kgreason.sampling.openvino_backend): the merged model written as GGUF, the
    prompts handed over as kgreason's token ids, one batched `generate` for every prompt x k."""
    from kgreason.sampling import SamplingParams
    from kgreason.sampling.openvino_backend import OpenVINOSampler, openvino_available

    if not openvino_available():
        return {"skipped": "openvino-genai is not installed (pip install openvino-genai)"}
    start = time.perf_counter()
    sampler = OpenVINOSampler(model, tok)
    load_s = time.perf_counter() - start
    try:
        sampler.generate(items[:1], SamplingParams(k=1, temperature=0, max_new_tokens=4), progress=False)  # warm-up
        params = SamplingParams(k=spec["k"], temperature=spec["temperature"], max_new_tokens=spec["max_new_tokens"],
                                seed=spec["seed"])
        start = time.perf_counter()
        done = sampler.generate(items, params, progress=False)
        seconds = time.perf_counter() - start
    finally:
        sampler.close()
    import openvino_genai

    return {"samples": len(done), "tokens": sum(c.completion_tokens for c in done), "seconds": seconds,
            "finish": dict(Counter(c.finish_reason for c in done)), "load_s": round(load_s, 1),
            "openvino_genai": openvino_genai.__version__}


def ct2_compute_type(requested: str, dtype: str) -> str:
    """CTranslate2's compute type: as asked, else bf16 where its CPU build supports it and we run bf16."""
    import ctranslate2

    if requested != "auto":
        return requested
    supported = ctranslate2.get_supported_compute_types("cpu")
    return "bfloat16" if dtype == "bf16" and "bfloat16" in supported else "float32"


def row_ctranslate2(spec: dict, holder: list, tok: Any, prompts: list[list[int]], eos: set[int]) -> dict:
    """`holder` is [model]: emptied once the model is saved, so only CTranslate2's copy stays loaded."""
    import gc

    import torch

    from kgreason.runs.folder import peak_rss_mb

    try:
        import ctranslate2
    except ImportError:
        return {"skipped": "ctranslate2 is not installed (pip install ctranslate2; optional, not a dependency)"}
    compute = ct2_compute_type(spec["ct2_compute_type"], spec["dtype"])
    with tempfile.TemporaryDirectory(prefix="kgreason-bench-ct2-") as tmp:
        hf_dir, ct2_dir = Path(tmp) / "hf", Path(tmp) / "ct2"
        holder.pop().save_pretrained(hf_dir)  # the merged model (adapter folded in), as a plain HF folder
        tok.save_pretrained(hf_dir)
        gc.collect()
        try:
            start = time.perf_counter()
            ctranslate2.converters.TransformersConverter(str(hf_dir)).convert(str(ct2_dir), quantization=compute)
            convert_s = time.perf_counter() - start
        except Exception as exc:  # e.g. an architecture or a tied embedding the converter rejects
            return {"skipped": f"conversion failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}"}
        gc.collect()
        generator = ctranslate2.Generator(str(ct2_dir), device="cpu", compute_type=compute,
                                          intra_threads=torch.get_num_threads())
    # The row's peak RSS starts here: the HF model and the converter's own peak are not CT2's cost.
    peak_rss_mb(reset=True)
    stop = spec["hf_stop"] == "answer"
    k, rows = spec["k"], spec["rows_per_call"]
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    strings = {i: tok.convert_ids_to_tokens(prompts[i]) for i in order}
    sampling = ({"sampling_topk": 0, "sampling_temperature": spec["temperature"]} if spec["temperature"] > 0
                else {"sampling_topk": 1})
    end = [tok.convert_ids_to_tokens(e) for e in sorted(eos)]

    def run(batch: list[list[str]], max_new: int) -> list[list[int]]:
        got: list[list[int]] = [[] for _ in batch]

        def step(result: Any) -> bool:  # our stop rule, per sample (one batch index each)
            tokens = got[result.batch_id]
            tokens.append(result.token_id)
            return stop and has_answer_line(tok, tokens)

        generator.generate_batch(batch, max_length=max_new, include_prompt_in_result=False, end_token=end,
                                 return_end_token=True, callback=step, **sampling)
        return got

    run([strings[order[0]]], 4)  # warm-up
    ctranslate2.set_random_seed(spec["seed"])
    generations: list[list[int]] = []
    start = time.perf_counter()
    for c in range(0, len(order) * k, rows):  # each prompt k times, `rows` rows per call
        flat = [strings[order[r // k]] for r in range(c, min(c + rows, len(order) * k))]
        generations += run(flat, spec["max_new_tokens"])
    seconds = time.perf_counter() - start
    tokens, finishes = _tally(tok, generations, eos, stop)
    return {"samples": len(generations), "tokens": tokens, "seconds": seconds, "finish": dict(finishes),
            "compute_type": compute, "convert_s": round(convert_s, 1), "stop": spec["hf_stop"],
            "ctranslate2": ctranslate2.__version__}


def time_row(spec: dict) -> dict:
    """Load the model as the row needs it and time the row; adds prompt tokens and peak RSS."""
    from kgreason.models import load_model
    from kgreason.models.dtype import dtype_name
    from kgreason.runs.folder import peak_rss_mb

    items = [tuple(x) for x in json.loads(Path(spec["items"]).read_text(encoding="utf-8"))]
    if spec["row"] == "naive":
        items = items[: spec["naive_prompts"]]
    # ct2 converts from fp32; the OpenVINO backend runs the engine in fp32 (its bf16 changed answers)
    dtype = {"naive": "fp32", "ctranslate2": "fp32", "openvino": "fp32"}.get(spec["row"], spec["dtype"])
    model, tok = load_model(spec["model"], adapter=spec.get("adapter"), dtype=dtype, merge=True)
    prompts = [encode(tok, messages) for _, messages in items]
    if spec["row"] == "ours":
        out = row_ours(spec, model, tok, items)
    elif spec["row"] == "openvino":
        out = row_openvino(spec, model, tok, items)
    elif spec["row"] == "hf-generate":
        out = row_hf_generate(spec, model, tok, prompts)
    elif spec["row"] == "naive":
        out = row_naive(spec, model, tok, prompts)
    else:
        eos = eos_ids(model, tok)
        holder = [model]
        del model
        return {"row": spec["row"], "prompts": len(items), "prompt_tokens": sum(map(len, prompts)),
                **row_ctranslate2(spec, holder, tok, prompts, eos), "peak_rss_mb": peak_rss_mb()}
    out["dtype"] = dtype_name(model.dtype)
    result = {"row": spec["row"], "prompts": len(items), "prompt_tokens": sum(map(len, prompts)),
              "peak_rss_mb": peak_rss_mb(), **out}
    if spec["row"] == "ours" and spec.get("profile"):  # after the timed row's figures are read
        result["kernel_profile"] = profile_ours(spec, model, tok, items)
    return result


def _child(spec_path: str) -> None:
    from kgreason.bench.harness import RESULT_MARK

    out = time_row(json.loads(Path(spec_path).read_text(encoding="utf-8")))
    print(RESULT_MARK + json.dumps(out), flush=True)


# --- the benchmark -------------------------------------------------------------------------------
def bench_sampler(model_ref: str = "bundled:smollm2-135m", *, adapter: str | None = None, tasks: str | None = None,
                  n_prompts: int = 24, k: int = 8, temperature: float = 0.7, max_new_tokens: int = 64, seed: int = 0,
                  dtype: str = "auto", batch_size: int | None = None, rows: Sequence[str] = ("hf-generate", "ours",
                  "openvino", "ctranslate2"), hf_caches: Sequence[str] = HF_CACHES, hf_stop: str = "answer",
                  naive_prompts: int = 2, ct2_compute_type: str = "auto", rounds: int = 1, quiet: bool = False,
                  probe_window_s: float = 0.4, isolate: bool = True, profile: bool = True) -> dict:
    """Time every requested row on the same prompts and settings; returns the figures as plain JSON.

    `isolate=False` runs the rows in this process (tests: no interpreter start per row); their
    peak RSS is then this process's, not each row's own.
    """
    import torch

    from kgreason.bench.harness import count_params, probe_limit, probe_shapes, run_child
    from kgreason.models.dtype import default_device, dtype_name, resolve_dtype

    def say(text: str) -> None:
        if not quiet:
            print(text, flush=True)

    chosen = dtype_name(resolve_dtype(dtype, default_device()))
    items = bench_items(n_prompts, tasks)
    if not items:
        from kgreason.io import InputError

        raise InputError(f"no prompts: {tasks or 'the built-in eval split'} has no tasks")
    shape = count_params(model_ref, lora_r=1)  # n_base: parameters in matmuls, the LM head included
    n_params = shape["n_base"]
    # Our sampler's CPU default (or its override), so HF and CT2 get the same rows per forward pass.
    rows_per_call = batch_size or int(os.environ.get("KGREASON_SAMPLER_BATCH") or 64)
    from kgreason.hardware import cpu_description, cpu_line

    say(f"CPU: {cpu_line()}")
    say(f"kgreason bench sampler: {model_ref}{f' + {adapter}' if adapter else ''}, {len(items)} prompts x k={k}, "
        f"temperature {temperature}, max_new_tokens {max_new_tokens}, seed {seed}, {chosen}, "
        f"{rows_per_call} rows per forward pass, hf stop rule: {hf_stop}, torch threads {torch.get_num_threads()}")
    shapes = list({s[0]: s for r in (64, 2048)
                   for s in probe_shapes(shape["hidden"], shape["intermediate"], shape["vocab"], rows=r)}.values())
    # bf16 only where it is native: emulated (a CPU with AVX2 only) it is several times slower than
    # fp32, so it cannot be the limit, and its probes took minutes there
    from kgreason.models.dtype import cpu_supports_bf16

    native_bf16 = torch.cuda.is_available() or cpu_supports_bf16()
    dtypes = list(dict.fromkeys([chosen, *(["bf16"] if native_bf16 else []), "fp32"]))
    say("  probing the matmul limit ...")
    probe = probe_limit(dtypes, shapes, probe_window_s)

    plan = [("hf-generate", c) for c in hf_caches if "hf-generate" in rows] + \
        [(r, None) for r in ROWS if r != "hf-generate" and r in rows]
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="kgreason-bench-sampler-") as tmp:
        items_file = Path(tmp) / "items.json"
        items_file.write_text(json.dumps(items), encoding="utf-8")
        base = {"model": model_ref, "adapter": adapter, "items": str(items_file), "k": k, "temperature": temperature,
                "max_new_tokens": max_new_tokens, "seed": seed, "dtype": chosen, "batch_size": batch_size,
                "rows_per_call": rows_per_call, "hf_stop": hf_stop, "naive_prompts": naive_prompts,
                "ct2_compute_type": ct2_compute_type, "profile": False}

        def measure(spec: dict, label: str) -> dict:
            return run_child(spec, Path(tmp), module="kgreason.bench.sampler", label=label) if isolate \
                else time_row(spec)

        # Rows alternate over the rounds, so a load change on a shared machine hits every row alike.
        for rnd in range(rounds):
            for row, cache in plan:
                name = row if cache is None else f"{row}-{cache}"
                if results.get(name, {}).get("skipped"):
                    continue
                # ours, in the last round, is profiled after its timed run, in the same process
                profiled = profile and row == "ours" and rnd == rounds - 1
                say(f"  round {rnd + 1}/{rounds}: {name}{' (then profiled)' if profiled else ''} ...")
                # OpenVINO aborts its process under jemalloc (sampling/openvino_backend.py), so its
                # row runs on the system allocator, as `kgreason run` runs a stage that decodes with it.
                allocator = {"allocator": "system"} if row == "openvino" else {}
                got = measure({**base, "row": row, "cache": cache, "profile": profiled, **allocator}, name)
                results[name] = _add(results.get(name), {"name": name, **got})
    # The probes once more after the rows: the host's speed drifts, the limit is the best seen.
    again = probe_limit(dtypes, shapes, probe_window_s)
    probe["results"] += [{**r, "repeat": True} for r in again["results"]]
    for d in dtypes:
        if again["best"][d]["gflops"] > probe["best"][d]["gflops"]:
            probe["best"][d] = again["best"][d]
    best = max(probe["best"].values(), key=lambda r: r["gflops"])
    limit = best["gflops"] * 1e9
    table = [_figures(r, n_params, limit) for r in results.values()]
    result = {"cpu": cpu_description(), "model": model_ref, "adapter": adapter, "prompts": len(items), "k": k,
              "temperature": temperature,
              "max_new_tokens": max_new_tokens, "seed": seed, "dtype": chosen, "rows_per_call": rows_per_call,
              "hf_stop": hf_stop, "rounds": rounds, "isolated": isolate, "threads": torch.get_num_threads(), "n_params": n_params,
              "flops_per_token": 2 * n_params, "limit_gflops": best["gflops"],
              "limit_tokens_per_s": round(limit / (2 * n_params), 1),
              "probe": {**probe, "used": best}, **_summary(table), "rows": table}
    if not quiet:
        print_table(result)
    return result


def _add(acc: dict | None, got: dict) -> dict:
    """Sum a row over rounds (peak RSS: the largest)."""
    if acc is None or got.get("skipped"):
        return got
    out = dict(acc)
    for key in ("samples", "tokens", "seconds", "prompt_tokens", "prompts"):
        out[key] = acc[key] + got[key]
    out["finish"] = dict(Counter(acc["finish"]) + Counter(got["finish"]))
    out["peak_rss_mb"] = max(acc["peak_rss_mb"] or 0, got["peak_rss_mb"] or 0)
    if "kernel_profile" in got:  # the last round's
        out["kernel_profile"] = got["kernel_profile"]
    return out


def _figures(row: dict, n_params: int, limit: float) -> dict:
    if row.get("skipped"):
        return row
    s = row["seconds"]
    tps = row["tokens"] / s
    out = {**row, "seconds": round(s, 3), "tokens_per_s": round(tps, 2), "samples_per_s": round(row["samples"] / s, 3),
           "share_of_limit": round(tps * 2 * n_params / limit, 5),
           "prefill_share_of_limit": round((row["prompt_tokens"] + row["tokens"]) / s * 2 * n_params / limit, 5)}
    if row.get("kernel_profile"):
        from kgreason.bench.harness import kernel_bounds

        out.update(kernel_bounds([row["kernel_profile"]], 2 * n_params, limit, digits=5))
    return out


def _summary(table: list[dict]) -> dict:
    """Headline figures: ours, and its ratios to the best HF generate row, naive, CT2 and OpenVINO (None when
    not run; below 1 where the other engine is faster)."""
    timed = {r["name"]: r for r in table if not r.get("skipped")}
    ours = timed.get("ours")
    out: dict[str, Any] = {"tokens_per_s": None, "samples_per_s": None, "share_of_limit": None,
                           "prefill_share_of_limit": None, "peak_rss_mb": None, "vs_hf_generate": None,
                           "vs_hf_generate_samples": None, "vs_naive": None, "vs_naive_samples": None,
                           "vs_ctranslate2": None, "vs_ctranslate2_samples": None, "vs_openvino": None,
                           "vs_openvino_samples": None,
                           "skipped": {r["name"]: r["skipped"] for r in table if r.get("skipped")}}
    if ours is None:
        return out
    out.update({key: ours[key] for key in ("tokens_per_s", "samples_per_s", "share_of_limit",
                                           "prefill_share_of_limit", "peak_rss_mb")})
    out.update({key: ours[key] for key in ("matmul_bound_share", "kernel_bound_share", "step_time_split")
                if key in ours})
    hf = [r for n, r in timed.items() if n.startswith("hf-generate")]
    for key, other in (("hf_generate", max(hf, key=lambda r: r["tokens_per_s"]) if hf else None),
                       ("naive", timed.get("naive")), ("ctranslate2", timed.get("ctranslate2")),
                       ("openvino", timed.get("openvino"))):
        if other and other["tokens_per_s"] and other["samples_per_s"]:
            out[f"vs_{key}"] = round(ours["tokens_per_s"] / other["tokens_per_s"], 2)
            out[f"vs_{key}_samples"] = round(ours["samples_per_s"] / other["samples_per_s"], 2)
            if key == "hf_generate":
                out["hf_generate_best"] = other["name"]
    return out


def print_table(result: dict) -> None:
    print("limit probes (GFLOP/s):")
    for p in result["probe"]["results"]:
        print(f"  {p['dtype']:5} {p['shape']:52} {p['gflops']:8.1f}{'  (repeat)' if p.get('repeat') else ''}")
    used = result["probe"]["used"]
    print(f"limit: {result['limit_gflops']:.1f} GFLOP/s (best probe: {used['dtype']} {used['shape']}) = "
          f"{result['limit_tokens_per_s']:.0f} tokens/s at 2 x {result['n_params'] / 1e6:.1f}M FLOPs per token")
    print(f"{'row':22} {'precision':9} {'samples':>7} {'tokens':>7} {'tokens/s':>9} {'samples/s':>9} {'share':>7} "
          f"{'+prefill':>8} {'peak RSS':>9}  finish")
    for r in result["rows"]:
        if r.get("skipped"):
            print(f"{r['name']:22} skipped: {r['skipped']}")
            continue
        print(f"{r['name']:22} {r.get('dtype') or r.get('compute_type') or '-':9} {r['samples']:7d} {r['tokens']:7d} "
              f"{r['tokens_per_s']:9.1f} {r['samples_per_s']:9.2f} {100 * r['share_of_limit']:6.2f}% "
              f"{100 * r['prefill_share_of_limit']:7.2f}% {r['peak_rss_mb'] or 0:7.0f}MB  "
              f"{', '.join(f'{k} {v}' for k, v in sorted(r['finish'].items()))}")
    ratios = [f"{name} {result[f'vs_{key}']}x tokens/s, {result[f'vs_{key}_samples']}x samples/s"
              for key, name in (("hf_generate", f"vs {result.get('hf_generate_best', 'hf-generate')}"),
                                ("naive", "vs naive"), ("ctranslate2", "vs ctranslate2"), ("openvino", "vs openvino"))
              if result.get(f"vs_{key}") is not None]
    if ratios:
        print("ours: " + "; ".join(ratios))
    if result.get("matmul_bound_share") is not None:
        split = result["step_time_split"]
        print(f"ours, profiled: matmul {100 * split['matmul']:.0f}%, attention {100 * split['attention']:.0f}%, "
              f"other operators {100 * split['other_ops']:.0f}% of the wall time; if only the matmuls took time: "
              f"{100 * result['matmul_bound_share']:.1f}% of the limit, matmuls + attention: "
              f"{100 * result['kernel_bound_share']:.1f}%")
    print(f"tokens: generated, up to eos or the end of the answer line (hf stop rule: {result['hf_stop']}); "
          "share: tokens/s x 2N / limit; +prefill: (each prompt once + generated tokens)/s x 2N / limit; "
          "peak RSS: each row's own process.")


# --- command line ----------------------------------------------------------------------------------
def add_bench_sampler_arguments(p: argparse.ArgumentParser) -> None:
    from kgreason import argtypes as at

    p.add_argument("--model", default="bundled:smollm2-135m", help="model reference")
    p.add_argument("--adapter", metavar="DIR", help="LoRA adapter folder, merged into the model for every row")
    p.add_argument("--tasks", metavar="FILE", help="task JSONL for the prompts (default: open-book eval tasks of the built-in KG)")
    p.add_argument("--n-prompts", type=at.positive_int, default=24,
                   help="prompts for every row (more than one batch, so our sampler refills slots)")
    p.add_argument("-k", type=at.positive_int, default=8, help="samples per prompt")
    p.add_argument("--temperature", type=at.non_negative_float, default=0.7, help="sampling temperature")
    p.add_argument("--max-new-tokens", type=at.positive_int, default=64, help="cap per sample")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--dtype", default="auto", choices=at.DTYPE_CHOICES, help="dtype of ours and of hf-generate")
    p.add_argument("--batch-size", type=at.positive_int,
                   help="rows per forward pass of ours, and of each hf-generate / ctranslate2 call (unset: 64, "
                        "our CPU default)")
    p.add_argument("--hf-cache", default="dynamic,static",
                   help="comma list of transformers cache settings to time: dynamic (its default), static")
    p.add_argument("--hf-stop", default="answer", choices=["answer", "none"],
                   help="answer: hf-generate, naive and ctranslate2 stop at our answer line (custom stopping "
                        "criterion); none: at eos or max_new_tokens only")
    p.add_argument("--no-ct2", action="store_true", help="skip the optional CTranslate2 row")
    p.add_argument("--no-openvino", action="store_true", help="skip the OpenVINO GenAI row")
    p.add_argument("--ct2-compute-type", default="auto",
                   help="CTranslate2 compute type (auto: bfloat16 when ours runs bf16 and CT2 supports it, "
                        "else float32; int8 is faster but not the same model)")
    p.add_argument("--naive", action="store_true", help="also time the naive one-generate-per-sample fp32 loop (slow)")
    p.add_argument("--naive-prompts", type=at.positive_int, default=2, help="prompts for the naive loop")
    p.add_argument("--rounds", type=at.positive_int, default=1,
                   help="time every row this many times, alternating (a shared machine's load hits all rows alike)")
    p.add_argument("--no-profile", dest="profile", action="store_false",
                   help="skip the second run of our row under torch.profiler (no matmul/attention split, no kernel bounds)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def cmd_bench_sampler(args: argparse.Namespace) -> int:
    from kgreason.io import InputError

    caches = tuple(c.strip() for c in args.hf_cache.split(",") if c.strip())
    if set(caches) - set(HF_CACHES):
        raise InputError(f"--hf-cache: expected a comma list of {', '.join(HF_CACHES)}, got {args.hf_cache!r}")
    rows = ["ours"] + (["hf-generate"] if caches else []) + ([] if args.no_openvino else ["openvino"]) + \
        ([] if args.no_ct2 else ["ctranslate2"]) + \
        (["naive"] if args.naive else [])
    result = bench_sampler(args.model, adapter=args.adapter, tasks=args.tasks, n_prompts=args.n_prompts, k=args.k,
                           temperature=args.temperature, max_new_tokens=args.max_new_tokens, seed=args.seed,
                           dtype=args.dtype, batch_size=args.batch_size, rows=rows, hf_caches=caches,
                           hf_stop=args.hf_stop, naive_prompts=args.naive_prompts,
                           ct2_compute_type=args.ct2_compute_type, rounds=args.rounds,
                           quiet=args.json or args.quiet, profile=args.profile)
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":  # a child of bench_sampler: python -m kgreason.bench.sampler SPEC.json
    _child(sys.argv[1])
