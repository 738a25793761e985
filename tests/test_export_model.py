"""`kgreason export model`: the merged folder and the GGUF give the adapter model's logits back.

Tolerances (float32 throughout):
- merged HF folder vs the PEFT model with its adapter: atol 1e-4. Merging computes W + s·B·A once
  instead of W·x + s·B·(A·x); the two differ only by float32 rounding (measured 8.4e-6 on
  logits of magnitude 0.8), so 1e-4 passes with margin, while a wrong merge (a missing scale, an
  unmerged layer) moves logits by up to the adapter's whole effect (1.5 against the base here).
- GGUF f32 vs the same: atol 1e-4 (the same weights, permuted and permuted back, so the same
  rounding as the folder).
- GGUF f16: no logits (a second transformers load of a GGUF costs ~8 s here); its matrices must be
  exactly the f32 file's values rounded to f16, which carries the f32 logits check over.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from kgreason.cli import main
from kgreason.export.model import EXPORT_FILE, GGUF_DIR, export_model, phase_adapter
from kgreason.models import load_model
from kgreason.models.lora import attach_lora, save_adapter
from kgreason.runs.folder import Run

BASE = "tiny:random:3"
PROMPT = "<|im_start|>user\nTLSHandshakeError is caused by ClockSkew. Which fix?<|im_end|>\n<|im_start|>assistant\nTRACE:"


def _adapter(run: Run, phase: str, seed: int) -> None:
    model, _ = load_model(BASE, dtype="fp32")
    peft_model = attach_lora(model, r=4, alpha=8, dropout=0.0)
    # LoRA B starts at zero (a no-op adapter); random B makes the merge change the logits.
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_A" in name or "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    save_adapter(peft_model, run.adapter_dir(phase))
    run.mark_done(phase, {"kind": "train", "adapter": f"adapters/{phase}"})


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A run folder with finished SFT and RSFT adapters (different weights), as `kgreason run` leaves it."""
    root = tmp_path_factory.mktemp("export-model") / "run"
    run = Run.create_or_resume(root, {"model": BASE})
    _adapter(run, "sft", seed=1)
    _adapter(run, "rsft", seed=2)
    return root


@pytest.fixture(scope="module")
def peft_logits(run_dir) -> dict[str, tuple[torch.Tensor, list[int]]]:
    """Per phase: the logits of the base with the phase's adapter on top (unmerged PEFT), and the prompt ids."""
    result = {}
    for phase in ("sft", "rsft"):
        model, tok = load_model(BASE, adapter=run_dir / "adapters" / phase, dtype="fp32")
        ids = tok(PROMPT)["input_ids"]
        with torch.no_grad():
            result[phase] = (model(input_ids=torch.tensor([ids])).logits[0], ids)
    return result


@pytest.fixture(scope="module")
def exported(run_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("exports") / "rsft"
    export_model(run_dir, out, gguf_type="f32")
    return out


def test_default_phase_is_the_last_one_done_and_phase_picks_another(run_dir):
    assert phase_adapter(run_dir) == ("rsft", run_dir / "adapters" / "rsft")
    assert phase_adapter(run_dir, "sft") == ("sft", run_dir / "adapters" / "sft")


def test_merged_folder_loads_with_plain_transformers_and_matches_the_adapter_model(exported, peft_logits, tmp_path):
    names = {p.name for p in exported.iterdir()}
    assert {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json", EXPORT_FILE} <= names
    assert not any(p.name.endswith(".tmp") for p in exported.parent.iterdir())  # the temp folder was renamed
    info = json.loads((exported / EXPORT_FILE).read_text())
    assert info["phase"] == "rsft" and info["base"] == BASE
    # A fresh interpreter that never imports kgreason loads the folder and computes the logits.
    script = (
        "import json, sys, torch\n"
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n"
        "tok = AutoTokenizer.from_pretrained(sys.argv[1])\n"
        "model = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32)\n"
        "ids = tok(sys.argv[2])['input_ids']\n"
        "with torch.no_grad():\n"
        "    logits = model(input_ids=torch.tensor([ids])).logits[0]\n"
        "assert not any(m.startswith('kgreason') for m in sys.modules)\n"
        "json.dump({'ids': ids, 'logits': logits.tolist(), 'eos': model.generation_config.eos_token_id},"
        " open(sys.argv[3], 'w'))\n"
    )
    result_file = tmp_path / "logits.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    subprocess.run([sys.executable, "-c", script, str(exported), PROMPT, str(result_file)], check=True, env=env,
                   cwd=tmp_path, timeout=120)
    result = json.loads(result_file.read_text())
    peft, ids = peft_logits["rsft"]
    assert result["ids"] == ids
    torch.testing.assert_close(torch.tensor(result["logits"]), peft, rtol=0, atol=1e-4)
    base, tok = load_model(BASE, dtype="fp32")
    with torch.no_grad():
        base_logits = base(input_ids=torch.tensor([ids])).logits[0]
    assert (base_logits - peft).abs().max() > 1e-1  # the adapter matters, so the match above means something
    assert result["eos"] == tok.eos_token_id  # generation stops at the chat turn's end


@pytest.fixture(scope="module")
def f32_gguf(exported):
    """The exported f32 GGUF, read once (gguf-py parses the 49k-token vocabulary in Python: seconds)."""
    from gguf import GGUFReader

    return GGUFReader(str(exported / GGUF_DIR / "model-f32.gguf"))


@pytest.fixture
def parsed_once(exported, f32_gguf, monkeypatch):
    """transformers opens a GGUF with gguf-py's GGUFReader, which parses every field in Python (seconds
    for the vocabulary), and a model load opens it twice: here it gets the f32 file's reader that
    f32_gguf parsed already (the same file, read only). Any other file is parsed as usual."""
    import gguf

    real, path = gguf.GGUFReader, (exported / GGUF_DIR / "model-f32.gguf").resolve()

    def reader(file, *args, **kwargs):
        if not args and not kwargs and Path(file).resolve() == path:
            return f32_gguf
        return real(file, *args, **kwargs)

    monkeypatch.setattr(gguf, "GGUFReader", reader)


def test_gguf_f32_round_trips_through_transformers(exported, peft_logits, parsed_once):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(exported / GGUF_DIR), gguf_file="model-f32.gguf",
                                                 dtype=torch.float32)
    assert model.config.tie_word_embeddings and model.config.num_key_value_heads == 2  # read from GGUF metadata
    peft, ids = peft_logits["rsft"]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0]
    torch.testing.assert_close(logits, peft, rtol=0, atol=1e-4)


def test_gguf_tokenizer_metadata_rebuilds_the_same_tokenizer(exported, peft_logits, f32_gguf, parsed_once):
    from transformers import AutoTokenizer

    fields = f32_gguf.fields
    assert fields["general.architecture"].contents() == "llama"
    assert fields["tokenizer.ggml.pre"].contents() == "smollm"  # copied from the bundled GGUF (same vocabulary)
    assert fields["tokenizer.ggml.add_bos_token"].contents() is False  # kgreason's prompts carry no BOS
    tok = AutoTokenizer.from_pretrained(str(exported / GGUF_DIR), gguf_file="model-f32.gguf")
    assert tok(PROMPT)["input_ids"] == peft_logits["rsft"][1]
    assert tok.eos_token == "<|im_end|>" and "<|im_start|>" in (tok.chat_template or "")


def test_gguf_f16_holds_the_f32_weights_rounded_to_half_precision(run_dir, f32_gguf, tmp_path):
    """The f16 file of the same merged model: matrices are exactly the f32 file's values rounded to
    f16, norms stay f32 and equal. The f32 file is the one transformers reads back to the adapter
    model's logits (above), so this carries that check over to f16 without a second slow load."""
    import numpy as np
    from gguf import GGMLQuantizationType, GGUFReader

    from kgreason.models.gguf_export import write_gguf

    merged, tok = load_model(BASE, adapter=run_dir / "adapters" / "rsft", dtype="fp32", merge=True)
    tok.save_pretrained(tmp_path / "tok")
    (tmp_path / "g").mkdir()
    info = write_gguf(merged, tmp_path / "tok", tok, tmp_path / "g" / "m.gguf", gguf_type="f16")
    half = {t.name: t for t in GGUFReader(str(tmp_path / "g" / "m.gguf")).tensors}
    full = {t.name: t for t in f32_gguf.tensors}
    assert half["blk.0.attn_q.weight"].tensor_type == GGMLQuantizationType.F16
    assert half["blk.0.attn_norm.weight"].tensor_type == GGMLQuantizationType.F32  # norms stay f32, as llama.cpp wants
    assert "output.weight" not in half and info["tensors"] == len(half)  # tied embeddings: no lm_head
    assert set(half) == set(full)
    for name, t in half.items():
        want = np.asarray(full[name].data, dtype=np.float32)
        if t.tensor_type == GGMLQuantizationType.F16:
            want = want.astype(np.float16)
        got = np.asarray(t.data)
        assert got.dtype == want.dtype and got.shape == want.shape, name
        assert np.array_equal(got, want), name


def test_missing_run_phase_or_foreign_out_folder_is_one_line_and_exit_2(run_dir, tmp_path, capsys, monkeypatch):
    import kgreason.models as models

    def no_load(*args, **kwargs):
        raise AssertionError("a model was loaded before the input was checked")

    monkeypatch.setattr(models, "load_model", no_load)
    cases = [
        (["--run", str(tmp_path / "nope")], "not a run folder"),
        (["--run", str(run_dir), "--phase", "grpo"], "phase grpo has no finished adapter"),
    ]
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    cases.append((["--run", str(run_dir)], "not an earlier `kgreason export model` folder"))
    for args, message in cases:
        out = foreign if "not an earlier" in message else tmp_path / "out"
        assert main(["export", "model", *args, "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err and "Traceback" not in err
    assert (foreign / "notes.txt").read_text() == "keep me"
    assert not (tmp_path / "out").exists()


def test_a_crash_while_writing_leaves_the_previous_export_whole(run_dir, tmp_path, monkeypatch):
    import kgreason.models.gguf_export as gguf_export

    out = tmp_path / "export"
    export_model(run_dir, out, phase="sft")
    before = (out / "model.safetensors").read_bytes()

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(gguf_export, "write_gguf", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        export_model(run_dir, out, phase="rsft", gguf_type="f16")
    assert json.loads((out / EXPORT_FILE).read_text())["phase"] == "sft"
    assert (out / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]  # no temp folder left behind


LLAMA_CPP_BIN = os.environ.get("LLAMA_CPP_BIN", "")  # a llama.cpp build's bin/ folder (llama-tokenize, llama-simple)


@pytest.mark.skipif(not (Path(LLAMA_CPP_BIN) / "llama-simple").is_file(),
                    reason="llama.cpp is not installed; set LLAMA_CPP_BIN to a build's bin/ folder to run")
def test_llama_cpp_reads_the_gguf_like_transformers_reads_the_folder(exported, peft_logits, tmp_path):
    """llama.cpp itself: the prompt tokenizes to the same ids and 40 greedy tokens give the same text."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_file = str(exported / GGUF_DIR / "model-f32.gguf")
    prompt_file = tmp_path / "prompt.txt"
    prompt_file.write_text(PROMPT, encoding="utf-8")
    tokenized = subprocess.run([str(Path(LLAMA_CPP_BIN) / "llama-tokenize"), "-m", gguf_file, "-f", str(prompt_file),
                                "--ids", "--log-disable"], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(tokenized.stdout.strip().splitlines()[-1]) == peft_logits["rsft"][1]
    run = subprocess.run([str(Path(LLAMA_CPP_BIN) / "llama-simple"), "-m", gguf_file, "-n", "40", PROMPT],
                         capture_output=True, text=True, check=True, timeout=120)
    ours = run.stdout[len(PROMPT):] if run.stdout.startswith(PROMPT) else run.stdout.split("TRACE:", 1)[-1]
    tok = AutoTokenizer.from_pretrained(str(exported))
    model = AutoModelForCausalLM.from_pretrained(str(exported), dtype=torch.float32)
    ids = torch.tensor([peft_logits["rsft"][1]])
    out = model.generate(ids, max_new_tokens=40, do_sample=False, eos_token_id=tok.eos_token_id)
    theirs = tok.decode(out[0, ids.shape[1]:]).strip()
    assert len(theirs) > 20 and ours.strip() == theirs
