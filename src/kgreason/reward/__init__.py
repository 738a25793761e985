"""kgreason.reward: the knowledge graph as the reward model.

`Scorer(kg, preset="kgreason").score(task, completion_text) -> RewardBreakdown` parses the
`TRACE: ... ANSWER: X` completion, finds entity mentions with one Aho-Corasick pass, reads the
claimed hops and verifies each against the graph, then applies a preset (`seed`, `paper`,
`kgreason`; see docs/reward.md). Never imports torch.
"""

from kgreason.reward.parse import ParsedCompletion, parse_completion
from kgreason.reward.presets import PRESET_NAMES, KGReasonWeights
from kgreason.reward.score import Evidence, Scorer

__all__ = ["PRESET_NAMES", "Evidence", "KGReasonWeights", "ParsedCompletion", "Scorer", "parse_completion"]
