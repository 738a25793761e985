"""The four reward presets. Formulas, constants and worked examples: docs/reward.md.

* `seed`     — the hobby project's reward, formula for formula.
* `paper`    — the research paper's reward (bag-of-tokens path coverage, repetition factor).
* `kgreason` — correctness, credit for verified hops along the stated chain, a faithful-chain
  bonus, and a repetition penalty; its constants guarantee that no wrong answer outscores a
  right one (`KGReasonWeights.check`).
* `answer`   — correctness alone, kgreason's constants without any path term: the control arm of
  the reward ablation (does the path signal add anything over rewarding the answer?).

A preset maps the `Evidence` of one completion to a `PresetResult`; the scorer wraps it into a
`RewardBreakdown`. Presets are a registry: add your own from outside the package with

    from kgreason.reward.presets import PresetResult, register_reward_preset

    @register_reward_preset("strict", "1 for a right answer with a faithful trace, else 0")
    def strict(ev, kg):
        return PresetResult(float(ev.correct and ev.faithful), 0.0)

in a module named by $KGREASON_PLUGINS or a `kgreason.plugins` entry point (kgreason/registry.py);
every `--reward-preset` flag, the demo and the exports then accept its name.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from kgreason.kg.graph import KnowledgeGraph
from kgreason.registry import Registry
from kgreason.reward.evidence import Evidence


@dataclass
class PresetResult:
    total: float
    repetition: float  # what repetition took off the total (>= 0)
    components: dict[str, float] = field(default_factory=dict)


Preset = Callable[[Evidence, KnowledgeGraph], PresetResult]


@dataclass(frozen=True)
class RewardPreset:
    name: str
    description: str
    fn: Preset


REWARD_PRESETS: Registry[RewardPreset] = Registry("reward preset")
DEFAULT_PRESET = "kgreason"


def register_reward_preset(name: str, description: str) -> Callable[[Preset], Preset]:
    """Decorator: add a reward formula under `name` (a later registration replaces it)."""

    def wrap(fn: Preset) -> Preset:
        REWARD_PRESETS.add(name, RewardPreset(name, description, fn))
        return fn

    return wrap


def get_preset(name: str) -> Preset:
    """The formula of the registered preset `name` (InputError with the closest names otherwise)."""
    return REWARD_PRESETS.get(name).fn


# --- seed: the hobby project's formula ------------------------------------------------------------
SEED_CORRECT, SEED_WRONG, SEED_UNPARSEABLE = 1.0, -2.0, -2.0
SEED_PATH_WEIGHT, SEED_MIN_HITS = 0.5, 2
SEED_REPEAT_MAX, SEED_REPEAT_PENALTY = 2, 0.5


@register_reward_preset("seed", "the hobby project's reward, formula for formula")
def seed_preset(ev: Evidence, kg: KnowledgeGraph) -> PresetResult:
    """correct +1 / wrong -2, + 0.5 x coverage (zero below 2 hits), - 0.5 if an entity is named > 2 times.

    Coverage is the hobby project's: over ALL distinct gold-path entities, start and answer
    included (the breakdown's `path_coverage` still reports intermediate-only coverage).
    """
    if not ev.parsed.format_ok:
        return PresetResult(SEED_UNPARSEABLE, 0.0, {"correctness": SEED_UNPARSEABLE})
    correctness = SEED_CORRECT if ev.correct else SEED_WRONG
    path_set = set(ev.path_entities)
    hits_all = len(path_set & ev.mentioned)
    coverage_all = hits_all / max(1, len(path_set))
    path_reward = min(coverage_all, 1.0) if hits_all >= SEED_MIN_HITS else 0.0
    spam = SEED_REPEAT_PENALTY if any(c > SEED_REPEAT_MAX for c in ev.mention_counts.values()) else 0.0
    total = correctness + SEED_PATH_WEIGHT * path_reward - spam
    return PresetResult(
        total,
        spam,
        {
            "correctness": correctness,
            "coverage_all": coverage_all,
            "hits_all": float(hits_all),
            "path": SEED_PATH_WEIGHT * path_reward,
            "repetition_penalty": 0.0 - spam,
        },
    )


# --- paper: the research paper's formula -----------------------------------------------------------
PAPER_CORRECT, PAPER_WRONG = 0.1, -1.0
PAPER_COVERAGE_WEIGHT, PAPER_OVERLAP_BONUS, PAPER_MIN_OVERLAP, PAPER_PATH_CAP = 1.2, 0.3, 2, 1.5
PAPER_DOMINANCE_MIN_TOKENS, PAPER_DOMINANCE_SHARE, PAPER_RUN_LENGTH, PAPER_REPEAT_FACTOR = 10, 0.3, 3, 0.5
_TOKEN_RE = re.compile(r"\w+")


def word_tokens(text: str) -> list[str]:
    """Lower-cased word tokens (runs of letters, digits and underscores)."""
    return _TOKEN_RE.findall(text.lower())


def repetition_factor(tokens: Sequence[str]) -> float:
    """1.0, halved when one token dominates (>= 10 tokens and one is > 30% of them), halved again
    when a token repeats 3 or more times in a row."""
    factor = 1.0
    if len(tokens) >= PAPER_DOMINANCE_MIN_TOKENS:
        top = Counter(tokens).most_common(1)[0][1]
        if top / len(tokens) > PAPER_DOMINANCE_SHARE:
            factor *= PAPER_REPEAT_FACTOR
    if longest_run(tokens) >= PAPER_RUN_LENGTH:
        factor *= PAPER_REPEAT_FACTOR
    return factor


def longest_run(tokens: Sequence[str]) -> int:
    best = run = 0
    prev: str | None = None
    for tok in tokens:
        run = run + 1 if tok == prev else 1
        best = max(best, run)
        prev = tok
    return best


@register_reward_preset("paper", "the research paper's reward: bag-of-tokens path coverage, repetition factor")
def paper_preset(ev: Evidence, kg: KnowledgeGraph) -> PresetResult:
    """+0.1 right / -1 wrong, + min(1.2 x coverage + 0.3 x [>= 2 overlapping tokens], 1.5) x repetition factor.

    Coverage is a bag of lower-cased word tokens of the gold path's entity labels (start and
    answer included, as in the paper), matched against the trace's tokens: no entity linking.
    """
    if not ev.parsed.format_ok:
        return PresetResult(PAPER_WRONG, 0.0, {"correctness": PAPER_WRONG, "path": 0.0})
    correctness = PAPER_CORRECT if ev.correct else PAPER_WRONG
    path_bag = Counter(tok for e in ev.path_entities for tok in word_tokens(_label(kg, e)))
    trace_tokens = word_tokens(ev.trace_norm)
    trace_bag = Counter(trace_tokens)
    matched = sum((path_bag & trace_bag).values())
    coverage = matched / sum(path_bag.values()) if path_bag else 0.0
    overlap = len(set(path_bag) & set(trace_bag))
    raw = min(PAPER_COVERAGE_WEIGHT * coverage + (PAPER_OVERLAP_BONUS if overlap >= PAPER_MIN_OVERLAP else 0.0), PAPER_PATH_CAP)
    factor = repetition_factor(trace_tokens)
    path = raw * factor
    return PresetResult(
        correctness + path,
        raw - path,
        {
            "correctness": correctness,
            "token_coverage": coverage,
            "overlap_tokens": float(overlap),
            "path_raw": raw,
            "repetition_factor": factor,
            "path": path,
        },
    )


def _label(kg: KnowledgeGraph, entity: str) -> str:
    ent = kg.entities.get(entity)
    return ent.label if ent is not None else entity


# --- kgreason: verified hops, faithful chains --------------------------------------------------------
@dataclass(frozen=True)
class KGReasonWeights:
    correct: float = 1.0
    wrong: float = -1.0
    unparseable: float = -1.5
    chain: float = 0.4  # x (verified hops along the stated chain from the start) / (chain length)
    coverage: float = 0.1  # x share of intermediate gold entities named (in full when faithful): naming earns little
    faithful: float = 0.3  # the whole claimed chain is real and ends at the chosen answer
    repeat_step: float = 0.1  # per mention beyond what the gold path needs
    repeat_cap: float = 0.3

    def check(self) -> None:
        """Raise unless the worst right answer beats the best wrong one, and a format failure is
        below every wrong answer."""
        worst_right = self.correct - self.repeat_cap
        best_wrong = self.wrong + self.chain + self.coverage + self.faithful
        if not worst_right > best_wrong:
            raise ValueError(f"kgreason weights: worst right answer {worst_right} must beat best wrong {best_wrong}")
        if not self.unparseable < self.wrong - self.repeat_cap:
            raise ValueError("kgreason weights: a format failure must score below every wrong answer")


KGREASON_WEIGHTS = KGReasonWeights()
KGREASON_WEIGHTS.check()


def excess_mentions(ev: Evidence) -> int:
    """Mentions beyond two per entity (a chain names each intermediate twice: as a tail, then a
    head), or beyond twice its occurrences where a walk revisits an entity: the gold path, or the
    verified part of the claimed chain (bounded by the chain's length, so it excuses no spam)."""
    on_path = Counter(ev.path_entities)
    on_walk = Counter(ev.walk)
    return sum(max(0, n - 2 * max(1, on_path[e], on_walk[e])) for e, n in ev.mention_counts.items())


@register_reward_preset("kgreason", "correctness, verified hops along the stated chain, a faithful-chain bonus, "
                        "a repetition penalty; no wrong answer outscores a right one")
def kgreason_preset(ev: Evidence, kg: KnowledgeGraph, w: KGReasonWeights = KGREASON_WEIGHTS) -> PresetResult:
    """correctness + chain credit + coverage + faithful bonus - repetition (see KGReasonWeights)."""
    if not ev.parsed.format_ok:
        return PresetResult(w.unparseable, 0.0, {"correctness": w.unparseable})
    correctness = w.correct if ev.correct else w.wrong
    length = ev.chain_length
    chain = w.chain * min(ev.chain_progress, length) / length if length else 0.0
    # A faithful walk earns the term in full, whichever valid walk it took: the chain is verified
    # edge by edge, so naming the gold path's own intermediates would only reward guessing which
    # of several correct walks the task generator happened to pick. A 1-hop path has no
    # intermediate entity to name; it too gets the term in full, so totals of equally good traces
    # do not depend on the hop count.
    coverage = w.coverage * (ev.coverage if ev.intermediates and not ev.faithful else 1.0)
    faithful = w.faithful if ev.faithful else 0.0
    repetition = min(w.repeat_cap, w.repeat_step * excess_mentions(ev))
    return PresetResult(
        correctness + chain + coverage + faithful - repetition,
        repetition,
        {
            "correctness": correctness,
            "chain": chain,
            "chain_progress": float(ev.chain_progress),
            "coverage": coverage,
            "faithful": faithful,
            "repetition_penalty": 0.0 - repetition,
        },
    )


# --- answer: correctness alone (the ablation's control) ----------------------------------------------
@register_reward_preset("answer", "correctness only (+1 right, -1 wrong, -1.5 unparseable): the trace earns nothing")
def answer_preset(ev: Evidence, kg: KnowledgeGraph, w: KGReasonWeights = KGREASON_WEIGHTS) -> PresetResult:
    """kgreason's correctness constants and nothing else: the same scale, no path signal."""
    if not ev.parsed.format_ok:
        return PresetResult(w.unparseable, 0.0, {"correctness": w.unparseable})
    correctness = w.correct if ev.correct else w.wrong
    return PresetResult(correctness, 0.0, {"correctness": correctness})


# --- verified: the KG as a verifier of the whole chain (RSFT's winner filter, as a reward) -----------
@register_reward_preset("verified", "the answer counts only when the KG verifies the whole chain: +1 right and "
                        "faithful, 0 right through a false or missing hop, -1 wrong, -1.5 unparseable")
def verified_preset(ev: Evidence, kg: KnowledgeGraph, w: KGReasonWeights = KGREASON_WEIGHTS) -> PresetResult:
    """Why a preset of its own: under GRPO the `kgreason` preset still ranks a right answer reached
    through false hops (about +1.0) far above a wrong one, so a group's unfaithful right answers get
    a positive advantage, and on the AVX2 CPU faithfulness fell 12.7 points in 12 steps while
    accuracy stayed. RSFT never trains on those: its winners must be right and faithful. Here the
    KG's verdict on the chain gates the answer's credit the same way."""
    if not ev.parsed.format_ok:
        return PresetResult(w.unparseable, 0.0, {"correctness": w.unparseable})
    if not ev.correct:
        return PresetResult(w.wrong, 0.0, {"correctness": w.wrong})
    credit = w.correct if ev.faithful else 0.0
    return PresetResult(credit, 0.0, {"correctness": w.correct, "verified": credit - w.correct})



def reward_preset_arg(text: str) -> str:
    """argparse type of --reward-preset: a registered reward preset (built-in or a plugin's), named
    with the closest ones otherwise."""
    import argparse

    if text not in REWARD_PRESETS:
        raise argparse.ArgumentTypeError(REWARD_PRESETS.unknown_message(text))
    return text
