#!/usr/bin/env python3
"""Does the reward read every entity of a graph back? One perfect trace through each entity.

    python scripts/check_graph_reading.py KG [KG ...]      (a kg.json path or a source such as builtin:umls)

For each entity, a trace of one or two hops through it (an edge into it, then one out of it; else one
edge at it), each hop written as the sentence SFT teaches (tasks/format.format_fact), is read by the
reward's trace reader (kgreason.reward.match.read_trace); it must give back exactly those hops, each
a real edge, with no relation phrase left unread. Prints, per graph, how many entities fail and the first few traces with what was read.
A name the reader cannot read back costs every hop through it its faithfulness: the hobby graph's
"Service Unavailable (503)" once lost its "(503)" as a step label, and FB15k-237's "film" split
"has the film" in two (docs/reward.md). Exit 1 when any entity fails.
"""

from __future__ import annotations

import sys
from collections import defaultdict

from kgreason.kg.sources import open_kg
from kgreason.reward.match import EntityMatcher, RelationMatcher, read_trace
from kgreason.tasks.format import format_fact


def check(source: str, show: int = 3) -> int:
    kg = open_kg(source)
    entities, relations = EntityMatcher(kg), RelationMatcher(kg)
    into, out = defaultdict(list), defaultdict(list)
    for edge in kg.edges:
        out[edge.head].append(edge)
        into[edge.tail].append(edge)
    failed = []
    for entity in kg.entities:
        ins, outs = into.get(entity, []), out.get(entity, [])
        if ins and outs:
            first = ins[0]
            hops = [first, next((o for o in outs if o.tail != first.head), outs[0])]
        else:
            hops = (outs or ins)[:1]
        if not hops:
            continue
        trace = " ".join(f"{i}. {format_fact(kg, h)}" for i, h in enumerate(hops, start=1))
        reading = read_trace(kg, entities, relations, trace)
        read = [(h.head, h.relation, h.tail) for h in reading.hops if h.valid]
        # an unread claim (a phrase no hop was read from, e.g. one found inside a name) also costs
        # the trace its faithfulness
        if read != [(h.head, h.relation, h.tail) for h in hops] or reading.unread_claims:
            failed.append((trace, read + [("unread claims", str(reading.unread_claims), "")] * bool(reading.unread_claims)))
    print(f"{source}: {len(failed)} of {len(kg.entities)} entities not read back")
    for trace, read in failed[:show]:
        print(f"  {trace!r}\n    read: {read}")
    return len(failed)


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    return 1 if sum(check(source) for source in argv) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
