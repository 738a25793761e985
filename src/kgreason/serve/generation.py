"""Live generation for Try It: a FIFO queue per model, one generation at a time, streamed by token.

Why a queue: a CPU box runs one forward pass well and several badly, and a model is large enough
that loading it per request would dominate. Each model (a run's base or one of its adapters) gets
one worker thread that keeps the model loaded while it has work and drops it when idle; requests
wait in order and the page is told its position. Every job is capped in new tokens and in wall
time (transformers' `max_time`), and the number of waiting jobs per model is capped too.
"""

from __future__ import annotations

import collections
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MAX_NEW_TOKENS = 512
DEFAULT_NEW_TOKENS = 160
DEFAULT_TIMEOUT_S = 60.0
MAX_PENDING_PER_MODEL = 8
IDLE_UNLOAD_S = 300.0
_KEEP_FINISHED = 200
_ANSWER_DONE = re.compile(r"ANSWER:\s*\(?[A-Da-d]\b")


class QueueFull(RuntimeError):
    """Too many jobs are waiting for this model (HTTP 429)."""


@dataclass
class ModelSpec:
    key: str  # "<run>::<model id>", one queue per key
    ref: str | None
    adapter: str | None


@dataclass
class Job:
    id: str
    model: ModelSpec
    task: Any  # kgreason.records.Task
    max_new_tokens: int
    temperature: float
    timeout_s: float
    score: Callable[[str], dict]  # completion text -> RewardBreakdown dict
    status: str = "queued"  # queued | running | done | error
    events: list[dict] = field(default_factory=list)
    created: float = field(default_factory=time.time)

    def emit(self, kind: str, **data: Any) -> None:
        self.events.append({"event": kind, **data})

    @property
    def finished(self) -> bool:
        return self.status in ("done", "error")


LoadFn = Callable[[ModelSpec], tuple[Any, Any]]


def load_for_spec(spec: ModelSpec) -> tuple[Any, Any]:
    from kgreason.models import load_model

    return load_model(spec.ref, adapter=spec.adapter)


class GenerationQueue:
    """Per-model FIFO queues with one worker thread each."""

    def __init__(self, load: LoadFn = load_for_spec, max_pending: int = MAX_PENDING_PER_MODEL,
                 idle_unload_s: float = IDLE_UNLOAD_S) -> None:
        self.load = load
        self.max_pending = max_pending
        self.idle_unload_s = idle_unload_s
        self.jobs: collections.OrderedDict[str, Job] = collections.OrderedDict()
        self._queues: dict[str, collections.deque[Job]] = {}
        self._running: dict[str, Job | None] = {}
        self._workers: dict[str, threading.Thread] = {}
        self._cond = threading.Condition()

    # --- submitting ------------------------------------------------------------------------------
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

    def position(self, job: Job) -> int:
        with self._cond:
            return self._position(job)

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
        loaded: tuple[Any, Any] | None = None
        while True:
            with self._cond:
                queue = self._queues[key]
                deadline = time.monotonic() + self.idle_unload_s
                while not queue:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        del self._workers[key]  # idle: let the model go
                        return
                    self._cond.wait(timeout=left)
                job = queue.popleft()
                self._running[key] = job
                job.status = "running"
                for waiting in queue:
                    waiting.emit("queued", position=self._position(waiting))
            try:
                if loaded is None:
                    job.emit("loading")
                    loaded = self.load(job.model)
                self._run(job, *loaded)
            except Exception as exc:  # reported to the page; the worker keeps serving
                job.status = "error"
                job.emit("error", message=f"{type(exc).__name__}: {exc}")
            finally:
                with self._cond:
                    self._running[key] = None
                    for waiting in self._queues[key]:
                        waiting.emit("queued", position=self._position(waiting))

    def _run(self, job: Job, model: Any, tokenizer: Any) -> None:
        from transformers import TextIteratorStreamer

        from kgreason.tasks.format import chat_messages

        started = time.monotonic()
        inputs = _encode(tokenizer, chat_messages(job.task))
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True,
                                        timeout=job.timeout_s + 30)
        kwargs: dict[str, Any] = {
            **inputs, "streamer": streamer, "max_new_tokens": job.max_new_tokens, "max_time": job.timeout_s,
            "do_sample": job.temperature > 0, "pad_token_id": tokenizer.pad_token_id,
            "stopping_criteria": _answer_stop(tokenizer, inputs["input_ids"].shape[1]),
        }
        if job.temperature > 0:
            kwargs.update(temperature=job.temperature, top_p=1.0, top_k=0)
        failure: list[BaseException] = []

        def generate() -> None:
            try:
                import torch

                with torch.inference_mode():
                    model.generate(**kwargs)
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
        if failure:
            raise failure[0]
        elapsed = time.monotonic() - started
        reason = "timeout" if elapsed >= job.timeout_s else ("answer" if _ANSWER_DONE.search(text) else "length")
        job.emit("done", completion=text, reward=job.score(text), finish_reason=reason,
                 seconds=round(elapsed, 3), chunks=pieces)
        job.status = "done"


def _encode(tokenizer: Any, messages: list[dict]) -> dict:
    if getattr(tokenizer, "chat_template", None):
        enc = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                            return_dict=True)
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
    text = "\n\n".join(m["content"] for m in messages) + "\n\n"
    enc = tokenizer(text, return_tensors="pt")
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


def _answer_stop(tokenizer: Any, prompt_len: int) -> Any:
    """Stop once the answer letter is out: the format ends there, the rest is wasted time."""
    from transformers import StoppingCriteria, StoppingCriteriaList

    class AnswerWritten(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kw: Any) -> Any:
            import torch

            tail = tokenizer.decode(input_ids[0, prompt_len:][-24:], skip_special_tokens=True)
            done = bool(_ANSWER_DONE.search(tail))
            return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([AnswerWritten()])
