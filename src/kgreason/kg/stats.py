"""Summary statistics of a knowledge graph: what `kgreason kg stats` prints.

The numbers that matter for task generation are here: how many entities of each type (distractors
must share the answer's type), how many edges per relation and how many distinct heads use it
(branching along a chain), the degree distribution (hubs make near-miss distractors easy to find,
dead ends make long chains impossible), and connectivity.
"""

from __future__ import annotations

import statistics
from typing import Any

from kgreason.kg.graph import KnowledgeGraph, weak_components

UNTYPED = "(untyped)"


def compute_stats(kg: KnowledgeGraph) -> dict[str, Any]:
    """A JSON-ready dict of counts, degree distribution, types, relations and connectivity."""
    degrees = [kg.degree(e) for e in kg.entities]
    out_degrees = [len(kg.successors(e)) for e in kg.entities]
    in_degrees = [len(kg.predecessors(e)) for e in kg.entities]
    components = _component_sizes(kg)
    return {
        "name": kg.name,
        "entities": len(kg.entities),
        "relations": len(kg.relations),
        "edges": len(kg.edges),
        "types": _type_counts(kg),
        "relation_counts": _relation_counts(kg),
        "degree": _summary(degrees),
        "out_degree": _summary(out_degrees),
        "in_degree": _summary(in_degrees),
        "degree_histogram": degree_histogram(degrees),
        "isolated_entities": sum(1 for d in degrees if d == 0),
        "dead_ends": sum(1 for d in out_degrees if d == 0),
        "components": len(components),
        "largest_component": max(components) if components else 0,
        "warnings": list(kg.warnings),
    }


def _type_counts(kg: KnowledgeGraph) -> dict[str, int]:
    counts: dict[str, int] = {}
    for e in kg.entities.values():
        key = e.type or UNTYPED
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _relation_counts(kg: KnowledgeGraph) -> dict[str, dict[str, Any]]:
    """Per relation: edges, distinct heads, and mean out-degree among the heads that use it."""
    edges: dict[str, int] = dict.fromkeys(kg.relations, 0)
    heads: dict[str, set[str]] = {r: set() for r in kg.relations}
    for e in kg.edges:
        edges[e.relation] += 1
        heads[e.relation].add(e.head)
    return {
        r: {
            "phrase": kg.relations[r].phrase,
            "edges": edges[r],
            "heads": len(heads[r]),
            "mean_out": round(edges[r] / len(heads[r]), 3) if heads[r] else 0.0,
        }
        for r in sorted(kg.relations, key=lambda r: (-edges[r], r))
    }


def _summary(values: list[int]) -> dict[str, float]:
    if not values:
        return {"min": 0, "median": 0, "mean": 0.0, "max": 0}
    return {
        "min": min(values),
        "median": statistics.median(values),
        "mean": round(statistics.fmean(values), 3),
        "max": max(values),
    }


def degree_histogram(degrees: list[int]) -> dict[str, int]:
    """Counts in buckets 0, 1, 2, 3-4, 5-8, 9-16, ... (powers of two: hubs stay visible)."""
    buckets: dict[tuple[int, int], int] = {}
    for d in degrees:
        if d <= 2:
            lo = hi = d
        else:
            hi = 1 << (d - 1).bit_length()
            lo = hi // 2 + 1
        buckets[(lo, hi)] = buckets.get((lo, hi), 0) + 1
    return {(str(lo) if lo == hi else f"{lo}-{hi}"): n for (lo, hi), n in sorted(buckets.items())}


def _component_sizes(kg: KnowledgeGraph) -> list[int]:
    """Sizes of the weakly connected components, largest first."""
    return sorted((len(c) for c in weak_components(kg.entities, kg.edges)), reverse=True)


def format_stats(stats: dict[str, Any]) -> str:
    """The human-readable table `kgreason kg stats` prints."""
    lines = [
        f"graph {stats['name']}: {stats['entities']} entities, {stats['relations']} relations, "
        f"{stats['edges']} edges",
        f"connectivity: {stats['components']} weakly connected component(s), largest "
        f"{stats['largest_component']}; {stats['isolated_entities']} isolated, "
        f"{stats['dead_ends']} without outgoing edges",
        "",
        _table(["type", "entities"], [[t, str(n)] for t, n in stats["types"].items()]),
        "",
        _table(
            ["relation", "phrase", "edges", "heads", "mean out"],
            [
                [r, v["phrase"], str(v["edges"]), str(v["heads"]), f"{v['mean_out']:.2f}"]
                for r, v in stats["relation_counts"].items()
            ],
        ),
        "",
        _table(
            ["degree", "min", "median", "mean", "max"],
            [
                [kind, *(_num(stats[key][k]) for k in ("min", "median", "mean", "max"))]
                for kind, key in (("total", "degree"), ("out", "out_degree"), ("in", "in_degree"))
            ],
        ),
        "",
        _table(["degree bucket", "entities"], [[b, str(n)] for b, n in stats["degree_histogram"].items()]),
    ]
    if stats["warnings"]:
        lines += ["", "warnings:"] + [f"  - {w}" for w in stats["warnings"]]
    return "\n".join(lines)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.2f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    numeric = [all(_is_number(r[i]) for r in rows) and bool(rows) for i in range(len(header))]

    def fmt(row: list[str]) -> str:
        cells = [
            c.rjust(w) if numeric[i] else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *(fmt(r) for r in rows)])


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
