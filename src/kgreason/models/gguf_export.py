"""Write a Llama-architecture transformers model as a GGUF file that llama.cpp and transformers read.

What the file holds mirrors llama.cpp's `convert_hf_to_gguf.py` (class `LlamaModel` and
`_set_vocab_gpt2`), so both readers find what they expect:

- tensors under the GGUF names of gguf-py's `TensorNameMap` (`token_embd`, `blk.N.attn_q`, ...);
  `lm_head` is left out when the embeddings are tied, which is how both readers tell tied models;
- `attn_q` / `attn_k` rows permuted into llama.cpp's rotary layout (transformers' GGUF loader
  undoes exactly this permutation, `LlamaTensorProcessor._reverse_permute_weights`);
- `llama.*` hyperparameters (context, embedding and feed-forward lengths, heads, KV heads, RMS
  epsilon, rope base and dimension, vocabulary size) and `general.file_type`;
- the byte-level BPE tokenizer as `tokenizer.ggml.*` (model `gpt2`, tokens with their types,
  merges, special ids, chat template) via gguf-py's `SpecialVocab`, like the converter.

`tokenizer.ggml.pre` names llama.cpp's pre-tokenizer regex. llama.cpp's converter finds it by
hashing the tokenizer's output on a probe text against a table of known models; we cannot run that
table here, so we copy the name from the GGUF the base model came from when the vocabularies are
identical (the bundled SmolLM2 and tiny:random both give "smollm") and write "default" otherwise.

Weights are written unquantised (f32, or f16 for matrices with norms and 1-D tensors kept f32, as
the converter does); quantise afterwards with llama.cpp's `llama-quantize` if wanted.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from kgreason.io import InputError, file_version

GGUF_TYPES = ("f16", "f32")
DEFAULT_PRE = "default"


def _permute(weights: Any, n_head: int, n_head_kv: int | None) -> Any:
    """llama.cpp's rotary row order for q/k (its converter's `LlamaModel.permute`)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2)
            .reshape(weights.shape))


def _rope_theta(config: Any) -> float:
    # transformers 5 keeps rope settings in `rope_parameters`; older configs have `rope_theta`.
    params = getattr(config, "rope_parameters", None) or {}
    rope_type = params.get("rope_type", "default") if isinstance(params, dict) else "default"
    if rope_type not in (None, "default"):
        raise InputError(f"GGUF export: rope scaling {rope_type!r} is not supported (only plain RoPE)")
    theta = params.get("rope_theta") if isinstance(params, dict) else None
    return float(theta if theta is not None else getattr(config, "rope_theta", 10000.0))


def _vocab(tokenizer: Any, vocab_size: int) -> tuple[list[str], list[int]]:
    """Token strings and llama.cpp token types, in id order, padded to the model's vocabulary."""
    import gguf

    reverse = {i: t for t, i in tokenizer.get_vocab().items()}
    added = tokenizer.added_tokens_decoder
    tokens: list[str] = []
    types: list[int] = []
    for i in range(vocab_size):
        if i not in reverse:
            tokens.append(f"[PAD{i}]")
            types.append(int(gguf.TokenType.UNUSED))
        elif i in added:
            tokens.append(reverse[i])
            types.append(int(gguf.TokenType.CONTROL if added[i].special else gguf.TokenType.USER_DEFINED))
        else:
            tokens.append(reverse[i])
            types.append(int(gguf.TokenType.NORMAL))
    return tokens, types


def source_pre_tokenizer(source: Path | None, tokens: list[str]) -> str:
    """`tokenizer.ggml.pre` of the GGUF the base came from, when its token list is ours; else "default"."""
    if source is None or not Path(source).is_file():
        return DEFAULT_PRE
    source_tokens, pre = _source_vocabulary(str(Path(source).resolve()), file_version(source))
    if source_tokens is None or pre is None or source_tokens != tuple(tokens):
        return DEFAULT_PRE
    return pre


@lru_cache(maxsize=2)
def _source_vocabulary(path: str, version: tuple) -> tuple[tuple[str, ...] | None, str | None]:
    """A GGUF's token list and pre-tokenizer name, read once per process and file version: gguf-py
    parses every field of the file in Python (3.6 s for the bundled model's 49k-token vocabulary on
    an AMD EPYC with AVX2), and every export and every OpenVINO engine build asks."""
    from gguf import GGUFReader

    reader = GGUFReader(path)
    field_tokens = reader.fields.get("tokenizer.ggml.tokens")
    field_pre = reader.fields.get("tokenizer.ggml.pre")
    return (tuple(field_tokens.contents()) if field_tokens is not None else None,
            str(field_pre.contents()) if field_pre is not None else None)


def write_gguf(model: Any, tokenizer_dir: Path, tokenizer: Any, out: Path, gguf_type: str = "f16",
               name: str = "kgreason", source_gguf: Path | None = None) -> dict:
    """Write `model` (a LlamaForCausalLM) to `out`; `tokenizer_dir` holds the saved tokenizer files."""
    import gguf
    import numpy as np
    import torch

    if gguf_type not in GGUF_TYPES:
        raise InputError(f"GGUF type {gguf_type!r}: expected one of {', '.join(GGUF_TYPES)}")
    config = model.config
    if config.model_type != "llama":
        raise InputError(f"GGUF export writes Llama-architecture models (SmolLM2, tiny:random); "
                         f"this model is {config.model_type!r}")
    n_layers = config.num_hidden_layers
    n_head = config.num_attention_heads
    n_head_kv = getattr(config, "num_key_value_heads", None) or n_head
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // n_head
    tied = bool(getattr(config, "tie_word_embeddings", False))
    ftype = gguf.LlamaFileType.MOSTLY_F16 if gguf_type == "f16" else gguf.LlamaFileType.ALL_F32

    writer = gguf.GGUFWriter(str(out), gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.LLAMA])
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name)
    writer.add_block_count(n_layers)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head_kv)
    writer.add_rope_freq_base(_rope_theta(config))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    if head_dim != config.hidden_size // n_head:  # the converter writes these only when they differ
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    writer.add_file_type(ftype)
    writer.add_vocab_size(config.vocab_size)
    writer.add_rope_dimension_count(head_dim)

    tokens, types = _vocab(tokenizer, config.vocab_size)
    pre = source_pre_tokenizer(source_gguf, tokens)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    # Said explicitly (as the bundled SmolLM2 GGUF does) so llama.cpp prepends a BOS only when
    # the HF tokenizer does; kgreason's prompts are trained without one.
    probe = tokenizer("a", add_special_tokens=True)["input_ids"]
    writer.add_add_bos_token(bool(probe) and probe[0] == tokenizer.bos_token_id)
    writer.add_add_space_prefix(False)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    special = gguf.SpecialVocab(str(tokenizer_dir), load_merges=True, n_vocab=len(tokens))
    if not special.merges:
        raise InputError(f"{tokenizer_dir}: GGUF export needs a byte-level BPE tokenizer with merges")
    special.add_special_token.pop("bos", None)  # written above from the tokenizer's behaviour
    special.add_to_gguf(writer, quiet=True)

    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, n_layers)
    written = 0
    for hf_name, tensor in model.state_dict().items():
        if hf_name.endswith("rotary_emb.inv_freq") or (tied and hf_name == "lm_head.weight"):
            continue
        data = tensor.detach().to(torch.float32).cpu().numpy()
        if hf_name.endswith("self_attn.q_proj.weight") or hf_name.endswith("self_attn.q_proj.bias"):
            data = _permute(data, n_head, n_head)
        elif hf_name.endswith("self_attn.k_proj.weight") or hf_name.endswith("self_attn.k_proj.bias"):
            data = _permute(data, n_head, n_head_kv)
        gguf_name = name_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            raise InputError(f"GGUF export: no GGUF name for tensor {hf_name!r}")
        # As the converter: 1-D tensors and norms stay f32 (llama.cpp's kernels expect that).
        if gguf_type == "f16" and data.ndim > 1 and not gguf_name.endswith("_norm.weight"):
            data = data.astype(np.float16)
        writer.add_tensor(gguf_name, np.ascontiguousarray(data))
        written += 1

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return {"file": out.name, "type": gguf_type, "tensors": written, "pre_tokenizer": pre,
            "bytes": out.stat().st_size}
