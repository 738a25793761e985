"""Supervised fine-tuning with LoRA on TRL's SFTTrainer (`kgreason train sft`).

Examples are prompt-completion conversations ({"prompt": [system, user], "completion": [assistant]}),
so SFTTrainer applies the chat template and computes the loss on the completion only. The same
`train_lora` function trains RSFT's winners, so the two phases share one tested code path.
Resume: the Trainer checkpoints inside the adapter folder (`adapters/<phase>/checkpoint-N`) and a
rerun continues from the last one; the finished adapter replaces them.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kgreason.config import SFTOptions, TrainOptions
from kgreason.io import InputError
from kgreason.records import Task
from kgreason.runs.folder import Run, dump_options
from kgreason.train.phase_model import PhaseModel, load_trainable_model


@dataclass
class TrainResult:
    adapter: Path
    steps: int
    examples: int
    train_loss: float | None
    wall_s: float
    resumed_from: str | None = None
    tokens_per_epoch: int = 0  # prompt + completion tokens in one pass over the data
    trained_tokens_per_epoch: int = 0  # completion tokens (the ones with a loss)


# --- material ------------------------------------------------------------------------------------
def task_example(task: Task, completion: str) -> dict:
    """One prompt-completion conversation for SFTTrainer (loss on the completion only)."""
    from kgreason.tasks.format import chat_messages

    return {"prompt": chat_messages(task), "completion": [{"role": "assistant", "content": completion}]}


def question_examples(tasks: list[Task], trace_style: str = "full", short_share: float = 0.5,
                      seed: int = 0) -> list[dict]:
    """SFT examples from questions; with "mix" a seeded `short_share` of them get the short trace."""
    from kgreason.tasks.format import reference_completion

    rng = random.Random(seed)
    examples = []
    for task in tasks:
        style = trace_style
        if trace_style == "mix":
            style = "short" if rng.random() < short_share else "full"
        examples.append(task_example(task, reference_completion(task, style)))
    return examples


def fact_examples(records: list[dict], path: Path, max_examples: int = 0, seed: int = 0) -> list[dict]:
    """SFT examples from facts.jsonl records: one per (head, relation), its completion every tail
    ("Complete the fact: X is caused by" -> "Y; Z."), so a prompt never has two targets
    (kgreason.tasks.facts says why). `max_examples` keeps a seeded subset of the (head, relation)
    queries, each still with all its tails."""
    from kgreason.tasks.facts import fact_queries

    queries = fact_queries(records, str(path))
    if max_examples:
        queries = random.Random(seed).sample(queries, min(max_examples, len(queries)))
    return [{"prompt": [{"role": "user", "content": q.prompt}],
             "completion": [{"role": "assistant", "content": q.completion}]}
            for q in queries]


def load_material(data_dir: Path, options: SFTOptions) -> list[dict]:
    """All SFT examples the material flags ask for, read from a data folder (kgreason tasks generate)."""
    from kgreason.io import read_jsonl
    from kgreason.tasks.build import data_layout
    from kgreason.tasks.generate import load_tasks

    options.validate()
    files = data_layout(data_dir).files
    examples: list[dict] = []
    for i, material in enumerate(options.material):
        path = Path(data_dir) / files[material]
        if not path.exists():
            raise InputError(f"{path}: file not found (needed by --material {material}); "
                             "generate it with `kgreason tasks generate`")
        rng = random.Random(options.train.seed + i)
        if material == "facts":
            examples += fact_examples(read_jsonl(path), path, options.max_examples, options.train.seed + i)
        else:
            tasks = load_tasks(path)
            if options.max_examples:
                tasks = rng.sample(tasks, min(options.max_examples, len(tasks)))
            examples += question_examples(tasks, options.trace_style, options.short_share, options.train.seed + i)
    if not examples:
        raise InputError(f"{data_dir}: the chosen material {options.material} holds no examples")
    return examples


# --- training ------------------------------------------------------------------------------------
def precision_flags(dtype: str, device: str) -> dict[str, bool]:
    """TrainingArguments precision flags, set explicitly (TRL's defaults assume a GPU)."""
    from kgreason.models.dtype import dtype_name, resolve_dtype

    name = dtype_name(resolve_dtype(dtype, device))
    return {"bf16": name == "bf16", "fp16": name == "fp16" and device == "cuda"}


def training_tokenizer(model_ref: str) -> Any:
    """The tokenizer as training uses it: padding on the right (samplers use their own, left)."""
    from kgreason.models import load_tokenizer

    tokenizer = load_tokenizer(model_ref)
    tokenizer.padding_side = "right"
    return tokenizer


def _last_checkpoint(output_dir: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None


# Pass widths are rounded up to a multiple of this (the collator pads batches to one too). Why: on
# CPU, oneDNN compiles and caches a kernel, with its buffers, for every matmul shape it meets; with
# widths that vary token by token an SFT process grew ~50 MB a step (torch's tensors stayed at
# 312 MB; ONEDNN_PRIMITIVE_CACHE_CAPACITY=0 cut most of the growth), while a few repeated shapes
# keep that cache small and its kernels reused.
WIDTH_MULTIPLE = 64


def token_budget_chunks(inputs: dict[str, Any], budget: int, multiple: int = 1) -> list[dict[str, Any]]:
    """Split one collated batch into pieces of at most `budget` tokens (rows x their padded width).

    Rows are taken longest first and each piece is cut to its own longest row rounded up to
    `multiple` (right padding), so a piece of short rows carries no padding of the long ones. A
    single row longer than the budget is a piece of its own. Returns `[inputs]` unchanged when the
    whole batch fits.
    """
    import torch

    ids = inputs.get("input_ids")
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2:
        return [inputs]
    rows, width = ids.shape
    if rows * width <= budget or rows == 1:
        return [inputs]
    mask = inputs.get("attention_mask")
    if isinstance(mask, torch.Tensor) and mask.shape == ids.shape:
        # the last attended column + 1: right padding trims, left padding keeps every column
        columns = torch.arange(1, width + 1, device=mask.device)
        lengths = (mask.ne(0) * columns).amax(dim=1).tolist()
    else:
        lengths = [width] * rows
    lengths = [min(width, -(-n // multiple) * multiple) for n in lengths]
    order = sorted(range(rows), key=lambda r: -lengths[r])
    pieces: list[list[int]] = [[]]
    for r in order:
        piece = pieces[-1]
        if piece and (len(piece) + 1) * lengths[piece[0]] > budget:
            pieces.append(piece := [])
        piece.append(r)
    out = []
    for piece in pieces:
        index = torch.tensor(piece, dtype=torch.long, device=ids.device)
        keep = max(1, max(lengths[r] for r in piece))
        chunk: dict[str, Any] = {}
        for key, value in inputs.items():
            if isinstance(value, torch.Tensor) and value.dim() >= 1 and value.shape[0] == rows:
                value = value.index_select(0, index.to(value.device))
                if value.dim() >= 2 and value.shape[1] == width:
                    value = value[:, :keep]
            chunk[key] = value
        out.append(chunk)
    return out


def budget_trainer_class() -> type:
    """SFTTrainer whose every forward/backward pass holds at most `token_budget` tokens.

    Why: activation memory grows with the tokens of one pass (~0.75 MB a token for SmolLM2-135M in
    bf16), and a fixed micro-batch size cannot bound it: the same 8 rows are 8 x 40 tokens for facts
    and 8 x 500 for open-book questions. Each step's batch is cut by tokens instead, and the pieces
    are accumulated into the same update: the loss is normalised by the completion tokens of the
    whole step (`num_items_in_batch`), so the gradient is the full batch's, whatever the split.
    """
    from trl import SFTTrainer

    class TokenBudgetSFTTrainer(SFTTrainer):
        token_budget: int | None = None

        def training_step(self, model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None) -> Any:
            if not self.token_budget or num_items_in_batch is None:  # per-piece means would not add up
                return super().training_step(model, inputs, num_items_in_batch)
            total = None
            for piece in token_budget_chunks(inputs, self.token_budget, WIDTH_MULTIPLE):
                loss = super().training_step(model, piece, num_items_in_batch)
                total = loss if total is None else total + loss
            return total

    return TokenBudgetSFTTrainer


def sft_config(output_dir: Path, options: TrainOptions, n_examples: int, pad_multiple: int | None = None) -> Any:
    """SFTConfig for `options` (the token budget of a pass is the trainer's, see budget_trainer_class);
    `pad_multiple` rounds each batch's width up (the fast path's WIDTH_MULTIPLE; TRL's stock path pads
    to the longest row)."""
    from trl import SFTConfig

    from kgreason.models.dtype import default_device

    device = default_device()
    return SFTConfig(
        output_dir=str(output_dir),
        max_steps=options.max_steps if options.max_steps > 0 else -1,
        num_train_epochs=options.epochs,
        per_device_train_batch_size=min(options.batch_size, max(1, n_examples)),
        gradient_accumulation_steps=options.grad_accum,
        learning_rate=options.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=options.warmup_ratio,  # a float in [0, 1) is a share of the total steps
        weight_decay=options.weight_decay,
        max_length=options.max_length,
        completion_only_loss=True,
        packing=False,
        pad_to_multiple_of=pad_multiple,
        # Facts are ~40 tokens, questions ~250: batching similar lengths cuts the padding computed.
        train_sampling_strategy="group_by_length",
        activation_checkpointing=options.gradient_checkpointing,
        dataset_num_proc=None,
        **shared_trainer_args(options, device),
    )


def shared_trainer_args(options: Any, device: str) -> dict[str, Any]:
    """Trainer settings every phase shares (SFT, RSFT rounds, GRPO): checkpoints to resume from,
    offline logging, seeds and explicit precision. `options` is a TrainOptions or GRPOOptions."""
    return {
        "logging_steps": options.logging_steps,
        "save_strategy": "steps",
        "save_steps": options.save_steps,
        "save_total_limit": 1,
        "report_to": "none",  # RunMetricsCallback writes metrics.jsonl and TensorBoard itself
        "seed": options.seed,
        "data_seed": options.seed,
        "use_cpu": device != "cuda",
        "dataloader_num_workers": 0,
        **precision_flags(options.dtype, device),
    }


def truncated_examples(trainer: Any, max_length: int | None, n_examples: int) -> int:
    """How many of the `n_examples` training examples are longer than `max_length`: those TRL cut to
    it, plus those it dropped (cut before any completion token, so nothing was left to learn)."""
    ds = trainer.train_dataset
    if not max_length or ds is None or "input_ids" not in ds.column_names:
        return 0
    return sum(1 for ids in ds["input_ids"] if len(ids) >= max_length) + max(0, n_examples - len(ds))


def count_tokens(trainer: Any) -> tuple[int, int]:
    """(tokens processed, tokens trained on) in one epoch of the tokenized dataset, for throughput figures."""
    ds = trainer.train_dataset
    if ds is None or "input_ids" not in ds.column_names:
        return 0, 0
    processed = sum(len(ids) for ids in ds["input_ids"])
    if "labels" in ds.column_names:
        trained = sum(sum(1 for x in labels if x != -100) for labels in ds["labels"])
    elif "completion_mask" in ds.column_names:
        trained = sum(sum(mask) for mask in ds["completion_mask"])
    else:
        trained = processed
    return int(processed), int(trained)


# --- the fast path: LM head at completion positions only ----------------------------------------
TRAIN_PATHS = ("fast", "reference")


def completion_lm_head_forward(model: Any) -> None:
    """Score only the positions that carry a loss: run the backbone, keep the hidden states whose
    next-token label is not -100, and project just those rows through the LM head.

    Why: TRL's fused LM head (installed by SFTTrainer) scores *every* position on devices without
    Triton, in [tokens, 32768] fp32 tiles with its backward GEMMs in fp32. For these examples ~85-92%
    of the tokens are prompt, so on CPU that head was ~55% of an SFT step and its tiles dominated
    peak memory. Same loss, same metrics (entropy, top-1) and the same output type, so TRL's
    compute_loss is unchanged. Call after SFTTrainer's constructor (it patches the same forward);
    models that rescale or soft-cap logits keep TRL's head.
    """
    import types

    import torch
    from trl.trainer.utils import FusedCausalLMOutput

    from kgreason.models.lora import unwrap_peft
    from kgreason.train.head_loss import target_log_probs

    base = unwrap_peft(model)
    cfg = base.config.get_text_config()
    if getattr(cfg, "final_logit_softcapping", None) or getattr(cfg, "logit_scale", None) not in (None, 1.0):
        return
    fallback = base.forward  # TRL's wrapper: the plain forward when fused_lm_head is False

    def forward(self: Any, *args: Any, fused_lm_head: bool = False, labels: Any = None, shift_labels: Any = None,
                num_items_in_batch: Any = None, **kwargs: Any) -> Any:
        if not fused_lm_head or kwargs.get("output_router_logits"):  # MoE aux loss: TRL's head handles it
            extra = {k: v for k, v in (("labels", labels), ("shift_labels", shift_labels),
                                       ("num_items_in_batch", num_items_in_batch)) if v is not None}
            if fused_lm_head:
                extra["fused_lm_head"] = True
            return fallback(*args, **extra, **kwargs)
        kwargs["use_cache"] = False
        hidden = self.base_model(*args, **kwargs).last_hidden_state
        if shift_labels is None:
            hidden, labels = hidden[:, :-1], labels[:, 1:]
        else:
            labels = shift_labels
        mask = labels != -100
        targets = labels[mask]
        head = self.get_output_embeddings()
        if type(head) is torch.nn.Linear and head.bias is None and not head.weight.requires_grad:
            # a slice of rows at a time, with the entropy and top-1 metrics TRL logs (head_loss.py)
            token_lp, entropy, is_top1 = target_log_probs(hidden[mask], head.weight, targets)
        else:  # a trainable or unusual head: score all completion rows at once through autograd
            logits = head(hidden[mask]).float()  # [completion tokens, vocab]
            log_probs = torch.log_softmax(logits, dim=-1)
            token_lp = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
            with torch.no_grad():  # metrics only, as TRL logs them (entropy, is the label the argmax)
                entropy = -(log_probs.exp() * log_probs).sum(-1)
                is_top1 = logits.argmax(-1) == targets
        per_pos = token_lp.new_zeros(mask.shape).masked_scatter(mask, token_lp)
        denom = mask.sum().clamp(min=1) if num_items_in_batch is None else num_items_in_batch
        return FusedCausalLMOutput(
            loss=-per_pos.sum() / denom, log_probs=per_pos,
            entropy=entropy.new_zeros(mask.shape).masked_scatter(mask, entropy),
            is_top1=mask.new_zeros(mask.shape).masked_scatter(mask, is_top1), label_mask=mask)

    base.forward = types.MethodType(forward, base)


def speed_up_lora(model: Any) -> None:
    """Skip PEFT's cast of every LoRA layer's input to the adapters' fp32: under bf16 autocast the
    LoRA matmuls run in bf16 anyway, so the cast was two extra activation copies per linear layer
    (bf16 -> fp32 -> bf16, exact) for nothing. Adapter weights (and the optimiser) stay fp32."""
    for module in model.modules():
        if hasattr(module, "cast_input_dtype_enabled"):
            module.cast_input_dtype_enabled = False


@contextlib.contextmanager
def compiled_decoder_layers(model: Any, enabled: bool) -> Iterator[None]:
    """While training, run each decoder layer through torch.compile (as torchtune compiles per layer:
    the layers are identical, so each compiled graph serves all 30, and the LM head's data-dependent selection
    of completion rows stays eager); `dynamic=True` because every batch has its own width. Afterwards
    the layers are eager again, so a held model samples and evaluates as a reloaded one would.
    Without a C++ compiler on a CPU (inductor builds C++ kernels) it says so and trains eagerly."""
    if not enabled:
        yield
        return
    from kgreason.models.lora import unwrap_peft

    base = unwrap_peft(model)
    kinds = set(getattr(base, "_no_split_modules", None) or ())  # HF names its decoder layer class here
    layers = [m for m in base.modules() if type(m).__name__ in kinds]
    on_cpu = next(base.parameters()).device.type == "cpu"
    cxx = os.environ.get("CXX") or ("clang++" if sys.platform == "darwin" else "g++")  # as inductor picks it
    if layers and on_cpu and not shutil.which(cxx):
        print(f"compile_layers: no C++ compiler {cxx!r} found (inductor builds its CPU kernels with it; set CXX "
              "to use another); training without torch.compile", flush=True)
        layers = []
    for layer in layers:
        layer.compile(dynamic=True)
    # The frozen embedding's output does not require grad, every later layer's input does: dynamo
    # guards on that and compiled the first layer a second time (a second full compile, about half
    # of the compile time). Marking the embedding's output as requiring grad (as transformers'
    # enable_input_require_grads does) lets one graph serve every layer, for one extra input
    # gradient in the first layer's backward.
    hook = None
    try:
        if layers:
            hook = base.get_input_embeddings().register_forward_hook(lambda _m, _i, out: out.requires_grad_(True))
        yield
    finally:
        if hook is not None:
            hook.remove()
        for layer in layers:
            layer._compiled_call_impl = None  # what nn.Module.compile set: back to the eager forward


def train_lora(model_ref: str, examples: list[dict], output_dir: Path, options: TrainOptions, *,
               run: Run | None = None, phase: str = "sft", round_index: int = 0,
               init_adapter: Path | None = None, callbacks: list | None = None,
               path: str = "fast", held: PhaseModel | None = None) -> TrainResult:
    """Fine-tune a LoRA adapter on prompt-completion examples; resumes from the last checkpoint.

    With `init_adapter`, training continues that adapter (RSFT rounds start from the previous
    round's model); otherwise a fresh LoRA is attached. The adapter is saved to `output_dir`.
    `path="reference"` trains with TRL's stock code path (what `kgreason bench train` compares with).
    With `held`, the phase's one loaded model is trained in place (loaded first if it does not hold
    `init_adapter`) and afterwards holds the new adapter.
    """
    from datasets import Dataset
    from trl import SFTTrainer

    from kgreason.console import LOG_NAME, log_to, quiet_libraries
    from kgreason.models.dtype import default_device
    from kgreason.train.tracking import RunMetricsCallback, quiet_trainer

    quiet_libraries()
    if run is not None:
        log_to(run.root / LOG_NAME)  # library chatter of this phase goes to the run's log.txt
    if not examples:
        raise InputError(f"{phase}: no training examples")
    if path not in TRAIN_PATHS:
        raise InputError(f"train path: expected one of {', '.join(TRAIN_PATHS)}, got {path!r}")
    start = time.perf_counter()
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if held is not None:
        if held.model_ref != model_ref or not held.same_dtype(options.dtype):
            raise ValueError(f"the held model is {held.model_ref} in {held.dtype}; this training asks for "
                             f"{model_ref} in {options.dtype}")
        model, tokenizer, has_adapter = held.load(init_adapter), training_tokenizer(model_ref), init_adapter is not None
    else:
        model, tokenizer, has_adapter = load_trainable_model(model_ref, options.dtype, init_adapter)
    dataset = Dataset.from_list([{"prompt": e["prompt"], "completion": e["completion"]} for e in examples])
    trainer_class = budget_trainer_class() if path == "fast" else SFTTrainer
    trainer = trainer_class(
        model=model,
        args=sft_config(output_dir, options, len(examples), pad_multiple=WIDTH_MULTIPLE if path == "fast" else None),
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=None if has_adapter else options.lora.peft_config(),
        callbacks=[RunMetricsCallback(run, phase, round_index), *(callbacks or [])],
    )
    stage = phase.upper() + (f" round {round_index}" if round_index else "")
    quiet_trainer(trainer, stage)
    cut = truncated_examples(trainer, options.max_length, len(examples))
    if cut:
        # TRL keeps the first max_length tokens: the end of the completion (the answer line) is lost,
        # so the model learns to stop mid-chain; an example cut inside its prompt is dropped. Long
        # names and open-book facts (imported graphs) do it.
        print(f"WARNING: {cut} of {len(examples)} {stage} examples reach max_length {options.max_length} "
              f"tokens: they lose the end of their completion, or all of it (then TRL drops them); raise "
              f"--{phase}-max-length", flush=True)
        if run is not None:
            run.log_metrics(phase, 0, {"truncated_examples": cut}, round=round_index)
    if path == "fast":
        trainer.token_budget = options.micro_batch_tokens
        completion_lm_head_forward(trainer.model)
        if precision_flags(options.dtype, default_device()).get("bf16"):
            speed_up_lora(trainer.model)
    resume = _last_checkpoint(output_dir)
    if resume:
        print(f"resuming {stage} from checkpoint step {Path(resume).name.removeprefix('checkpoint-')}", flush=True)
    if resume and run is not None:
        run.log_metrics(phase, 0, {"resumed_from": resume}, round=round_index)
    with compiled_decoder_layers(trainer.model, options.compile_layers and path == "fast"):
        out = trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(str(output_dir))
    if trainer.is_world_process_zero():
        name_base_in_adapter(output_dir, model_ref)
    processed, trained = count_tokens(trainer)
    if held is not None:
        held.trained(trainer.model, output_dir)
    return TrainResult(adapter=output_dir, steps=int(out.global_step), examples=len(examples),
                       train_loss=float(out.training_loss) if out.training_loss is not None else None,
                       wall_s=round(time.perf_counter() - start, 2), resumed_from=resume,
                       tokens_per_epoch=processed, trained_tokens_per_epoch=trained)


def remove_checkpoints(output_dir: Path) -> None:
    """Drop Trainer checkpoints once the phase is marked done (until then they are the resume point)."""
    from kgreason.runs.folder import is_main_process

    if is_main_process():
        for ckpt in Path(output_dir).glob("checkpoint-*"):
            shutil.rmtree(ckpt, ignore_errors=True)


def name_base_in_adapter(adapter_dir: Path, model_ref: str) -> None:
    """Make the adapter self-describing: kgreason_base.json (what `load_model(None, adapter=...)`
    reads) and adapter_config.json's base_model_name_or_path both name the base model reference."""
    import json

    from kgreason.io import atomic_write_json
    from kgreason.models.lora import BASE_FILE

    atomic_write_json(Path(adapter_dir) / BASE_FILE, {"base": model_ref})
    cfg_path = Path(adapter_dir) / "adapter_config.json"
    if cfg_path.exists():
        cfg = json.loads(cfg_path.read_text())
        if cfg.get("base_model_name_or_path") != model_ref:
            cfg["base_model_name_or_path"] = model_ref
            atomic_write_json(cfg_path, cfg)


# --- the `kgreason train sft` phase --------------------------------------------------------------
def run_sft(run: Run, model_ref: str, data_dir: Path, options: SFTOptions, phase: str = "sft",
            callbacks: list | None = None, held: PhaseModel | None = None) -> dict:
    """The SFT phase of a run: skipped when summary.json says it is done. With `held`, the trained
    model stays loaded there for the phase's evaluation."""
    if run.is_done(phase):
        info = run.phase_info(phase) or {}
        print(f"[{phase}] already done ({info.get('steps')} steps); reusing {run.adapter_dir(phase)}")
        return info
    examples = load_material(Path(data_dir), options)
    print(f"[{phase}] {len(examples)} examples from {', '.join(options.material)} "
          f"(trace style {options.trace_style}); training LoRA on {model_ref}")
    held = held if held is not None else PhaseModel(model_ref, options.train.dtype)
    loads_before = held.loads
    result = train_lora(model_ref, examples, run.adapter_dir(phase), options.train, run=run, phase=phase,
                        callbacks=callbacks, held=held)
    info = {"kind": "train", "steps": result.steps, "examples": result.examples, "train_loss": result.train_loss,
            "wall_s": result.wall_s, "adapter": str(run.adapter_dir(phase).relative_to(run.root)),
            "resumed_from": result.resumed_from, "options": dump_options(options),
            "model_loads": held.loads - loads_before}
    run.mark_done(phase, info)
    remove_checkpoints(run.adapter_dir(phase))
    return info
