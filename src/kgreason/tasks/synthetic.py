"""A typed synthetic troubleshooting-style graph of any size, for tests and the task benchmark.

Same schema as the built-in DevOps KG (five entity types, six relations with type signatures),
skewed tail degrees like real graphs (a few hubs, a long tail), deterministic from the seed.
Built directly from plain tuples so a 1M-edge graph takes seconds, not minutes.
"""

from __future__ import annotations

import random

from kgreason.kg.builtin import RELATIONS, TYPES
from kgreason.kg.graph import Edge, Entity, KnowledgeGraph, Relation

# relation -> (head types, tail type)
SIGNATURES: dict[str, tuple[tuple[str, ...], str]] = {
    "caused_by": (("symptom",), "cause"),
    "leads_to": (("cause",), "symptom"),
    "fixed_by": (("cause", "symptom"), "fix"),
    "diagnosed_by": (("symptom", "cause"), "diagnostic"),
    "uses_tool": (("fix", "diagnostic"), "tool"),
    "related_to": (("symptom", "cause"), "same"),
}
_SHARE = {"symptom": 0.25, "cause": 0.3, "fix": 0.2, "diagnostic": 0.15, "tool": 0.1}
_WORDS = {
    "symptom": (["Slow", "Failed", "Dropped", "Stale", "Broken", "Intermittent", "Leaking", "Stuck"],
                ["Requests", "Deploys", "Connections", "Builds", "Logins", "Queries", "Pods", "Jobs"]),
    "cause": (["Clock", "Disk", "Memory", "Config", "Cert", "Quota", "Schema", "Network"],
              ["Skew", "Pressure", "Drift", "Expiry", "Exhaustion", "Mismatch", "Partition", "Leak"]),
    "fix": (["Restart", "Rotate", "Resize", "Rollback", "Pin", "Sync", "Purge", "Patch"],
            ["Service", "Certs", "Volume", "Release", "Version", "Clock", "Cache", "Kernel"]),
    "diagnostic": (["Check", "Inspect", "Trace", "Profile", "Audit", "Probe", "Tail", "Diff"],
                   ["Logs", "Metrics", "Headers", "Heap", "Routes", "Config", "Events", "Spans"]),
    "tool": (["Kube", "Prom", "Graf", "Jae", "Strace", "Curl", "Dig", "Perf"],
             ["Ctl", "Query", "Board", "Ger", "Dump", "Scope", "Watch", "Top"]),
}


def _label(kind: str, i: int) -> str:
    first, second = _WORDS[kind]
    return f"{first[i % 8]}{second[(i // 8) % 8]}{i // 64}" if i >= 64 else f"{first[i % 8]}{second[i // 8]}"


def synthetic_kg(n_edges: int, seed: int = 0, edges_per_entity: float = 3.0, name: str | None = None) -> KnowledgeGraph:
    """A typed graph with about `n_edges` edges (duplicates and self-loops are skipped)."""
    rng = random.Random(seed)
    n_entities = max(len(TYPES) * 4, int(n_edges / edges_per_entity))
    by_type: dict[str, list[str]] = {}
    entities: list[Entity] = []
    for kind in TYPES:
        count = max(4, int(n_entities * _SHARE[kind]))
        ids = [f"{kind}:{i}" for i in range(count)]
        by_type[kind] = ids
        entities.extend(Entity(eid, _label(kind, i), kind) for i, eid in enumerate(ids))
    rel_ids = [r.id for r in RELATIONS]
    seen: set[tuple[str, str, str]] = set()
    edges: list[Edge] = []
    tries = 0
    while len(edges) < n_edges and tries < 3 * n_edges:
        tries += 1
        rel = rel_ids[rng.randrange(len(rel_ids))]
        head_types, tail_type = SIGNATURES[rel]
        head_type = head_types[rng.randrange(len(head_types))]
        tail_type = head_type if tail_type == "same" else tail_type
        heads, tails = by_type[head_type], by_type[tail_type]
        head = heads[rng.randrange(len(heads))]
        # Squaring a uniform draw skews tails toward low indices: a few hubs and a long tail.
        tail = tails[int(len(tails) * rng.random() ** 2)]
        key = (head, rel, tail)
        if head == tail or key in seen:
            continue
        seen.add(key)
        edges.append(Edge(head, rel, tail))
    ent_map = {e.id: e for e in entities}
    rel_map = {r.id: r for r in RELATIONS}
    # The edges are already checked, so skip from_parts' validation pass (it matters at 1M edges).
    return KnowledgeGraph(entities=ent_map, relations=rel_map, edges=edges, name=name or f"synthetic-{n_edges}")


def dense_kg(n: int = 12, seed: int = 0) -> KnowledgeGraph:
    """A complete graph over one relation and one type: almost nothing is well posed in it."""
    del seed
    ents = [Entity(f"n{i}", f"Node{chr(65 + i % 26)}{i}", "thing") for i in range(n)]
    edges = [Edge(a.id, "linked_to", b.id) for a in ents for b in ents if a.id != b.id]
    return KnowledgeGraph.from_parts(ents, [Relation("linked_to", "is linked to")], edges, name="dense")
