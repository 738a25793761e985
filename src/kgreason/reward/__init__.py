"""kgreason.reward: the knowledge graph as the reward model.

`Scorer(kg, preset="kgreason").score(task, completion_text) -> RewardBreakdown` parses the
`TRACE: ... ANSWER: X` completion (`find_answer_line` is the one answer reader, shared with the
samplers' stop rule), finds entity mentions with one Aho-Corasick pass, reads the
claimed hops and verifies each against the graph, then applies a preset (`seed`, `paper`,
`kgreason`; see docs/reward.md). Never imports torch.
"""

from kgreason.reward.parse import (
    AnswerLine,
    ParsedCompletion,
    cut_after_answer,
    find_answer_line,
    parse_completion,
)
from kgreason.reward.presets import PRESET_NAMES, KGReasonWeights
from kgreason.reward.score import Evidence, Scorer

__all__ = [
    "PRESET_NAMES",
    "AnswerLine",
    "Evidence",
    "KGReasonWeights",
    "ParsedCompletion",
    "Scorer",
    "cut_after_answer",
    "find_answer_line",
    "parse_completion",
]
