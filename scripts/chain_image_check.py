"""Does a graph funnel its relation chains? For random walks of the given lengths, compare the set
the walk's chain reaches from its start (the answer set) with the set it reaches from any entity
(the chain's image). Where the two coincide, every distractor of a well-posed item lies outside the
image, so "follow the chain from any entity" finds the answer and no generator can hide it.

    python scripts/chain_image_check.py builtin:umls --hops 4,5 [--walks 300]
"""

from __future__ import annotations

import argparse
import random
import statistics

from kgreason.kg.sources import import_kg
from kgreason.tasks.baselines import BaselineContext
from kgreason.tasks.generate import random_walk


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("kg", help="kg.json, TSV/CSV triples or builtin:NAME")
    p.add_argument("--hops", default="4,5", help="comma list of walk lengths")
    p.add_argument("--walks", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    kg = import_kg(a.kg)
    ctx = BaselineContext(kg)
    rng = random.Random(a.seed)
    hops = [int(h) for h in a.hops.split(",")]
    starts = [e for e in kg.entities if kg.out_relations(e)]
    rows = []
    for _ in range(a.walks):
        start = starts[rng.randrange(len(starts))]
        path = random_walk(kg, start, rng.choice(hops), rng)
        if not path:
            continue
        chain = [r for _, r, _ in path]
        reached = kg.follow(start, chain)
        image = set(kg.entities)
        for rel in chain:
            image = {t for node in image for t in kg.successors(node, rel)}
        outside = image - reached
        answer_sources = ctx.chain_sources(path[-1][2], chain, start)
        third = sorted((ctx.chain_sources(x, chain, start) for x in outside), reverse=True)[2:3]
        rows.append((len(reached), len(image), len(outside), bool(third and third[0] >= answer_sources)))
    print(f"{a.kg}: {len(rows)} walks of {a.hops} hops")
    print(f"  median answer set {statistics.median(r[0] for r in rows)}, median chain image "
          f"{statistics.median(r[1] for r in rows)}")
    print(f"  walks with >= 3 image entities outside the answer set: {sum(r[2] >= 3 for r in rows)}")
    print(f"  ... of which 3 are reached by the chain from as many entities as the answer: {sum(r[3] for r in rows)}")


if __name__ == "__main__":
    main()
