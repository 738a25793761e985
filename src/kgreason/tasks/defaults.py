"""Task generation's defaults and the data section of a run profile, declared once.

The generator (tasks/generate.py's TaskConfig and DEFAULT_SPLITS), the flags of `kgreason tasks
generate` (tasks/commands.py), the audit's and the data stage's shortcut bound and the data stage
of runs and experiments (DataOptions, PipelineConfig's `data:` in config.py) all read them here, so
they cannot drift apart. They live in `tasks`, not in config.py, because config.py sits above the
reward layer (it names reward presets) and the task generator sits below it.
"""

from __future__ import annotations

from dataclasses import dataclass

from kgreason import argtypes as at
from kgreason.families import DEFAULT_FAMILY, FAMILIES, get_family
from kgreason.options import option

# --- task generation -------------------------------------------------------------------------------
MODES = ("closed", "open")  # closed book (the default): the model must know the facts; open: they are in the prompt
STRICT_CHOICES = ("all", "held_out")  # which splits must have structure-matched distractors


@dataclass(frozen=True)
class SplitSpec:
    """One output file: its name, how many items, which hop lengths, and whether it is held out."""

    name: str
    size: int
    min_hops: int
    max_hops: int
    held_out: bool = False
    # Structure-matched distractors only (see tasks/distractors.py); None: only if held out (or the
    # config says "all"). The hard training pool is strict too, so RSFT samples items built like eval.
    strict: bool | None = None

    def hop_lengths(self) -> list[int]:
        return list(range(self.min_hops, self.max_hops + 1))


DEFAULT_SPLITS: tuple[SplitSpec, ...] = (
    SplitSpec("eval", 300, 4, 5, held_out=True),
    SplitSpec("train_easy", 1500, 1, 3),
    SplitSpec("train_hard", 600, 4, 5, strict=True),
)
_SPLIT_SIZE = {s.name: s.size for s in DEFAULT_SPLITS}
TASK_MODE = "closed"
TASK_MAX_CONTEXT_FACTS = 24  # open mode: facts in the prompt, gold path included
TASK_ATTEMPTS_PER_ITEM = 30  # bounded sampling: at most this many candidates per wanted item
TASK_COVER_EVAL_EDGES = 0.5  # share of each shorter training split steered onto eval edges
TASK_STRICT_DISTRACTORS = "held_out"
# `kgreason tasks audit --strict`: the highest accuracy a shortcut baseline may reach on multiple-choice
# items; each task family declares its own (kgreason.families), which `--max-shortcut` overrides.
DEFAULT_MAX_SHORTCUT = get_family(DEFAULT_FAMILY).max_shortcut



# --- data ------------------------------------------------------------------------------------------
@dataclass
class DataOptions:
    """The graph and the task files generated from it (one data stage serves runs and experiments)."""

    kg: str = option("builtin:devops", flag="kg", metavar="SOURCE",
                     help="the graph: builtin:devops[:SIZE] (the built-in DevOps graph, SIZE small, medium, large "
                          "or an edge count), builtin:umls, a kg.json / TSV / CSV file, or a registered KG source")
    mode: str = option(TASK_MODE, flag="mode", choices=MODES,
                       help="open: the facts a question needs are in its prompt; closed: the model must know them")
    seed: int = option(0, flag="data-seed", help="seed of the built-in graph and of the task files")
    eval_size: int = option(_SPLIT_SIZE["eval"], flag="eval-size", parse=at.positive_int,
                            help="held-out 4-5 hop eval items (never trained on)")
    train_easy: int = option(_SPLIT_SIZE["train_easy"], flag="train-easy", parse=at.non_negative_int,
                             help="1-3 hop training questions")
    train_hard: int = option(_SPLIT_SIZE["train_hard"], flag="train-hard", parse=at.non_negative_int,
                             help="4-5 hop training pool (disjoint from eval)")
    family: str = option(DEFAULT_FAMILY, flag="family", choices=FAMILIES.names,
                         help="how items are asked: multiple_choice (four options A-D) or free_form (no options; the "
                              "answer line names the entity; kgreason/families)")
    max_shortcut: float | None = option(None, flag="max-shortcut", parse=at.unit_interval, metavar="ACC",
                                        help="stop before training when a shortcut baseline answers more than this "
                                             "share of the held-out items (default: the task family's limit, 0.35 "
                                             "for multiple choice, 0.05 for free form; kgreason/tasks/refusal.py)")
    image_decoys: str = option("auto", flag="image-decoys", choices=("auto", "on", "off"),
                               help="decoys also from the stated chain's image (entities it reaches from "
                                    "other starts): for graphs whose hubs funnel chains; auto: generate again with "
                                    "them when a chain-image baseline refuses the data (kgreason/tasks/build.py)")
    allow_shortcuts: bool = option(False, flag="allow-shortcuts",
                                   help="train even when a shortcut baseline is above --max-shortcut; the manifest "
                                        "records it and the run's 'What went wrong' paragraph names it")
