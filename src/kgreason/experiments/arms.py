"""An experiment's arms are data: a grid file names each arm, what it trains after SFT and which
options of the run profile it overrides (torch-free, import-light).

A grid is a YAML file (the bundled ones are in kgreason/experiments/grids/; `kgreason experiment
NAME` takes a bundled name or a path), the way lm-evaluation-harness tasks are files:

    question: Does the KG path signal teach composition better than the answer alone?
    arms:
      - name: rsft_answer                      # folder name: runs/<name>-s<seed>
        label: SFT→RSFT, answer-only reward
        kind: rsft                             # base | sft | rsft | grpo: what follows SFT
        compare_to: sft                        # paired differences against this arm (RSFT/GRPO default: sft)
        description: winners are correct answers, whatever the trace
        overrides: {rsft: {reward_preset: answer, faithful_only: false}}

`overrides` takes the keys of the arm's own phase in a run profile (`rsft:` for an RSFT arm;
kgreason/config.py's PipelineConfig), checked with file and line like a --config file, and is laid
over the experiment's recipe after the seed; data, evaluation, model and SFT are the experiment's.
Every arm of one seed that needs SFT starts from that seed's `sft` arm, so a new arm is a few
lines of YAML, not a code change.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kgreason.io import InputError
from kgreason.phases import get_phase, phase_order

ARM_FILE = "arm.json"  # written last in an arm-seed's folder: it is finished
EXPERIMENT_FILE = "experiment.json"  # an experiment folder's record of what it runs
EVAL_PHASE = "final"
GRIDS_DIR = Path(__file__).resolve().parent / "grids"
ARM_KEYS = ("name", "label", "kind", "description", "compare_to", "overrides")


@dataclass(frozen=True)
class Arm:
    name: str
    label: str
    kind: str  # a phase of kgreason/phases.py: base | sft | rsft | grpo
    description: str = ""
    overrides: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)  # dotted path -> value
    compare_to: str = ""  # the arm its paired differences are taken against ("": none)

    @property
    def seeded(self) -> bool:
        return self.kind != "base"

    @property
    def needs_sft(self) -> bool:
        """The arm continues the SFT adapter of its seed (the phase's `starts_from`)."""
        return get_phase(self.kind).starts_from == "sft"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "kind": self.kind, "description": self.description,
                "overrides": dict(self.overrides), "compare_to": self.compare_to}


@dataclass(frozen=True)
class Grid:
    """One experiment: its name (the default output folder's), the question it answers, its arms."""

    name: str
    question: str
    arms: tuple[Arm, ...]
    source: str = ""

    @property
    def arm_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.arms)

    def arm(self, name: str) -> Arm:
        for a in self.arms:
            if a.name == name:
                return a
        raise InputError(f"{self.source or self.name}: no arm named {name!r}")

    def select(self, names: Sequence[str]) -> list[Arm]:
        """The arms asked for (all when `names` is empty), in the grid's order; RSFT/GRPO arms bring
        the SFT arm they start from, and every arm brings the arm it is compared to."""
        unknown = [n for n in names if n not in self.arm_names]
        if unknown:
            raise InputError(f"--arms: unknown arm(s) {', '.join(unknown)}; {self.name} has "
                             f"{', '.join(self.arm_names)}")
        wanted = set(names or self.arm_names)
        for a in self.arms:
            if a.name in wanted:
                if a.needs_sft:
                    wanted.add("sft")
                if a.compare_to in self.arm_names:
                    wanted.add(a.compare_to)
        return [a for a in self.arms if a.name in wanted]


def grid_names() -> list[str]:
    return sorted(p.stem for p in GRIDS_DIR.glob("*.yaml"))


def grid_path(ref: str) -> Path:
    """A bundled grid's name, or a path to a grid file."""
    path = Path(ref)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise InputError(f"{ref}: grid file not found (bundled grids: {', '.join(grid_names())})")
        return path
    bundled = GRIDS_DIR / f"{ref}.yaml"
    if not bundled.is_file():
        raise InputError(f"experiment {ref!r}: expected a bundled grid ({', '.join(grid_names())}) or a .yaml file")
    return bundled


def grid_reference(source: str) -> str:
    """How a report names its grid file: a bundled grid by its name (what `kgreason experiment NAME`
    takes, wherever the package is installed), another by its path relative to the working folder
    where it lies below it; an absolute path would name one machine's checkout."""
    target = Path(source).resolve()
    if target.parent == GRIDS_DIR:
        return target.stem
    path = Path(os.path.abspath(source))  # the path as given, links not followed
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def load_grid(ref: str) -> Grid:
    """Read and check a grid file: every error names the file and line."""
    from kgreason.config import PIPELINE_DERIVED, PipelineConfig
    from kgreason.options import leaves, walk_options
    from kgreason.yaml_lines import Located, plain, read_yaml_lines

    path = grid_path(ref)
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read it ({exc})") from None
    top = read_yaml_lines(content, path)
    if not isinstance(top, Located):
        raise InputError(f"{path}:1: expected a mapping with `question` and `arms`")
    extra = sorted(set(top) - {"question", "arms"})
    if extra:
        raise InputError(f"{path}: unknown key(s) {', '.join(extra)}; a grid has question and arms")
    arm_items = top.get("arms")  # (arm, line) pairs
    if not isinstance(arm_items, list) or not arm_items:
        raise InputError(f"{path}: `arms` must be a non-empty list of arms")
    by_path = {leaf.path: leaf for leaf in leaves(PipelineConfig)}
    # seeds follow the arm-seed; reward presets of phases may be set per arm (the evaluation's is not)
    skip = tuple(p for p in PIPELINE_DERIVED if p not in ("rsft.reward_preset", "grpo.reward_preset"))
    skip += ("seed", "eval.reward_preset", "reward_preset", "profile")
    arms: list[Arm] = []
    for fields_, line in arm_items:
        if not isinstance(fields_, Located):
            raise InputError(f"{path}:{line}: an arm is a mapping ({', '.join(ARM_KEYS)})")
        unknown = sorted(set(fields_) - set(ARM_KEYS))
        if unknown:
            raise InputError(f"{path}:{line}: unknown arm key(s) {', '.join(unknown)}; expected {', '.join(ARM_KEYS)}")

        def text(key: str, default: str | None = None, node_: Located = fields_, where: int = line) -> str:
            if key not in node_:
                if default is None:
                    raise InputError(f"{path}:{where}: the arm needs `{key}`")
                return default
            value = node_[key]
            if not isinstance(value, str) or not value.strip():
                raise InputError(f"{path}:{node_.key_lines[key]}: `{key}` must be text")
            return value.strip()

        name = text("name")
        if not name.replace("_", "").replace("-", "").isalnum():
            raise InputError(f"{path}:{line}: arm name {name!r}: letters, digits, - and _ only (it names a folder)")
        kind = text("kind")
        if kind not in phase_order():
            raise InputError(f"{path}:{line}: arm {name}: kind must be one of {', '.join(phase_order())}, got {kind!r}")
        overrides: dict[str, Any] = {}
        if "overrides" in fields_:
            walk_options(fields_["overrides"], "", path, by_path, skip, overrides, fields_.key_lines["overrides"])
        # An arm differs from the others only in its own phase: the data, the evaluation, the model
        # and SFT (which every RSFT/GRPO arm takes from the sft arm) are the experiment's, so that
        # every arm is scored the same way (change those for all arms with --config).
        foreign = sorted(k for k in overrides if k.split(".")[0] != kind)
        if foreign:
            where = fields_["overrides"].line
            raise InputError(f"{path}:{where}: arm {name} ({kind}) may override only its own `{kind}:` options, "
                             f"not {', '.join(foreign)} (options of the whole experiment go in --config)")
        arms.append(Arm(name=name, label=text("label", name), kind=kind, description=text("description", ""),
                        overrides=overrides,
                        compare_to=text("compare_to", get_phase(kind).starts_from or "-")))
    names = [a.name for a in arms]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"{path}: arm name(s) used twice: {', '.join(dupes)}")
    if any(a.needs_sft for a in arms) and "sft" not in names:
        raise InputError(f"{path}: RSFT/GRPO arms start from the `sft` arm; add an arm named sft (kind sft)")
    arms = [a if a.compare_to != "-" else Arm(a.name, a.label, a.kind, a.description, a.overrides, "") for a in arms]
    for a in arms:
        if a.compare_to and (a.compare_to not in names or a.compare_to == a.name):
            raise InputError(f"{path}: arm {a.name}: compare_to {a.compare_to!r} is not an arm of this grid")
    question = str(plain(top.get("question")) or "")
    return Grid(name=path.stem, question=question.strip(), arms=tuple(arms), source=str(path))


# --- layout ----------------------------------------------------------------------------------------
def run_dir(out: Path, arm: Arm, seed: int) -> Path:
    return out / "runs" / f"{arm.name}-s{seed}"


def seeds_for(arm: Arm, n_seeds: int) -> list[int]:
    return list(range(n_seeds)) if arm.seeded else [0]
