"""SFT on tiny:random: material flags, training changes the adapter, resume after an interruption."""

from __future__ import annotations

from dataclasses import replace

import pytest

from conftest_train import TINY, lora_b_norm, make_data
from kgreason.config import SFTOptions, TrainOptions
from kgreason.io import InputError, read_jsonl
from kgreason.runs.folder import Run
from kgreason.train.sft import load_material, run_sft
from kgreason.train.tracking import InterruptAfterStep, SimulatedInterruption


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("data"))


def test_material_flags_and_trace_styles(data):
    easy_full = load_material(data, SFTOptions(material=["easy"], trace_style="full"))
    easy_short = load_material(data, SFTOptions(material=["easy"], trace_style="short"))
    facts = load_material(data, SFTOptions(material=["facts"], max_examples=5))
    both = load_material(data, SFTOptions(material=["facts", "hard"], max_examples=3))
    assert len(easy_full) == 24 and len(facts) == 5 and len(both) == 6
    ex = easy_full[0]
    assert [m["role"] for m in ex["prompt"]] == ["system", "user"] and ex["completion"][0]["role"] == "assistant"
    full = [e["completion"][0]["content"] for e in easy_full]
    short = [e["completion"][0]["content"] for e in easy_short]
    assert all(c.startswith("TRACE: ") and "\nANSWER: " in c for c in full)
    assert all(len(s) <= len(f) for s, f in zip(short, full, strict=True)) and short != full
    mixed = [e["completion"][0]["content"] for e in
             load_material(data, SFTOptions(material=["easy"], trace_style="mix", short_share=0.5))]
    assert mixed != full and mixed != short and set(mixed) <= set(full) | set(short)
    assert facts[0]["prompt"][0]["content"].startswith("Complete the fact:")
    with pytest.raises(InputError, match="--material"):
        load_material(data, SFTOptions(material=["eval"]))


def test_sft_trains_the_adapter_and_resumes_after_interruption(data, tmp_path):
    options = SFTOptions(material=["easy"], max_examples=8,
                         train=TrainOptions(max_steps=4, batch_size=2, max_length=192, save_steps=2, logging_steps=1))
    run = Run.create_or_resume(tmp_path / "run", {"model_ref": TINY})
    with pytest.raises(SimulatedInterruption):
        run_sft(run, TINY, data, options, callbacks=[InterruptAfterStep(3)])
    assert not run.is_done("sft")
    assert (run.adapter_dir("sft") / "checkpoint-2").is_dir(), "the checkpoint before the crash is the resume point"
    steps_before = [m["step"] for m in read_jsonl(run.metrics_path) if "loss" in m]
    assert steps_before == [1, 2]  # step 3 ran but crashed before its log line and its checkpoint

    info = run_sft(run, TINY, data, options)
    assert info["resumed_from"].endswith("checkpoint-2") and info["steps"] == 4
    steps_after = [m["step"] for m in read_jsonl(run.metrics_path) if "loss" in m][len(steps_before):]
    assert steps_after == [3, 4], "only the steps after the checkpoint are trained again"
    adapter = run.adapter_dir("sft")
    assert (adapter / "adapter_config.json").exists() and (adapter / "kgreason_base.json").exists()
    assert not list(adapter.glob("checkpoint-*")), "checkpoints are dropped once the phase is done"
    assert lora_b_norm(adapter) > 0, "training moved LoRA B away from its zero initialisation"

    finished = run.phase_info("sft")["finished"]
    assert run_sft(run, TINY, data, options)["finished"] == finished, "a finished phase is not redone"
    run.close()


def _tiny_lora_batch(dtype: str = "fp32"):
    """tiny:random with LoRA (B perturbed so adapters matter) and a right-padded batch with
    prompt positions masked out of the labels, like SFTTrainer's collator builds."""
    import torch
    from peft import get_peft_model

    from kgreason.config import LoraOptions
    from kgreason.models import load_model

    model, _ = load_model(TINY, dtype=dtype, trainable=True)
    model = get_peft_model(model, LoraOptions(r=4, alpha=8).peft_config())
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(0.05 * torch.randn(p.shape, generator=gen))
    ids = torch.randint(0, model.config.vocab_size, (3, 24), generator=gen)
    mask = torch.ones_like(ids)
    mask[1, 17:] = 0  # padding
    mask[2, 9:] = 0
    labels = ids.clone()
    labels[:, :6] = -100  # the prompt
    labels[1, 12:] = -100
    labels[mask == 0] = -100
    return model, {"input_ids": ids, "attention_mask": mask, "labels": labels}


def test_completion_only_lm_head_matches_the_reference_loss_and_gradients():
    """The fast head (LM head on completion positions only) gives the loss and LoRA gradients of
    transformers' own full-logits loss, within 1e-4 in fp32, and TRL's per-token outputs."""
    import torch
    from trl.trainer.utils import add_fused_lm_head

    from kgreason.models.lora import unwrap_peft
    from kgreason.train.sft import completion_lm_head_forward

    model, batch = _tiny_lora_batch()
    lora = [p for n, p in model.named_parameters() if "lora_" in n]

    ref = model(**batch).loss  # the plain forward: full logits, mean cross-entropy over labels
    ref_grads = torch.autograd.grad(ref, lora)
    add_fused_lm_head(unwrap_peft(model), outputs=("log_probs", "entropy", "is_top1"))
    trl_out = model(**batch, fused_lm_head=True)
    completion_lm_head_forward(model)
    out = model(**batch, fused_lm_head=True)
    grads = torch.autograd.grad(out.loss, lora)

    assert abs(out.loss.item() - ref.item()) < 1e-4
    assert max((a - b).abs().max().item() for a, b in zip(grads, ref_grads, strict=True)) < 1e-4
    for key in ("log_probs", "entropy"):
        assert torch.allclose(getattr(out, key), getattr(trl_out, key).detach(), atol=1e-4), key
    assert torch.equal(out.is_top1, trl_out.is_top1) and torch.equal(out.label_mask, trl_out.label_mask)
    assert model(input_ids=batch["input_ids"]).logits.shape[-1] == model.config.vocab_size  # plain calls unchanged


# Two steps of 4 examples, eager, on whole batches: the reference the micro-batch and the compiled
# trainings are held to (made once for both; they only read it).
EAGER_OPTIONS = TrainOptions(max_steps=2, batch_size=4, dtype="fp32", save_steps=100, logging_steps=1, warmup_ratio=0.0)


@pytest.fixture(scope="module")
def eager(data, tmp_path_factory):
    """(examples, train result, adapter folder) of the plain eager training with EAGER_OPTIONS."""
    import kgreason.train.sft as sft

    examples = load_material(data, SFTOptions(material=["easy"], max_examples=8))
    out = tmp_path_factory.mktemp("eager") / "whole"
    return examples, sft.train_lora(TINY, examples, out, EAGER_OPTIONS), out


def test_micro_batches_train_like_the_full_batch(eager, tmp_path):
    """Splitting each step's examples into accumulated micro-batches keeps the loss and the update."""
    import kgreason.train.sft as sft
    from conftest_train import lora_tensors

    examples, whole, whole_dir = eager
    micro = sft.train_lora(TINY, examples, tmp_path / "micro", replace(EAGER_OPTIONS, micro_batch_tokens=1))  # 1 a pass
    assert abs(whole.train_loss - micro.train_loss) < 1e-4
    a, b = lora_tensors(whole_dir), lora_tensors(tmp_path / "micro")
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-4
    assert any(t.abs().sum() > 0 for k, t in a.items() if "lora_B" in k)


def test_token_budget_chunks_bound_each_pass_and_keep_every_row():
    import torch

    from kgreason.train.sft import token_budget_chunks

    lengths = [40, 500, 38, 260, 41, 480, 250, 45]
    width = max(lengths)
    ids = torch.zeros((8, width), dtype=torch.long)
    mask = torch.zeros((8, width), dtype=torch.long)
    labels = torch.full((8, width), -100)
    for r, n in enumerate(lengths):
        ids[r, :n] = torch.arange(1, n + 1) + 1000 * r
        mask[r, :n] = 1
        labels[r, n - 5 : n] = 7
    batch = {"input_ids": ids, "attention_mask": mask, "labels": labels, "note": "kept"}
    pieces = token_budget_chunks(batch, budget=1024)
    assert all(p["input_ids"].numel() <= 1024 for p in pieces)
    assert [p["input_ids"].shape for p in pieces] == [(2, 500), (3, 260), (3, 41)]  # longest first, greedy
    seen = sorted(int(row[0]) // 1000 for p in pieces for row in p["input_ids"])
    assert seen == list(range(8))
    for p in pieces:
        assert p["note"] == "kept"
        assert p["input_ids"].shape[1] == int(p["attention_mask"].sum(1).max())  # no column of padding only
        for row_ids, row_mask, row_labels in zip(p["input_ids"], p["attention_mask"], p["labels"], strict=True):
            r = int(row_ids[0]) // 1000
            n = lengths[r]
            assert torch.equal(row_ids[:n], ids[r, :n]) and int(row_mask.sum()) == n
            assert int((row_labels != -100).sum()) == 5  # every completion token keeps its label
    assert token_budget_chunks(batch, budget=8 * width) == [batch]  # fits: untouched
    one_row = token_budget_chunks(batch, budget=10)
    assert len(one_row) == 8 and all(p["input_ids"].shape[0] == 1 for p in one_row)  # a row never splits
    left = {"input_ids": ids.flip(1), "attention_mask": mask.flip(1)}
    assert all(p["input_ids"].shape[1] == width for p in token_budget_chunks(left, budget=1024))  # left padding: no cut


def test_compiled_layers_train_like_eager_and_are_eager_again_afterwards(eager, tmp_path):
    """--compile-layers: every decoder layer runs compiled while training, the adapter matches eager
    training's, and the layers are eager again once training ends (a held model samples eagerly)."""
    from transformers import TrainerCallback

    import kgreason.train.sft as sft
    from conftest_train import lora_tensors
    from kgreason.models.lora import unwrap_peft
    from kgreason.train.phase_model import PhaseModel

    class SeeLayers(TrainerCallback):
        compiled: list[bool] = []

        def on_step_begin(self, args, state, control, model=None, **kwargs):
            layers = unwrap_peft(model).model.layers
            self.compiled.append(all(layer._compiled_call_impl is not None for layer in layers))

    examples, reference, reference_dir = eager  # the eager training of the same examples and options
    held, seen = PhaseModel(TINY, "fp32"), SeeLayers()
    compiled = sft.train_lora(TINY, examples, tmp_path / "compiled", replace(EAGER_OPTIONS, compile_layers=True),
                              callbacks=[seen], held=held)
    assert seen.compiled == [True, True]
    assert all(layer._compiled_call_impl is None for layer in unwrap_peft(held.model).model.layers)
    assert abs(reference.train_loss - compiled.train_loss) < 1e-3
    a, b = lora_tensors(reference_dir), lora_tensors(tmp_path / "compiled")
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-3


def test_examples_longer_than_max_length_are_named(data, tmp_path, capsys):
    """TRL keeps the first max_length tokens of an example, so the answer line of a long one is lost:
    the phase says how many, and logs it (imported graphs with long names reach this)."""
    from kgreason.train.sft import training_tokenizer

    options = SFTOptions(material=["easy"], max_examples=4, train=TrainOptions(max_steps=1, batch_size=2, logging_steps=1))
    tok = training_tokenizer(TINY)
    full = [len(tok.apply_chat_template(e["prompt"] + e["completion"])["input_ids"]) for e in load_material(data, options)]
    # every example loses its last 3 tokens or more (its answer line), none its whole completion
    cut_at = min(full) - 3
    options = replace(options, train=replace(options.train, max_length=cut_at))
    run = Run.create_or_resume(tmp_path / "run", {"model_ref": TINY})
    run_sft(run, TINY, data, options)
    out = capsys.readouterr().out
    assert f"WARNING: 4 of 4 SFT examples reach max_length {cut_at} tokens" in out
    assert "--sft-max-length" in out
    assert [m["truncated_examples"] for m in read_jsonl(run.metrics_path) if "truncated_examples" in m] == [4]
    run.close()
