"""`kgreason findings`: docs/findings.md, one row per claim the method rests on, rendered from the
claims file (kgreason/experiments/findings.yaml) and the experiments' results.json.

The figures are never typed by hand. `--collect` copies each claim's experiment results.json from
its experiment folder (experiments/<grid>-<scale>-<mode>/, git-ignored: it holds adapters) into
docs/results/<folder>.json, which is committed; the page is rendered from those copies, and
`--check` renders it again and fails (exit 1) when the page on disk differs, so a figure edited in
the page, or results collected without rendering, is caught.

Verdicts, from the paired 95% interval of the arm minus its control on the held-out items (paired
by item and by seed): "supported" when the interval lies on the claimed side of zero, "not
supported" when it lies on the other side, "no difference resolved at this budget" when it contains
zero. A claim whose experiment has fewer seeds finished than it asks says so beside the verdict.
"""

from __future__ import annotations

import argparse
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kgreason.io import InputError, atomic_write_text, read_json

CLAIMS_FILE = Path(__file__).resolve().parent / "findings.yaml"
RESULTS_DIR = Path("docs") / "results"
PAGE = Path("docs") / "findings.md"
MEASURES = ("paired", "two_by_two")
EXPECT = ("higher", "lower")


@dataclass(frozen=True)
class Claim:
    id: str
    claim: str
    source: str
    results: str  # the experiment folder's name under experiments/
    command: str
    measure: str = "paired"
    arm: str = ""
    control: str = ""
    expect: str = "higher"


def load_claims(path: Path = CLAIMS_FILE) -> list[Claim]:
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    claims: list[Claim] = []
    for i, raw in enumerate(data.get("claims") or [], start=1):
        where = f"{path}: claim {i}"
        if not isinstance(raw, dict):
            raise InputError(f"{where}: expected a mapping of id, claim, source, results, command")
        unknown = set(raw) - set(Claim.__dataclass_fields__)
        if unknown:
            raise InputError(f"{where}: unknown keys {sorted(unknown)}")
        try:
            claim = Claim(**{k: str(v) for k, v in raw.items()})
        except TypeError as e:
            raise InputError(f"{where}: {e}") from None
        if claim.measure not in MEASURES or claim.expect not in EXPECT:
            raise InputError(f"{where}: measure must be one of {MEASURES}, expect one of {EXPECT}")
        if claim.measure == "paired" and not claim.arm:
            raise InputError(f"{where}: a paired claim names its arm")
        claims.append(claim)
    if len({c.id for c in claims}) != len(claims):
        raise InputError(f"{path}: claim ids must be unique")
    return claims


def _points(x: float) -> str:
    return f"{100 * x:+.1f}"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _arm(results: dict, name: str) -> dict | None:
    return next((a for a in results["arms"] if a["name"] == name), None)


def paired_row(claim: Claim, results: dict) -> tuple[str, str]:
    """The measurement and verdict of a paired claim."""
    arm = _arm(results, claim.arm)
    control_name = claim.control or (arm or {}).get("compare_to", "")
    control = _arm(results, control_name)
    if arm is None or control is None:
        missing = claim.arm if arm is None else control_name
        return f"arm `{missing}` not finished yet", "not measured yet"
    # the report pairs each arm with its own compare_to (vs_compare) and with SFT (vs_sft)
    vs = next((v for v in (arm.get("vs_compare"), arm.get("vs_sft")) if v and v["reference"] == control["name"]), None)
    if vs is None or not vs["accuracy"].get("n"):
        return f"no paired comparison of `{arm['name']}` with `{control['name']}` in the report", "not measured yet"
    d = vs["accuracy"]
    sign = 1 if claim.expect == "higher" else -1
    if sign * d["low"] > 0 if sign > 0 else sign * d["high"] > 0:
        verdict = "supported"
    elif sign * d["high"] < 0 if sign > 0 else sign * d["low"] < 0:
        verdict = "not supported"
    else:
        verdict = "no difference resolved at this budget"
    seeds = vs.get("seeds") or arm["seeds_done"]
    wanted = results.get("seeds", len(seeds))
    if len(seeds) < wanted:
        verdict += f" (preliminary: {len(seeds)} of {wanted} seeds)"
    text = (f"{arm['label']} {_pct(arm['accuracy']['mean'])} vs {control['label']} {_pct(control['accuracy']['mean'])}: "
            f"**{_points(d['diff'])} points [{_points(d['low'])}, {_points(d['high'])}]**, {d['n']} items, "
            f"{len(seeds)} seed(s); faithful {_pct(arm['faithful_share']['mean'])} vs "
            f"{_pct(control['faithful_share']['mean'])}")
    return text, verdict


def two_by_two_row(claim: Claim, results: dict) -> tuple[str, str]:
    """Answers right without a faithful trace, and faithful traces with a wrong answer, over every
    trained arm's evaluations (Wilson intervals over items x seeds)."""
    from kgreason.stats import wilson_interval

    cells: dict[str, int] = {}
    for a in results["arms"]:
        if a["kind"] == "base":
            continue
        for k, v in (a.get("confusion") or {}).items():
            cells[k] = cells.get(k, 0) + int(v)
    right = cells.get("correct_faithful", 0) + cells.get("correct_unfaithful", 0)
    faithful = cells.get("correct_faithful", 0) + cells.get("wrong_faithful", 0)
    if not right or not faithful:
        return "no trained arm finished yet", "not measured yet"
    lo1, hi1 = wilson_interval(cells.get("correct_unfaithful", 0), right)
    lo2, hi2 = wilson_interval(cells.get("wrong_faithful", 0), faithful)
    share1, share2 = cells.get("correct_unfaithful", 0) / right, cells.get("wrong_faithful", 0) / faithful
    text = (f"right answers without a faithful trace: **{_pct(share1)} [{_pct(lo1)}, {_pct(hi1)}]** of {right}; "
            f"faithful traces with a wrong answer: **{_pct(share2)} [{_pct(lo2)}, {_pct(hi2)}]** of {faithful} "
            f"(every trained arm's evaluations, items x seeds)")
    if lo1 > 0 and lo2 > 0:
        verdict = "supported"
    elif lo1 > 0 or lo2 > 0:
        verdict = ("half supported: a right answer does not imply a faithful trace" if lo1 > 0 else
                   "half supported: a faithful trace does not imply a right answer")
    else:
        verdict = "no difference resolved at this budget"
    return text, verdict


ROW_BUILDERS = {"paired": paired_row, "two_by_two": two_by_two_row}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(claims: list[Claim], root: Path) -> str:
    """The page: every claim's row, with its measurement read from docs/results/<folder>.json."""
    lines = ["# Findings: the claims this method rests on, tested",
             "",
             "Rendered by `kgreason findings` from `src/kgreason/experiments/findings.yaml` (the claims) and",
             "`docs/results/*.json` (each experiment's results.json, copied by `kgreason findings --collect`);",
             "`kgreason findings --check` fails when this page differs from them. Each figure is the paired",
             "difference of the arm from its control on the same held-out 4-5 hop items, averaged over seeds,",
             "with its 95% interval; the verdict reads the interval (supported: on the claimed side of zero).",
             "",
             "| claim | source | kgreason's measurement [95% interval] | verdict | experiment (CPU, wall time) | reproduce |",
             "| --- | --- | --- | --- | --- | --- |"]
    for claim in claims:
        path = root / RESULTS_DIR / f"{claim.results}.json"
        if path.is_file():
            results = read_json(path)
            text, verdict = ROW_BUILDERS[claim.measure](claim, results)
            hours = results.get("wall_seconds_arms", 0.0) / 3600
            where = (f"[{claim.results}]({RESULTS_DIR.relative_to('docs') / path.name}): "
                     f"{', '.join(results.get('cpus') or ['CPU not recorded'])}, {hours:.1f} h of arm-seeds")
        else:
            text, verdict, where = "not run yet", "not measured yet", f"{claim.results} (no results collected)"
        lines.append(f"| {_cell(claim.claim)} | {_cell(claim.source)} | {_cell(text)} | {verdict} | {_cell(where)} "
                     f"| `{claim.command}` |")
    return "\n".join(lines) + "\n"


def collect(claims: list[Claim], root: Path, experiments: Path) -> list[Path]:
    """Copy each claimed experiment's results.json into docs/results/; the files copied."""
    copied = []
    for name in sorted({c.results for c in claims}):
        source = experiments / name / "results.json"
        if source.is_file():
            dest = root / RESULTS_DIR / f"{name}.json"
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_suffix(".json.tmp")
            shutil.copyfile(source, tmp)
            tmp.replace(dest)
            copied.append(dest)
    return copied


def add_findings_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--claims", type=Path, default=CLAIMS_FILE, help="the claims file (YAML)")
    p.add_argument("--root", type=Path, default=Path("."), help="the repository root (docs/ and docs/results/ under it)")
    p.add_argument("--experiments", type=Path, default=Path("experiments"),
                   help="where the experiment folders are (for --collect)")
    p.add_argument("--collect", action="store_true",
                   help="first copy each claimed experiment's results.json into docs/results/")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 when docs/findings.md differs from what the results say")


def run_findings(args: argparse.Namespace) -> int:
    claims = load_claims(args.claims)
    if args.collect and not args.check:
        for path in collect(claims, args.root, args.experiments):
            print(f"collected {path}")
    page = render(claims, args.root)
    target = args.root / PAGE
    if args.check:
        current = target.read_text(encoding="utf-8") if target.is_file() else ""
        if current != page:
            print(f"{target}: differs from the claims and results it is rendered from; run `kgreason findings`")
            return 1
        print(f"{target}: matches {len(claims)} claims and their results")
        return 0
    atomic_write_text(target, page)
    print(f"wrote {target} ({len(claims)} claims)")
    return 0


def rows(page: str) -> list[dict[str, Any]]:
    """The page's table rows as dicts (for readers and tests)."""
    table = [line for line in page.splitlines() if line.startswith("| ") and not line.startswith("| ---")]
    header = [h.strip() for h in table[0].strip("|").split(" | ")]
    return [dict(zip(header, (c.strip() for c in line.strip("|").split(" | ")), strict=False)) for line in table[1:]]
