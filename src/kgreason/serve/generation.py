"""Live generation for Try It: a FIFO queue per model, one generation at a time, streamed by token.

Why a queue: a CPU box runs one forward pass well and several badly, and a model is large enough
that loading it per request would dominate. Each model (a run's base or one of its adapters) gets
one worker thread; requests wait in order and the page is told its position. Every job is capped in
new tokens and in wall time (transformers' `max_time`), and the number of waiting jobs per model is
capped too. A job can be cancelled while it waits or while it generates (the page's Cancel button,
`DELETE /api/jobs/<id>`, or the client going away mid-stream); a cancelled job frees its slot.

Why loads go through one `ModelCache`: transformers' loading is not thread-safe. Its lazy imports
and its meta-device initialisation patch process-wide state, and two first requests for different
models loading at once broke every later load of the process ("cannot import name AutoTokenizer",
"Cannot copy out of meta tensor"). So the cache loads one model at a time under a lock, keeps at
most a few loaded (least recently used out first), caches nothing when a load fails (the next
request simply tries again), and the page gets a sentence rather than the library's message.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

MAX_NEW_TOKENS = 512
DEFAULT_NEW_TOKENS = 160
DEFAULT_TIMEOUT_S = 60.0
MAX_PENDING_PER_MODEL = 8
MAX_LOADED_MODELS = 2  # a run's base + one adapter; a third model evicts the least recently used
IDLE_UNLOAD_S = 300.0
_KEEP_FINISHED = 200
FINISHED = ("done", "error", "cancelled")

log = logging.getLogger("kgreason.serve")


class QueueFull(RuntimeError):
    """Too many jobs are waiting for this model (HTTP 429)."""


@dataclass
class ModelSpec:
    key: str  # "<run>::<model id>", one queue per key
    ref: str | None
    adapter: str | None

    @property
    def label(self) -> str:
        run, _, model = self.key.rpartition("::")
        return f"the {model} model of run {run}" if run else f"model {self.key}"


@dataclass
class Job:
    id: str
    model: ModelSpec
    task: Any  # kgreason.records.Task
    max_new_tokens: int
    temperature: float
    timeout_s: float
    score: Callable[[str], dict]  # completion text -> RewardBreakdown dict
    status: str = "queued"  # queued | running | done | error | cancelled
    events: list[dict] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    wait_s: float = 0.0  # seconds spent getting the model (loading it, or waiting for a load)
    cancel_requested: threading.Event = field(default_factory=threading.Event)

    def emit(self, kind: str, **data: Any) -> None:
        self.events.append({"event": kind, **data})

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


LoadFn = Callable[[ModelSpec], tuple[Any, Any]]


def load_for_spec(spec: ModelSpec) -> tuple[Any, Any]:
    from kgreason.models import load_model

    # merged: Try It never trains, and an unmerged LoRA model runs every adapted layer twice
    return load_model(spec.ref, adapter=spec.adapter, merge=spec.adapter is not None)


def release_memory() -> None:
    """Collect the dropped model and hand freed heap pages back to the OS.

    glibc keeps freed arenas mapped, so without malloc_trim the process stayed at twice its idle
    size after a model was dropped.
    """
    from kgreason.memory import release_freed_memory

    gc.collect()
    release_freed_memory()  # a no-op where the C library has no malloc_trim (musl)


@dataclass
class _Load:
    """A load in flight: how many other callers wait for it, and what it gave (None: failed)."""

    waiters: int = 0
    done: bool = False
    pair: tuple[Any, Any] | None = None


class ModelCache:
    """Loaded (model, tokenizer) pairs: at most `capacity` in memory, least recently used out
    first, loaded strictly one at a time, process-wide (see the module docstring for why).

    A worker holds a lease on its model while it generates; a leased model is never evicted, and
    a load that needs a slot while every cached model is leased waits for one to be handed back.
    So the bound holds for models in use too: dropping a model from the cache while a worker still
    generated with it would leave it in memory beside the next one.

    Callers that ask for a model while it is being loaded wait for that load and get leases from
    it, handed over when it finishes: queued behind the load lock instead (not FIFO), a second
    caller could run after two other models had loaded and evicted it, and load it again.
    """

    def __init__(self, load: LoadFn = load_for_spec, capacity: int = MAX_LOADED_MODELS) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.load = load
        self.capacity = capacity
        self.load_lock = threading.Lock()  # held for the whole of a load; one load at a time
        self._items: collections.OrderedDict[str, tuple[Any, Any]] = collections.OrderedDict()
        self._leases: dict[str, int] = {}
        self._cond = threading.Condition()  # guards _items, _leases and _loading, never held while loading
        self._loading: dict[str, _Load] = {}  # the load in flight per key, and who waits for it
        self.loads = 0  # loads started, failed ones included

    def loaded(self) -> list[str]:
        with self._cond:
            return list(self._items)

    def has(self, key: str) -> bool:
        with self._cond:
            return key in self._items

    def full_and_busy(self) -> bool:
        """Every slot holds a model in use: a new model waits for one to be handed back."""
        with self._cond:
            return len(self._items) >= self.capacity and all(self._leases.get(k, 0) for k in self._items)

    @contextlib.contextmanager
    def lease(self, spec: ModelSpec) -> Iterator[tuple[Any, Any]]:
        """The (model, tokenizer) for `spec`, loaded if need be, not evicted until the block ends."""
        pair = self.acquire(spec)
        try:
            yield pair
        finally:
            self.release(spec.key)

    def release(self, key: str) -> None:
        """Hand back a lease taken by `acquire`."""
        with self._cond:
            self._leases[key] -= 1
            if not self._leases[key]:
                del self._leases[key]
            self._cond.notify_all()

    def get(self, spec: ModelSpec) -> tuple[Any, Any]:
        """Load or look up without holding on to it (the model may be evicted at any time)."""
        with self.lease(spec) as pair:
            return pair

    def _hit(self, key: str) -> tuple[Any, Any] | None:
        hit = self._items.get(key)
        if hit is not None:
            self._items.move_to_end(key)
            self._leases[key] = self._leases.get(key, 0) + 1
        return hit

    def acquire(self, spec: ModelSpec) -> tuple[Any, Any]:
        """Lease the model (load it if need be); pair every call with `release(spec.key)`."""
        while True:
            with self._cond:
                hit = self._hit(spec.key)
                if hit is not None:
                    return hit
                flight = self._loading.get(spec.key)
                if flight is None:  # this caller loads it
                    flight = self._loading[spec.key] = _Load()
                    break
                flight.waiters += 1  # another caller is loading it: its lease is handed over below
                while not flight.done:
                    self._cond.wait()
                if flight.pair is not None:
                    return flight.pair
                # that load failed: try again (the next caller in loads afresh)
        try:
            return self._load_in_flight(spec, flight)
        except BaseException:
            with self._cond:
                flight.done = True
                del self._loading[spec.key]
                self._cond.notify_all()
            raise

    def _load_in_flight(self, spec: ModelSpec, flight: _Load) -> tuple[Any, Any]:
        """Load `spec` under the load lock, cache it and finish `flight`: one lease for the caller and
        one for each caller that waited for this load, in the same step as the model is cached."""
        with self.load_lock:
            evicted = []
            with self._cond:
                # evict first, so the process never holds capacity + 1 models at once; only a
                # model nobody is generating with can go
                while len(self._items) >= self.capacity:
                    victim = next((k for k in self._items if not self._leases.get(k)), None)
                    if victim is None:
                        self._cond.wait(timeout=1.0)
                        continue
                    evicted.append(self._items.pop(victim))
            if evicted:
                del evicted
                release_memory()
            self.loads += 1
            pair = self.load(spec)  # raises: nothing is cached, the next request loads afresh
            _import_generation_helpers()  # transformers' lazy imports, still under the lock
            with self._cond:
                self._items[spec.key] = pair
                self._leases[spec.key] = self._leases.get(spec.key, 0) + 1 + flight.waiters
                flight.pair, flight.done = pair, True
                del self._loading[spec.key]
                self._cond.notify_all()
            return pair

    def drop(self, key: str) -> bool:
        """Let an idle model go (not one in use)."""
        with self._cond:
            gone = not self._leases.get(key) and self._items.pop(key, None) is not None
        if gone:
            release_memory()
        return gone


def _import_generation_helpers() -> None:
    """Resolve the transformers names `_run` uses while the load lock is held, so a generating
    thread never runs transformers' lazy import machinery beside a loading one."""
    from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer  # noqa: F401


class GenerationQueue:
    """Per-model FIFO queues with one worker thread each, over one shared `ModelCache`."""

    def __init__(self, load: LoadFn = load_for_spec, max_pending: int = MAX_PENDING_PER_MODEL,
                 idle_unload_s: float = IDLE_UNLOAD_S, max_loaded: int = MAX_LOADED_MODELS) -> None:
        self.models = ModelCache(load, capacity=max_loaded)
        self.max_pending = max_pending
        self.idle_unload_s = idle_unload_s
        self.jobs: collections.OrderedDict[str, Job] = collections.OrderedDict()
        self._queues: dict[str, collections.deque[Job]] = {}
        self._running: dict[str, Job | None] = {}
        self._workers: dict[str, threading.Thread] = {}
        self._cond = threading.Condition()

    @property
    def load(self) -> LoadFn:
        return self.models.load

    # --- submitting and cancelling ---------------------------------------------------------------
    def submit(self, job: Job) -> int:
        with self._cond:
            queue = self._queues.setdefault(job.model.key, collections.deque())
            if len(queue) >= self.max_pending:
                raise QueueFull(f"{len(queue)} requests are already waiting for model {job.model.key!r}; try again soon")
            queue.append(job)
            self.jobs[job.id] = job
            self._trim_finished()
            position = self._position(job)
            job.emit("queued", position=position)
            worker = self._workers.get(job.model.key)
            if worker is None or not worker.is_alive():
                worker = threading.Thread(target=self._work, args=(job.model.key,), daemon=True,
                                          name=f"kgreason-gen-{job.model.key}")
                self._workers[job.model.key] = worker
                worker.start()
            self._cond.notify_all()
            return position

    def cancel(self, job_id: str, reason: str = "cancelled by the client") -> Job | None:
        """Cancel a job: a waiting one leaves its queue at once (freeing its slot), a running one
        stops at its next token. Returns the job (None if unknown); a finished job is left alone."""
        with self._cond:
            job = self.jobs.get(job_id)
            if job is None or job.finished:
                return job
            job.cancel_requested.set()
            queue = self._queues.get(job.model.key)
            if job.status == "queued" and queue is not None and job in queue:
                queue.remove(job)
                job.status = "cancelled"
                job.emit("cancelled", reason=reason)
                for waiting in queue:
                    waiting.emit("queued", position=self._position(waiting))
            return job

    def position(self, job: Job) -> int:
        with self._cond:
            return self._position(job)

    def pending(self, key: str) -> int:
        """Jobs waiting (not running) for one model."""
        with self._cond:
            return len(self._queues.get(key, ()))

    def _position(self, job: Job) -> int:
        """Jobs ahead of this one for the same model, counting the one running (0 = running now)."""
        if job.status != "queued":
            return 0
        queue = self._queues.get(job.model.key, collections.deque())
        ahead = list(queue).index(job) if job in queue else 0
        return ahead + (1 if self._running.get(job.model.key) is not None else 0)

    def _trim_finished(self) -> None:
        finished = [k for k, j in self.jobs.items() if j.finished]
        for key in finished[: max(0, len(finished) - _KEEP_FINISHED)]:
            del self.jobs[key]

    def new_job(self, **kw: Any) -> Job:
        return Job(id=uuid.uuid4().hex, **kw)

    # --- the worker ------------------------------------------------------------------------------
    def _work(self, key: str) -> None:
        while True:
            with self._cond:
                queue = self._queues[key]
                deadline = time.monotonic() + self.idle_unload_s
                while not queue:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        del self._workers[key]  # idle: let the model go
                        self.models.drop(key)
                        return
                    self._cond.wait(timeout=left)
                job = queue.popleft()
                self._running[key] = job
                job.status = "running"
                for waiting in queue:
                    waiting.emit("queued", position=self._position(waiting))
            try:
                self._serve(job)
            finally:
                with self._cond:
                    self._running[key] = None
                    for waiting in self._queues[key]:
                        waiting.emit("queued", position=self._position(waiting))

    def _serve(self, job: Job) -> None:
        if not self.models.has(job.model.key):
            if self.models.load_lock.locked():
                message = "waiting for another model to finish loading"
            elif self.models.full_and_busy():
                message = "waiting for another model to finish answering (the server keeps few models loaded)"
            else:
                message = "loading the model"
            job.emit("loading", waiting=message != "loading the model", message=message)
        load_started = time.monotonic()
        try:
            loaded = self.models.acquire(job.model)
            # what the user waited for the model (a load, or another model's turn): the page counts
            # it in the time it reports, which used to leave a 16 s first load out
            job.wait_s = time.monotonic() - load_started
        except Exception:  # the page gets a sentence; the log gets the library's traceback
            log.exception("loading %s failed", job.model.label)
            job.status = "error"
            job.emit("error", stage="load",
                     message=f"Could not load {job.model.label}. Nothing else was affected: asking again "
                             "retries the load; the server log says what went wrong.")
            return
        try:
            if job.cancel_requested.is_set():
                self._cancelled(job, "")
                return
            self._run(job, *loaded)
        except Exception:
            log.exception("generation with %s failed", job.model.label)
            job.status = "error"
            job.emit("error", stage="generate",
                     message=f"{job.model.label[0].upper()}{job.model.label[1:]} failed while answering; "
                             "the server log says what went wrong. Asking again starts afresh.")
        finally:
            self.models.release(job.model.key)

    def _cancelled(self, job: Job, text: str) -> None:
        job.status = "cancelled"
        job.emit("cancelled", reason="cancelled by the client", completion=text)

    def _run(self, job: Job, model: Any, tokenizer: Any) -> None:
        from transformers import TextIteratorStreamer

        from kgreason.sampling.base import eos_ids
        from kgreason.tasks.format import chat_messages

        started = time.monotonic()
        inputs = _encode(tokenizer, chat_messages(job.task))
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True,
                                        timeout=job.timeout_s + 30)
        kwargs: dict[str, Any] = {
            **inputs, "streamer": streamer, "max_new_tokens": job.max_new_tokens, "max_time": job.timeout_s,
            "do_sample": job.temperature > 0, "pad_token_id": tokenizer.pad_token_id,
            "stopping_criteria": _answer_stop(tokenizer, inputs["input_ids"].shape[1], job.cancel_requested,
                                              job.task.family),
        }
        if job.temperature > 0:
            kwargs.update(temperature=job.temperature, top_p=1.0, top_k=0)
        failure: list[BaseException] = []

        generated: list[int] = []  # tokens generated: the limit is told apart from an early stop
        ended_eos: list[bool] = []  # the last of them was the end token (then nothing was cut)

        def generate() -> None:
            try:
                import torch

                with torch.inference_mode():
                    out = model.generate(**kwargs)

                generated.append(int(out.shape[1]) - int(inputs["input_ids"].shape[1]))
                ended_eos.append(int(out[0, -1]) in eos_ids(model, tokenizer))
            except BaseException as exc:  # surfaced below, after the streamer ends
                failure.append(exc)
                streamer.end()

        thread = threading.Thread(target=generate, daemon=True)
        thread.start()
        job.emit("started")
        text, pieces = "", 0
        for piece in streamer:
            if piece:
                text += piece
                pieces += 1
                job.emit("token", text=piece)
        thread.join()
        if job.cancel_requested.is_set():
            self._cancelled(job, text)
            return
        if failure:
            raise failure[0]
        elapsed = time.monotonic() - started
        reason = finish_reason(text, generated[0] if generated else 0, job.max_new_tokens, elapsed >= job.timeout_s,
                               bool(ended_eos and ended_eos[0]), job.task.family)
        job.emit("done", completion=text, reward=job.score(text), finish_reason=reason,
                 seconds=round(elapsed, 3), load_seconds=round(job.wait_s, 3),
                 total_seconds=round(time.time() - job.created, 3), max_new_tokens=job.max_new_tokens,
                 chunks=pieces, empty=not text.strip())
        job.status = "done"


def _encode(tokenizer: Any, messages: list[dict]) -> dict:
    if getattr(tokenizer, "chat_template", None):
        enc = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                            return_dict=True)
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
    text = "\n\n".join(m["content"] for m in messages) + "\n\n"
    enc = tokenizer(text, return_tensors="pt")
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


def finish_reason(text: str, new_tokens: int, max_new_tokens: int, timed_out: bool, ended_eos: bool = False,
                  family: str | None = None) -> str:
    """Why an answer ended: "answer" at its answer line (ended by a newline, or by the end token);
    "timeout"; "length" when it used every token allowed before an answer line ended (the page
    says it was cut); "eos" when the model stopped without one. The answer line is read as the
    reward and the samplers read it (kgreason.reward.parse), not by a pattern of its own."""
    from kgreason.reward.parse import find_answer_line
    from kgreason.sampling.base import answer_line_end

    line_done = answer_line_end(text, family) is not None or (ended_eos and find_answer_line(text, family=family) is not None)
    if line_done:
        return "answer"
    if timed_out:
        return "timeout"
    if new_tokens >= max_new_tokens and not ended_eos:
        return "length"
    return "answer" if find_answer_line(text, family=family) is not None else "eos"


def _answer_stop(tokenizer: Any, prompt_len: int, cancelled: threading.Event | None = None,
                 family: str | None = None) -> Any:
    """Stop once the answer line has ended (the format ends there, the rest is wasted time), by the
    samplers' own rule (kgreason.sampling.base.answer_line_end), or once the job is cancelled (its
    client left or asked to stop). The pattern this replaces knew only "ANSWER: B", not
    "ANSWER: <entity> (B)", so answers ran on to the token limit."""
    from transformers import StoppingCriteria, StoppingCriteriaList

    from kgreason.sampling.base import answer_line_end

    class AnswerWritten(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kw: Any) -> Any:
            import torch

            if cancelled is not None and cancelled.is_set():
                return torch.full((input_ids.shape[0],), True, dtype=torch.bool, device=input_ids.device)
            text = tokenizer.decode(input_ids[0, prompt_len:], skip_special_tokens=True)
            done = answer_line_end(text, family) is not None
            return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([AnswerWritten()])
