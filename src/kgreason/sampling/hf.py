"""The default backend: batched sampling with transformers models, written for CPU throughput.

What makes it fast (measured by `kgreason bench sampler`):
- Prompts are prefilled once and their KV cache is repeated k times, instead of prefilling k copies
  (prompts are several times longer than answers, so this alone saves most of the compute).
- Many prompts share one batch, left padded and sorted by length so padding stays small.
- Continuous batching: a sequence leaves the batch as soon as its answer line is complete (or eos),
  and waiting prompts are prefilled into the freed slots, so steps stay full instead of dragging a
  few long samples through a mostly empty batch.
- The KV cache is written in place into preallocated buffers (transformers' DynamicCache copies
  the whole cache at every step).
- The model runs in bf16 where the hardware supports it (see kgreason.models.dtype).
Each sample draws from its own RNG seeded by (seed, task id, sample index), so results do not
depend on which other prompts happened to share its batch (up to floating-point batch effects).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer

from kgreason.memory import release_freed_memory
from kgreason.records import Completion
from kgreason.sampling.base import (
    Item,
    Sampler,
    SamplingParams,
    check_items,
    eos_ids,
    sample_seed,
    trim_after_answer,
    window_has_answer_line,
)

# How many trailing tokens to decode when looking for the answer line (the whole line and its newline:
# a second option named later on the line makes it a hedge). "ANSWER: B" is 3-5 tokens,
# but the entity-first form ("ANSWER: IncreaseMemoryLimit (D)") is longer, and the line's start
# must be inside the window (window_has_answer_line drops a partial first line).
_ANSWER_WINDOW = 48
# Share of the free memory a batch's KV cache may take.
_MEMORY_SHARE = 0.25


@dataclass
class _Row:
    """One sample being generated."""

    item: int
    sample_index: int
    generator: torch.Generator | None
    tokens: list[int] = field(default_factory=list)
    finish: str = ""
    reported: bool = False


class _PreallocatedLayer(DynamicLayer):
    """A KV cache layer that writes into a buffer sized for the whole generation.

    Why: transformers' DynamicLayer concatenates the entire cache with each new token, so every
    decoding step copies all keys and values of all rows (about 13% of CPU sampling time measured
    with SmolLM2-135M at 64 rows). Writing in place makes a step's cache cost proportional to one token.
    """

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity, self.length = capacity, 0

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.dtype, self.device = key_states.dtype, key_states.device
            b, h, t, d = key_states.shape
            size = (b, h, max(self.capacity, t), d)
            self._k, self._v = key_states.new_empty(size), value_states.new_empty(size)
            self.is_initialized = True
        t = key_states.shape[-2]
        if self.length + t > self._k.shape[-2]:  # outgrew the estimate: double the buffers
            self._k = torch.cat([self._k, torch.empty_like(self._k)], dim=-2)
            self._v = torch.cat([self._v, torch.empty_like(self._v)], dim=-2)
        self._k[:, :, self.length : self.length + t] = key_states
        self._v[:, :, self.length : self.length + t] = value_states
        self.length += t
        self._refresh()
        return self.keys, self.values

    def _refresh(self) -> None:
        self.keys, self.values = self._k[:, :, : self.length], self._v[:, :, : self.length]

    def get_seq_length(self) -> int:
        return self.length

    # Both copy the filled columns only, into buffers whose free room is left unwritten (see stack).
    def batch_repeat_interleave(self, repeats: int) -> None:
        if self.length:
            self._k, self._v = (self._copied(x, lambda filled: filled.repeat_interleave(repeats, dim=0))
                                for x in (self._k, self._v))
            self._refresh()

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if self.length:
            self._k, self._v = (self._copied(x, lambda filled: filled[indices]) for x in (self._k, self._v))
            self._refresh()

    def _copied(self, buffer: torch.Tensor, rows_of: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        filled = rows_of(buffer[:, :, : self.length])
        out = buffer.new_empty((filled.shape[0], *buffer.shape[1:]))
        out[:, :, : self.length] = filled
        return out

    @classmethod
    def stack(cls, parts: Sequence[_PreallocatedLayer], width: int, start: int, room: int) -> _PreallocatedLayer:
        """One layer holding every part's rows, in order, each right-aligned to `width` columns with
        the first `start` columns dropped and `room` free columns after; unused slots among the
        `width - start` filled columns are zeros (masked, but they must not be NaN). The room stays
        unwritten: it is read only after a token is written there, so its pages never become
        resident until then (for 64 eval rows with a 256-token budget that is ~0.4 GB never
        touched). One copy however many parts are joined."""
        first = parts[0]
        _, h, _, d = first._k.shape
        length = width - start
        size = (sum(p._k.shape[0] for p in parts), h, length + room, d)
        k, v = first._k.new_empty(size), first._v.new_empty(size)
        k[:, :, :length].zero_()
        v[:, :, :length].zero_()
        row = 0
        for layer in parts:
            rows = slice(row, row + layer._k.shape[0])
            lo = width - layer.length - start
            src = slice(max(0, -lo), layer.length)
            k[rows, :, max(lo, 0) : length] = layer._k[:, :, src]
            v[rows, :, max(lo, 0) : length] = layer._v[:, :, src]
            row = rows.stop
        out = cls(first.capacity)
        out.dtype, out.device, out.is_initialized = first.dtype, first.device, True
        out._k, out._v, out.length = k, v, length
        out._refresh()
        return out


def _make_cache(model, capacity: int):
    """transformers' DynamicCache with full-attention layers swapped for preallocated ones."""
    cache = DynamicCache(config=model.config)
    cache.layers = [_PreallocatedLayer(capacity) if type(layer) is DynamicLayer else layer for layer in cache.layers]
    return cache


def _free_memory_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    with contextlib.suppress(OSError, ValueError), open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 4 << 30


def _kv_bytes_per_token(model) -> int:
    cfg = model.config
    cfg = getattr(cfg, "text_config", cfg)
    heads = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    dtype = next(model.parameters()).dtype
    elem = torch.finfo(dtype).bits // 8 if dtype.is_floating_point else 4
    return 2 * cfg.num_hidden_layers * heads * head_dim * elem


class _Batch:
    """The running rows: their KV cache, attention mask, next positions and last sampled tokens."""

    def __init__(self, cache: DynamicCache, mask: torch.Tensor, next_pos: torch.Tensor, rows: list[_Row]) -> None:
        self.cache, self.mask, self.next_pos, self.rows = cache, mask, next_pos, rows
        self.last = torch.zeros(len(rows), dtype=torch.long, device=mask.device)
        self.refillable = all(isinstance(layer, _PreallocatedLayer) for layer in cache.layers)

    def pop_finished(self) -> list[_Row]:
        """Finished rows not yet reported (they stay in the batch until the next drop)."""
        done = [r for r in self.rows if r.finish and not r.reported]
        for r in done:
            r.reported = True
        return done

    @property
    def running(self) -> int:
        return sum(not r.finish for r in self.rows)

    def drop_finished(self, force: bool) -> None:
        keep = [a for a, r in enumerate(self.rows) if not r.finish]
        gone = len(self.rows) - len(keep)
        # Copying the cache costs less than carrying finished rows once they are an eighth of the batch.
        if gone and (force or gone * 8 >= len(self.rows) or not keep):
            self.select(keep)

    def select(self, keep: list[int]) -> None:
        index = torch.tensor(keep, dtype=torch.long, device=self.mask.device)
        if keep:
            self.cache.batch_select_indices(index)
        self.mask, self.next_pos, self.last = self.mask[index], self.next_pos[index], self.last[index]
        self.rows = [self.rows[a] for a in keep]

    @classmethod
    @torch.inference_mode()
    def concat(cls, batches: Sequence[_Batch], max_new_tokens: int) -> _Batch:
        """Stack batches into one, in order: caches aligned on their last column (left padding),
        columns masked for every row dropped, room left for `max_new_tokens` more columns. Rows
        are kept as they are (finished ones too: they may not have been reported yet)."""
        if len(batches) == 1:
            return batches[0]
        width = max(b.mask.shape[1] for b in batches)
        mask = torch.cat([torch.nn.functional.pad(b.mask, (width - b.mask.shape[1], 0)) for b in batches])
        start = int(mask.any(dim=0).to(torch.uint8).argmax())
        cache = batches[0].cache
        # Layer by layer, each stacked layer replaces its parts at once, so the old buffers are freed
        # as the copy proceeds: at most one layer is held twice, not the whole cache (which doubled
        # the evaluation's peak memory).
        for i in range(len(cache.layers)):
            stacked = _PreallocatedLayer.stack([b.cache.layers[i] for b in batches], width, start, max_new_tokens)
            for b in batches:
                b.cache.layers[i] = stacked
        joined = cls(cache, mask[:, start:], torch.cat([b.next_pos for b in batches]),
                     [r for b in batches for r in b.rows])
        joined.last = torch.cat([b.last for b in batches])
        return joined

    def merge(self, other: _Batch, max_new_tokens: int) -> _Batch:
        """Join a freshly prefilled batch into this running one."""
        self.drop_finished(force=True)
        if not self.rows:
            return other
        return _Batch.concat([self, other], max_new_tokens)


class HFSampler(Sampler):
    """Batched sampling over a transformers causal LM (plain or PEFT-wrapped)."""

    name = "hf"

    def __init__(self, model, tokenizer, batch_size: int | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.device = next(model.parameters()).device
        # Rows (prompt x sample) per forward pass: on CPU 64, i.e. 8 prompts x k=8, enough to make the
        # matmuls efficient while the KV cache stays small; GPUs want far more. Lowered to fit memory;
        # KGREASON_SAMPLER_BATCH or batch_size overrides it.
        env = os.environ.get("KGREASON_SAMPLER_BATCH")
        default = 512 if self.device.type == "cuda" else 64
        self.batch_size = int(batch_size or (int(env) if env else default))
        # Prompt tokens per prefill forward pass (padding included): a CPU's caches want few, a GPU many.
        self.prefill_tokens = 1 << 16 if self.device.type == "cuda" else 3072
        self.sdpa = getattr(getattr(model, "config", None), "_attn_implementation", None) == "sdpa"
        self.eos_ids = self._eos_ids()
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(self.eos_ids)
        # (task id, sample index) -> the token ids the model sampled, cut at the answer line; kept
        # only when a caller trains on them (GRPO's rollout), since Completion records hold text
        self.token_ids: dict[tuple[str, int], list[int]] | None = None

    def _eos_ids(self) -> set[int]:
        return eos_ids(self.model, self.tokenizer)

    # ---- public ------------------------------------------------------------------------------
    def generate(self, items: Sequence[Item], params: SamplingParams, progress: bool = True,
                 on_completion: Callable[[Completion], None] | None = None) -> list[Completion]:
        check_items(items)
        if not items:
            return []
        prompts = [self.encode(messages) for _, messages in items]
        # Per item: its completions by sample index, and the next index to hand to on_completion.
        finished: list[dict[int, Completion]] = [{} for _ in items]
        handed = [0] * len(items)
        model_name = getattr(self.model, "kgreason_ref", None) or str(getattr(self.model, "name_or_path", ""))
        adapter = getattr(self.model, "kgreason_adapter", None)
        from kgreason.console import progress as stage_progress

        was_training = self.model.training
        self.model.eval()
        start, new_tokens = time.perf_counter(), 0
        try:
            with stage_progress(len(items) * params.k, "sampling", unit="sample", disable=not progress) as bar:
                for done in self._run(prompts, [task_id for task_id, _ in items], params):
                    for row in done:
                        i = row.item
                        finished[i][row.sample_index] = self._completion(
                            items[i][0], row, len(prompts[i]), params, model_name, adapter)
                        new_tokens += len(row.tokens)
                        # Samples finish in any order; hand them on in index order, as far as it goes.
                        while on_completion is not None and handed[i] in finished[i]:
                            on_completion(finished[i][handed[i]])
                            handed[i] += 1
                    bar.update(len(done))
                    bar.set_postfix(tok_s=f"{new_tokens / max(time.perf_counter() - start, 1e-9):.0f}")
        finally:
            self.model.train(was_training)
        return [by_index[j] for by_index in finished for j in sorted(by_index)]

    def encode(self, messages: list[dict]) -> list[int]:
        """Chat template with the generation prompt, tokenized without extra special tokens."""
        from kgreason.sampling.base import encode_prompt

        return encode_prompt(self.tokenizer, messages)

    # ---- batching ----------------------------------------------------------------------------
    def max_rows(self, prompt_len: int, params: SamplingParams, free_bytes: int | None = None) -> int:
        """Rows per batch: the configured size, lowered so the KV cache fits a share of free memory."""
        per_row = _kv_bytes_per_token(self.model) * (prompt_len + params.max_new_tokens)
        per_row += 8 * len(self.tokenizer) * 2  # float64 probabilities and their running sum for one step
        free = _free_memory_bytes(self.device) if free_bytes is None else free_bytes
        return max(1, min(self.batch_size, int(free * _MEMORY_SHARE // max(per_row, 1))))

    def _run(self, prompts: list[list[int]], task_ids: list[str], params: SamplingParams) -> Iterator[list[_Row]]:
        """Continuous batching: yields finished rows as they finish.

        Prompts enter shortest first. Whenever a quarter of the row slots are free (rows finished at
        their answer line or eos), the next prompts are prefilled and join the running batch, so
        decoding steps stay full instead of dragging a few long samples through a mostly empty batch.
        """
        queue = deque(sorted(range(len(prompts)), key=lambda i: len(prompts[i])))
        free = _free_memory_bytes(self.device)
        cap = max(params.k, self.max_rows(max(len(p) for p in prompts), params, free))
        state: _Batch | None = None
        while queue or state is not None:
            active = 0 if state is None else state.running
            if queue and (cap - active >= params.k) and (state is None or (cap - active) * 4 >= cap or not state.refillable):
                if state is not None and not state.refillable:
                    yield from self._drain(state, params)
                    state, active = None, 0
                take = max(1, (cap - active) // params.k)
                group = [queue.popleft() for _ in range(min(take, len(queue)))]
                joined = self._prefill(group, prompts, task_ids, params)
                state = joined if state is None else state.merge(joined, params.max_new_tokens)
                release_freed_memory()  # the replaced caches: see kgreason/memory.py
                yield state.pop_finished()
            if state is None or not state.running:
                state = None
                continue
            self._step(state, params)
            yield state.pop_finished()

    def _drain(self, state: _Batch, params: SamplingParams) -> Iterator[list[_Row]]:
        while state.running:
            self._step(state, params)
            yield state.pop_finished()

    def _prefill(self, group: list[int], prompts: list[list[int]], task_ids: list[str], params: SamplingParams) -> _Batch:
        """Prefill the group a few prompts per forward pass and stack the results into one batch.

        Why: on CPU a prefill of 64 open-book prompts at once runs at half the tokens/s of 8 at a
        time (the attention scores and MLP activations of the whole group no longer fit the caches);
        measured with SmolLM2-135M, ~360-token prompts, sdpa: 1,444 tok/s for 64, 2,847 for 8.
        """
        parts: list[list[int]] = [[]]
        for i in group:
            if parts[-1] and (len(parts[-1]) + 1) * max(len(prompts[j]) for j in [*parts[-1], i]) > self.prefill_tokens:
                parts.append([])
            parts[-1].append(i)
        first = self._prefill_part(parts[0], prompts, task_ids, params)
        if len(parts) == 1 or not first.refillable:  # caches that cannot be stacked: one pass
            return first if len(parts) == 1 else self._prefill_part(group, prompts, task_ids, params)
        rest = [self._prefill_part(part, prompts, task_ids, params) for part in parts[1:]]
        return _Batch.concat([first, *rest], params.max_new_tokens)

    @torch.inference_mode()
    def _prefill_part(self, group: list[int], prompts: list[list[int]], task_ids: list[str],
                      params: SamplingParams) -> _Batch:
        """Prefill each prompt once, give each of its k samples a copy of the cache, draw first tokens."""
        k = params.k
        ids, mask = self._left_pad([prompts[i] for i in group])
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = _make_cache(self.model, ids.shape[1] + params.max_new_tokens)
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                         use_cache=True, logits_to_keep=1)
        logits, next_pos = out.logits[:, -1, :], positions[:, -1] + 1
        if k > 1:
            cache.batch_repeat_interleave(k)
            logits, mask, next_pos = (t.repeat_interleave(k, dim=0) for t in (logits, mask, next_pos))
        rows = [
            _Row(item, j, None if params.greedy else torch.Generator().manual_seed(sample_seed(params.seed, task_ids[item], j)))
            for item in group
            for j in range(k)
        ]
        state = _Batch(cache, mask, next_pos, rows)
        self._advance(state, logits, params)
        return state

    @torch.inference_mode()
    def _step(self, state: _Batch, params: SamplingParams) -> None:
        """One decoding step for every running row (finished rows are dropped first when worth it)."""
        state.drop_finished(force=False)
        state.mask = torch.cat([state.mask, state.mask.new_ones((state.mask.shape[0], 1))], dim=1)
        # One new token attends to every unpadded column: with sdpa that 4D mask is the 2D one
        # reshaped, and handing it over ready skips transformers' index-based mask builder (a third
        # of a CPU decoding step at 64 rows, measured with torch.profiler).
        mask = state.mask.bool()[:, None, None, :] if self.sdpa else state.mask
        out = self.model(input_ids=state.last[:, None], attention_mask=mask, position_ids=state.next_pos[:, None],
                         past_key_values=state.cache, use_cache=True)
        state.next_pos = state.next_pos + 1
        self._advance(state, out.logits[:, -1, :], params)

    def _advance(self, state: _Batch, logits: torch.Tensor, params: SamplingParams) -> None:
        tokens = self._pick(logits, [row.generator for row in state.rows], params)
        state.last = tokens
        for row, token in zip(state.rows, tokens.tolist(), strict=True):
            self._append(row, token, params)
            if not row.finish and len(row.tokens) >= params.max_new_tokens:
                row.finish = "length"

    def _left_pad(self, seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, s in enumerate(seqs):
            if s:
                ids[i, width - len(s):] = torch.tensor(s, dtype=torch.long)
                mask[i, width - len(s):] = 1
        return ids.to(self.device), mask.to(self.device)

    @staticmethod
    def _pick(logits: torch.Tensor, generators: list[torch.Generator | None], params: SamplingParams) -> torch.Tensor:
        """Next token per row: argmax when greedy, else temperature + top-p sampling with per-row RNGs."""
        logits = logits.float()
        if params.greedy:
            return logits.argmax(dim=-1)
        probs = torch.softmax(logits / params.temperature, dim=-1)
        if params.top_p < 1.0:
            sorted_p, sorted_i = probs.sort(dim=-1, descending=True)
            # Keep the smallest prefix whose mass reaches top_p (the first token always survives).
            drop = (sorted_p.cumsum(dim=-1) - sorted_p) >= params.top_p
            sorted_p = sorted_p.masked_fill(drop, 0.0)
            probs = torch.zeros_like(probs).scatter_(-1, sorted_i, sorted_p)
        # Inverse-CDF sampling: one uniform draw per row from that row's own generator, then one
        # batched searchsorted. (torch.multinomial per row costs tens of ms on a 49k vocabulary.)
        uniforms = torch.cat([torch.rand(1, generator=g, dtype=torch.float64) for g in generators])
        cdf = probs.double().cumsum(dim=-1)
        targets = (uniforms.to(cdf.device) * cdf[:, -1]).unsqueeze(-1)
        picked = torch.searchsorted(cdf, targets, right=True).squeeze(-1)
        return picked.clamp(max=probs.shape[-1] - 1)

    def _append(self, row: _Row, token: int, params: SamplingParams) -> None:
        if row.finish:
            return
        row.tokens.append(token)
        if token in self.eos_ids:
            row.finish = "eos"
        elif params.stop_at_answer and window_has_answer_line(self.tokenizer.decode(row.tokens[-_ANSWER_WINDOW:]),
                                                              whole=len(row.tokens) <= _ANSWER_WINDOW, family=params.family):
            row.finish = "answer"

    def _sampled_ids(self, row: _Row, text: str) -> list[int]:
        """The shortest prefix of the sampled tokens whose text covers `text` (the completion after
        the answer-line cut): what the model drew, never re-encoded, so a trainer scores the very
        tokens it sampled. At most the token that completed the line's end is kept past it."""
        ids = list(row.tokens)
        while len(ids) > 1 and self.tokenizer.decode(ids[:-1], skip_special_tokens=True).startswith(text):
            ids.pop()
        return ids

    def _completion(self, task_id: str, row: _Row, prompt_tokens: int, params: SamplingParams,
                    model_name: str, adapter: str | None) -> Completion:
        text = self.tokenizer.decode(row.tokens, skip_special_tokens=True)
        tokens = len(row.tokens)
        if row.finish == "answer":
            # The stop rule may decide on a token past the line ("B" then "\n"); keep the answer line
            # only, and count the tokens of what is kept, as the vllm backend does.
            trimmed = trim_after_answer(text, params.family)
            if trimmed != text:
                text, tokens = trimmed, len(self.tokenizer(trimmed, add_special_tokens=False)["input_ids"])
        if self.token_ids is not None:
            self.token_ids[(task_id, row.sample_index)] = self._sampled_ids(row, text)
        return Completion(
            task_id=task_id,
            sample_index=row.sample_index,
            text=text,
            prompt_tokens=prompt_tokens,
            completion_tokens=tokens,
            finish_reason=row.finish,
            model=model_name,
            adapter=adapter,
            temperature=params.temperature,
            seed=params.seed,
        )
