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
zero; "not consistent across seeds" when the pooled interval is on the claimed side but a seed's own
difference is not. A claim whose experiment has fewer seeds finished than it asks says so.
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
MEASURES = ("paired", "paired_entropy", "two_by_two")
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
        if claim.measure == "paired_entropy" and not (claim.arm and claim.control):
            raise InputError(f"{where}: a paired_entropy claim names its arm and its control")
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


def _vs_key(arm: dict, control: dict) -> str | None:
    """Where the report keeps `arm`'s paired differences from `control`: against the arm it is
    compared to, or against SFT; None for any other control."""
    return ("vs_compare" if arm.get("compare_to") == control["name"] else "vs_sft" if control["name"] == "sft"
            else None)


def _seed_diffs(arm: dict, control: dict, metric: str | None = None) -> list[float] | None:
    """Each seed's paired difference of `arm` from `control` (same seed), when the report has them:
    of accuracy, or of `metric` (e.g. "entropy") where the seed's row carries it."""
    key = _vs_key(arm, control)
    if key is None:
        return None
    rows = [row.get(key) or {} for row in arm.get("per_seed") or []]
    diffs = [((row.get(metric) or {}) if metric else row).get("diff") for row in rows]
    return [d for d in diffs if d is not None] or None


def paired_row(claim: Claim, results: dict) -> tuple[str, str]:
    """The measurement and verdict of a paired claim: the pooled paired interval (items, each
    averaged over seeds) must lie on the claimed side of zero, and every seed's own difference must
    point the same way (one lucky seed can move a 3-seed average)."""
    arm = _arm(results, claim.arm)
    control_name = claim.control or (arm or {}).get("compare_to", "")
    control = _arm(results, control_name)
    if arm is None or control is None:
        missing = claim.arm if arm is None else control_name
        return f"arm `{missing}` has no finished arm-seed yet", "not measured yet"
    # the report pairs each arm with its own compare_to (vs_compare) and with SFT (vs_sft)
    vs = next((v for v in (arm.get("vs_compare"), arm.get("vs_sft")) if v and v["reference"] == control["name"]), None)
    if vs is None or not vs["accuracy"].get("n"):
        return f"no paired comparison of `{arm['name']}` with `{control['name']}` in the report", "not measured yet"
    d = vs["accuracy"]
    per_seed = _seed_diffs(arm, control)
    seeds = vs.get("seeds") or arm["seeds_done"]
    verdict = _verdict(claim, d, per_seed, seeds, arm, control, results)
    seeds_text = (f" (seeds: {', '.join(_points(x) for x in per_seed)})" if per_seed and len(per_seed) > 1 else "")
    text = (f"{arm['label']} {_pct(arm['accuracy']['mean'])} vs {control['label']} {_pct(control['accuracy']['mean'])}: "
            f"**{_points(d['diff'])} points [{_points(d['low'])}, {_points(d['high'])}]**{seeds_text}, {d['n']} items, "
            f"{len(seeds)} seed(s); faithful {_pct(arm['faithful_share']['mean'])} vs "
            f"{_pct(control['faithful_share']['mean'])}")
    return text, verdict


def _verdict(claim: Claim, d: dict, per_seed: list[float] | None, seeds: list[int], arm: dict, control: dict,
             results: dict) -> str:
    """Read a paired difference's interval `d` in the claim's direction; every seed's own difference
    must point the same way (one lucky seed can move a 3-seed average)."""
    sign = 1.0 if claim.expect == "higher" else -1.0
    # the interval of the difference in the claimed direction (arm minus control, or its negative)
    low, high = (d["low"], d["high"]) if sign > 0 else (-d["high"], -d["low"])
    if low > 0 and per_seed and any(sign * x <= 0 for x in per_seed):
        verdict = "not consistent across seeds (the pooled interval is on the claimed side, a seed is not)"
    elif low > 0:
        verdict = "supported"
    elif high < 0:
        verdict = "not supported"
    else:
        verdict = "no difference resolved at this budget"
    wanted = 1 if "base" in (arm.get("kind"), control.get("kind")) else results.get("seeds", len(seeds))
    if len(seeds) < wanted:
        verdict += f" (preliminary: {len(seeds)} of {wanted} seeds)"
    return verdict


def paired_entropy_row(claim: Claim, results: dict) -> tuple[str, str]:
    """The entropy claim: the arm's per-token entropy along its own greedy answers against the
    control's, paired by item over the seeds both measured (experiments/report.py, vs_reference's
    "entropy"); every figure here, the two means included, comes from that pairing."""
    arm, control = _arm(results, claim.arm), _arm(results, claim.control)
    if arm is None or control is None:
        return f"arm `{claim.arm if arm is None else claim.control}` has no finished arm-seed yet", "not measured yet"
    key = _vs_key(arm, control)
    vs = arm.get(key) if key else None
    d = (vs or {}).get("entropy")
    if not d or not d.get("n"):
        return (f"entropy not measured for `{arm['name']}` and `{control['name']}` on the same seeds "
                f"(`{claim.command}`)", "not measured yet")
    # a seed's row carries its entropy difference only where both arms measured it, which for a
    # pooled figure to exist is every seed they share
    per_seed = _seed_diffs(arm, control, "entropy")
    verdict = _verdict(claim, d, per_seed, vs["seeds"], arm, control, results)
    seeds_text = f" (seeds: {', '.join(f'{x:+.3f}' for x in per_seed)})" if per_seed and len(per_seed) > 1 else ""
    # mean_a / mean_b of the paired difference: the control's and the arm's means over the paired items
    text = (f"{arm['label']} {d['mean_b']:.3f} vs {control['label']} {d['mean_a']:.3f} nats per token: "
            f"**{d['diff']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]**{seeds_text}, {d['n']} items, "
            f"{len(vs['seeds'])} seed(s)")
    return text, verdict


MIN_SHARE = 0.05  # the 2x2 claim: an off-diagonal cell must be at least this common to count


def two_by_two_row(claim: Claim, results: dict) -> tuple[str, str]:
    """Answers right without a faithful trace, and faithful traces with a wrong answer, per trained
    arm (summed over its seeds). Each half of the claim holds when, in every trained arm, the
    cell's Wilson lower bound is at least MIN_SHARE: a stray grading slip cannot make it, and the
    items repeated across seeds (which make one pooled interval too narrow) count once per arm."""
    from kgreason.stats import wilson_interval

    arms = [a for a in results["arms"] if a["kind"] != "base" and a.get("confusion")]
    if not arms:
        return "no trained arm finished yet", "not measured yet"

    def cell(a: dict, num_key: str, other_key: str) -> tuple[int, int, float]:
        c = a["confusion"]
        num, n = int(c.get(num_key, 0)), int(c.get(num_key, 0)) + int(c.get(other_key, 0))
        return num, n, (wilson_interval(num, n)[0] if n else 0.0)

    halves = {"right_unfaithful": [cell(a, "correct_unfaithful", "correct_faithful") for a in arms],
              "faithful_wrong": [cell(a, "wrong_faithful", "correct_faithful") for a in arms]}

    def describe(rows: list[tuple[int, int, float]]) -> str:
        shares = [num / n for num, n, _ in rows if n]
        if not shares:
            return "none to count"
        return f"{_pct(min(shares))} to {_pct(max(shares))} (lowest Wilson bound {_pct(min(lo for *_, lo in rows))})"

    text = (f"right answers without a faithful trace, per arm: **{describe(halves['right_unfaithful'])}**; "
            f"faithful traces with a wrong answer, per arm: **{describe(halves['faithful_wrong'])}** "
            f"({len(arms)} trained arms, each summed over its seeds)")
    holds = {k: all(n and lo >= MIN_SHARE for _, n, lo in rows) for k, rows in halves.items()}
    if all(holds.values()):
        verdict = "supported"
    elif holds["right_unfaithful"]:
        verdict = "half supported: a right answer does not imply a faithful trace; a faithful trace does here"
    elif holds["faithful_wrong"]:
        verdict = "half supported: a faithful trace does not imply a right answer; a right answer does here"
    else:
        verdict = f"not supported: neither cell reaches {_pct(MIN_SHARE)} in every arm"
    return text, verdict


ROW_BUILDERS = {"paired": paired_row, "paired_entropy": paired_entropy_row, "two_by_two": two_by_two_row}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _copied_note(results: dict) -> str:
    """Where the arm-seeds an experiment copied were trained (their hours count there, not here)."""
    copied = [Path(p) for arm in results.get("arms", []) for p in (arm.get("copied") or {}).values()]
    if not copied:
        return ""
    # a copy's source is EXPERIMENT/runs/ARM-sN: name the experiment folder
    sources = sorted({p.parent.parent.name or str(p) for p in copied})
    return f" (and {len(copied)} arm-seed(s) copied from {', '.join(sources)}, trained there)"


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
                     f"{', '.join(results.get('cpus') or ['CPU not recorded'])}, {hours:.1f} h of arm-seeds"
                     f"{_copied_note(results)}")
        else:
            text, verdict, where = "not run yet", "not measured yet", f"{claim.results} (no results collected)"
        lines.append(f"| {_cell(claim.claim)} | {_cell(claim.source)} | {_cell(text)} | {verdict} | {_cell(where)} "
                     f"| `{_cell(claim.command)}` |")
    paired = sum(c.measure in ("paired", "paired_entropy") for c in claims)
    lines += ["", f"{paired} paired claims are tested at 95% each: were every one of them false, the chance that at "
              f"least one interval lands on the claimed side by luck alone is about {_pct(1 - 0.95 ** paired)}, "
              "so a single \"supported\" row is a lead to re-run with more seeds, not a settled fact. Arms several "
              "experiments share (`sft`; the reward grid's `rsft_kgreason` is `frontier`'s and `curriculum`'s "
              "`rsft_hard`) are trained once and copied, so those rows share their control."]
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
    if args.collect and args.check:
        raise InputError("--collect writes docs/results/ and --check writes nothing: use one of them")
    claims = load_claims(args.claims)
    if args.collect:
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
    if not table:
        return []
    header = [h.strip() for h in table[0].strip("|").split(" | ")]
    return [dict(zip(header, (c.strip() for c in line.strip("|").split(" | ")), strict=False)) for line in table[1:]]
