"""kgreason.reward: the knowledge graph as the reward model.

`Scorer(kg, preset="kgreason").score(task, completion_text) -> RewardBreakdown` parses the
`TRACE: ... ANSWER: X` completion (`find_answer_line` is the one answer reader, shared with the
samplers' stop rule), finds entity mentions with one Aho-Corasick pass, reads the
claimed hops and verifies each against the graph, then applies a registered reward preset (`seed`, `paper`,
`kgreason` or your own; see docs/reward.md). Never imports torch.
"""

from kgreason.reward.evidence import Evidence
from kgreason.reward.parse import (
    AnswerLine,
    ParsedCompletion,
    cut_after_answer,
    find_answer_line,
    parse_completion,
)
from kgreason.reward.presets import (
    REWARD_PRESETS,
    KGReasonWeights,
    PresetResult,
    register_reward_preset,
)
from kgreason.reward.score import Scorer

__all__ = [
    "REWARD_PRESETS",
    "AnswerLine",
    "Evidence",
    "KGReasonWeights",
    "ParsedCompletion",
    "PresetResult",
    "Scorer",
    "cut_after_answer",
    "find_answer_line",
    "parse_completion",
    "register_reward_preset",
]
