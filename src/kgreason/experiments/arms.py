"""The arms of the distribution experiment: what follows SFT in each (torch-free, import-light:
kgreason/config.py reads the names for the --arms flag)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kgreason.io import InputError

ARM_FILE = "arm.json"  # written last in an arm-seed's folder: it is finished
EVAL_PHASE = "final"


@dataclass(frozen=True)
class Arm:
    name: str
    label: str
    kind: str  # base | sft | rsft | grpo
    distribution: str = "easy"  # rsft pool (kgreason.train.rsft.DISTRIBUTIONS), grpo pool
    frontier: bool = False
    description: str = ""

    @property
    def seeded(self) -> bool:
        return self.kind != "base"

    @property
    def needs_sft(self) -> bool:
        return self.kind in ("rsft", "grpo")


ARMS: tuple[Arm, ...] = (
    Arm("base", "base", "base", description="the model as shipped, no training"),
    Arm("sft", "SFT", "sft", description="LoRA SFT on facts and easy (1-3 hop) questions"),
    Arm("rsft_easy", "SFT→RSFT easy", "rsft", "easy", description="RSFT on the easy pool (1-3 hops)"),
    Arm("rsft_hard", "SFT→RSFT hard", "rsft", "hard",
        description="RSFT on the hard training pool (4-5 hops, disjoint from eval)"),
    Arm("rsft_curriculum", "SFT→RSFT curriculum", "rsft", "curriculum",
        description="RSFT easy rounds first, then hard rounds"),
    Arm("rsft_mixed", "SFT→RSFT mixed", "rsft", "mixed", description="RSFT on half easy, half hard questions"),
    Arm("rsft_frontier", "SFT→RSFT frontier", "rsft", "mixed", frontier=True,
        description="RSFT on the mixed pool, training only on questions with 0 < pass rate < 1"),
    Arm("grpo_easy", "SFT→GRPO easy", "grpo", "easy", description="GRPO on the easy pool"),
)
ARM_NAMES = tuple(a.name for a in ARMS)


def select_arms(names: Sequence[str]) -> list[Arm]:
    """The arms asked for, in canonical order; RSFT/GRPO arms bring the SFT arm they start from."""
    unknown = [n for n in names if n not in ARM_NAMES]
    if unknown:
        raise InputError(f"--arms: unknown arm(s) {', '.join(unknown)}; expected some of {', '.join(ARM_NAMES)}")
    wanted = set(names)
    if any(a.needs_sft for a in ARMS if a.name in wanted):
        wanted.add("sft")
    return [a for a in ARMS if a.name in wanted]


# --- layout ----------------------------------------------------------------------------------------
def run_dir(out: Path, arm: Arm, seed: int) -> Path:
    return out / "runs" / f"{arm.name}-s{seed}"


def seeds_for(arm: Arm, n_seeds: int) -> list[int]:
    return list(range(n_seeds)) if arm.seeded else [0]
