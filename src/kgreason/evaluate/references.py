"""The reference rows an evaluation is read against: the KG oracle and the shortcut baselines.

evaluate.runner writes them into metrics.json as `references` ({"KG oracle": row, "shortcut:
<name>": row, ...}, each row {"accuracy": interval, "by_hop": {...}}); an experiment's
results.json carries the same block. The headline, the demo and the experiment report each name
the strongest shortcut beside an accuracy, so they pick it here, the same way.
"""

from __future__ import annotations

from typing import Any

ORACLE = "KG oracle"
SHORTCUT_PREFIX = "shortcut: "


def _mean(row: Any) -> float:
    acc = row.get("accuracy") if isinstance(row, dict) else None
    val = acc.get("mean") if isinstance(acc, dict) else acc
    return float(val) if isinstance(val, (int, float)) else -1.0


def shortcut_rows(refs: Any) -> dict[str, dict]:
    """Baseline name -> its row, for every well-formed shortcut row of `refs`."""
    if not isinstance(refs, dict):
        return {}
    return {k.removeprefix(SHORTCUT_PREFIX): v for k, v in refs.items()
            if isinstance(k, str) and k.startswith(SHORTCUT_PREFIX) and isinstance(v, dict)}


def strongest_shortcut(refs: Any) -> tuple[str, dict] | None:
    """(name, row) of the shortcut baseline with the highest mean accuracy (the first on a tie),
    or None when `refs` has none."""
    rows = shortcut_rows(refs)
    return max(rows.items(), key=lambda kv: _mean(kv[1])) if rows else None


def oracle_row(refs: Any) -> dict | None:
    row = refs.get(ORACLE) if isinstance(refs, dict) else None
    return row if isinstance(row, dict) else None
