"""`tiny:random`: a small random Llama for tests and dry runs, with the real SmolLM2 tokenizer.

Why the real tokenizer: everything downstream (chat template, padding, eos, the answer-line stop)
behaves exactly as with the bundled model, only the weights are random. The tokenizer alone is
converted from the bundled GGUF once (a few seconds) and cached; the weights are built in memory
from a seed, so two processes with the same seed get identical models.
"""

from __future__ import annotations

import copy
import functools

import torch

from kgreason.models.cache import build_once, models_dir
from kgreason.models.gguf import BUNDLED_NAME, bundled_gguf_path, convert_gguf_tokenizer

TINY_SHAPE = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 2048,
}


def bundled_tokenizer_folder():
    """The folder of the SmolLM2 tokenizer: the prepared bundled model's, else a cached conversion."""
    prepared = models_dir() / BUNDLED_NAME
    if (prepared / "tokenizer_config.json").is_file():
        return prepared
    target = models_dir() / f"{BUNDLED_NAME}-tokenizer"
    folder, _ = build_once(target, lambda tmp: convert_gguf_tokenizer(bundled_gguf_path(), tmp))
    return folder


def bundled_tokenizer():
    """The SmolLM2 tokenizer (pad token set), a copy of its own for the caller."""
    from kgreason.models.tokenizers import tokenizer_from_folder

    return tokenizer_from_folder(bundled_tokenizer_folder())


def build_tiny_model(tokenizer, seed: int = 0, dtype: torch.dtype = torch.float32):
    """A randomly initialised LlamaForCausalLM whose vocabulary matches `tokenizer`, deterministic in `seed`."""
    template = _tiny_template(len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id,
                              tokenizer.pad_token_id, seed)
    # A copy of the one built for these ids: the random init of the 3M weights (mostly the 49k-row
    # embedding) took 0.11 s per model, the copy 8 ms; tests and the demo build dozens per process.
    return copy.deepcopy(template).to(dtype)


@functools.lru_cache(maxsize=8)
def _tiny_template(vocab_size: int, bos: int | None, eos: int | None, pad: int | None, seed: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=vocab_size, bos_token_id=bos, eos_token_id=eos, pad_token_id=pad,
                         tie_word_embeddings=True, **TINY_SHAPE)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = eos
    model.generation_config.pad_token_id = pad
    return model
