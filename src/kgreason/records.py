"""Records that cross module boundaries: Task, Completion, RewardBreakdown, Episode.

Each is a typed dataclass with `to_dict` / `from_dict` and one JSON schema (`SCHEMAS`), which
`docs/schemas.md` documents. Task is a superset of the hobby project's schema (id, split, hop_len,
question, options, answer_star, path_star, prompt) so its files load unchanged; fields it lacks
default to empty.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

LETTERS = ("A", "B", "C", "D")


@dataclass
class PathStar:
    """The gold path: entities in order (start first, answer last) and the edges between them."""

    entities: list[str]
    edges: list[tuple[str, str, str]]

    def to_dict(self) -> dict:
        return {
            "entities": list(self.entities),
            "edges": [{"src": h, "rel": r, "dst": t} for h, r, t in self.edges],
        }

    @classmethod
    def from_dict(cls, d: dict) -> PathStar:
        edges: list[tuple[str, str, str]] = []
        for e in d.get("edges", []) or []:
            if isinstance(e, dict):
                edges.append((str(e["src"]), str(e["rel"]), str(e["dst"])))
            else:  # [head, rel, tail] lists are accepted too
                h, r, t = e
                edges.append((str(h), str(r), str(t)))
        return cls(entities=[str(x) for x in d.get("entities", []) or []], edges=edges)

    @property
    def relation_chain(self) -> list[str]:
        return [r for _, r, _ in self.edges]


# Task fields added after the first file format; `Task.to_dict` writes them only when they differ
# from these defaults, so files of the default family stay byte for byte what they were.
_TASK_OPTIONAL_FIELDS = {"family": "multiple_choice", "answer_label": ""}


@dataclass
class Task:
    """One question with a provably unique answer along a stated relation chain.

    `family` names how it is asked and answered (kgreason.families): multiple choice (four options,
    `options`/`answer_star` the letters) or free form (no options; `answer_label` is the name the
    answer line must give).
    """

    id: str
    split: str
    hop_len: int
    question: str
    options: dict[str, str]  # letter -> option text (entity label)
    answer_star: str  # the correct letter
    path_star: PathStar
    prompt: str
    # kgreason additions (empty when loading the hobby project's files)
    start: str = ""  # start entity id
    relation_chain: list[str] = field(default_factory=list)
    option_ids: dict[str, str] = field(default_factory=dict)  # letter -> entity id
    answer_id: str = ""
    mode: str = "closed"  # closed | open
    reference_trace: str = ""
    short_trace: str = ""
    context_facts: list[str] = field(default_factory=list)
    seed: int | None = None
    family: str = "multiple_choice"
    answer_label: str = ""  # free form: the answer's name as the answer line gives it

    def to_dict(self) -> dict:
        d = asdict(self)
        d["path_star"] = self.path_star.to_dict()
        for name, default in _TASK_OPTIONAL_FIELDS.items():
            if d[name] == default:
                del d[name]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Task:
        known = {f.name for f in fields(cls)}
        kw: dict[str, Any] = {k: v for k, v in d.items() if k in known}
        kw["path_star"] = PathStar.from_dict(d.get("path_star") or {})
        kw["hop_len"] = int(d.get("hop_len", len(kw["path_star"].edges)))
        kw.setdefault("prompt", d.get("question", ""))
        if not kw.get("relation_chain"):
            kw["relation_chain"] = kw["path_star"].relation_chain
        if not kw.get("start") and kw["path_star"].entities:
            kw["start"] = kw["path_star"].entities[0]
        if not kw.get("answer_id") and kw["path_star"].entities:
            kw["answer_id"] = kw["path_star"].entities[-1]
        return cls(**kw)


@dataclass
class Completion:
    """One sampled answer to one task."""

    task_id: str
    sample_index: int
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = ""  # "answer" (stopped at the answer line) | "length" | "eos"
    model: str = ""
    adapter: str | None = None
    temperature: float = 0.0
    seed: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Completion:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class ClaimedHop:
    head: str
    relation: str | None  # None when the clause names no known relation phrase
    tail: str
    valid: bool  # (head, relation, tail) is a real KG edge


@dataclass
class RewardBreakdown:
    """Every component of one completion's score, so a reward can be explained, not just summed."""

    preset: str
    format_ok: bool
    answer: str | None  # the parsed letter
    correct: bool
    path_coverage: float  # share of the gold path's intermediate entities named in the trace
    hits: int
    claimed_hops: list[ClaimedHop]
    valid_hops: int
    faithful: bool  # claimed chain leads from the start to the chosen answer along the stated relations
    repetition: float  # penalty applied (>= 0)
    total: float
    components: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> RewardBreakdown:
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        kw["claimed_hops"] = [ClaimedHop(**h) for h in d.get("claimed_hops", [])]
        return cls(**kw)


@dataclass
class Episode:
    """One scored sample during training or evaluation (a line of a run's episodes.jsonl)."""

    run: str
    phase: str  # base_eval | sft | rsft | grpo | eval ...
    step: int
    task_id: str
    prompt: str
    completion: str
    reward: RewardBreakdown
    sample_index: int = 0
    round: int = 0
    kept: bool = False  # RSFT: this sample became training data

    def to_dict(self) -> dict:
        d = asdict(self)
        d["reward"] = self.reward.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Episode:
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        kw["reward"] = RewardBreakdown.from_dict(d["reward"])
        return cls(**kw)


_STR = {"type": "string"}
_INT = {"type": "integer"}
_NUM = {"type": "number"}
_BOOL = {"type": "boolean"}
_EDGE = {
    "type": "object",
    "required": ["src", "rel", "dst"],
    "properties": {"src": _STR, "rel": _STR, "dst": _STR},
}
_HOP = {
    "type": "object",
    "required": ["head", "relation", "tail", "valid"],
    "properties": {"head": _STR, "relation": {"type": ["string", "null"]}, "tail": _STR, "valid": _BOOL},
}

SCHEMAS: dict[str, dict] = {
    "Task": {
        "type": "object",
        "required": ["id", "split", "hop_len", "question", "options", "answer_star", "path_star", "prompt"],
        "properties": {
            "id": _STR,
            "split": _STR,
            "hop_len": _INT,
            "question": _STR,
            "options": {"type": "object", "properties": {k: _STR for k in LETTERS}},
            "answer_star": {"enum": [*LETTERS, ""]},  # "" for a family without options (free form)
            "path_star": {
                "type": "object",
                "properties": {"entities": {"type": "array", "items": _STR}, "edges": {"type": "array", "items": _EDGE}},
            },
            "prompt": _STR,
            "start": _STR,
            "relation_chain": {"type": "array", "items": _STR},
            "option_ids": {"type": "object", "properties": {k: _STR for k in LETTERS}},
            "answer_id": _STR,
            "mode": {"enum": ["closed", "open"]},
            "reference_trace": _STR,
            "short_trace": _STR,
            "context_facts": {"type": "array", "items": _STR},
            "seed": {"type": ["integer", "null"]},
            "family": _STR,  # a registered task family; multiple_choice when absent
            "answer_label": _STR,  # free form: the answer's name
        },
    },
    "Completion": {
        "type": "object",
        "required": ["task_id", "sample_index", "text"],
        "properties": {
            "task_id": _STR,
            "sample_index": _INT,
            "text": _STR,
            "prompt_tokens": _INT,
            "completion_tokens": _INT,
            "finish_reason": {"enum": ["answer", "length", "eos", ""]},
            "model": _STR,
            "adapter": {"type": ["string", "null"]},
            "temperature": _NUM,
            "seed": {"type": ["integer", "null"]},
        },
    },
    "RewardBreakdown": {
        "type": "object",
        "required": ["preset", "format_ok", "answer", "correct", "path_coverage", "hits", "claimed_hops",
                     "valid_hops", "faithful", "repetition", "total"],
        "properties": {
            "preset": {"type": "string", "minLength": 1},  # a registered reward preset (plugins add names)
            "format_ok": _BOOL,
            "answer": {"type": ["string", "null"]},
            "correct": _BOOL,
            "path_coverage": _NUM,
            "hits": _INT,
            "claimed_hops": {"type": "array", "items": _HOP},
            "valid_hops": _INT,
            "faithful": _BOOL,
            "repetition": _NUM,
            "total": _NUM,
            "components": {"type": "object", "additionalProperties": _NUM},
        },
    },
    "Episode": {
        "type": "object",
        "required": ["run", "phase", "step", "task_id", "prompt", "completion", "reward"],
        "properties": {
            "run": _STR,
            "phase": _STR,
            "step": _INT,
            "task_id": _STR,
            "prompt": _STR,
            "completion": _STR,
            "reward": {"$ref": "#/RewardBreakdown"},
            "sample_index": _INT,
            "round": _INT,
            "kept": _BOOL,
        },
    },
}
