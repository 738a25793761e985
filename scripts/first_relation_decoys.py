#!/usr/bin/env python3
"""A lever measured, not adopted: multiple-choice decoys that share the asked chain's first relation.

The partial-chain walks (kgreason.tasks.baselines.PARTIAL_WALKS) pick the gold option of the built-in
graph's open-book eval items far above chance (docs/tasks.md, "Partial chains and multiple choice").
This generates the quick profile's held-out split (150 items of 4-5 hops, open book, seed 0; with a
100-item hard pool beside it, as strict) four ways and scores the six walks on each with
scripts/partial_chain_mc.py:

  base      the generator as it is
  balanced  the balancer also holds the two walks that read the first stated relation (over the
            whole graph and over the prompt's facts) at chance, from the candidates it has today
  decoys    and each item's candidates also include walks from the start that take the asked
            chain's first relation and end with its last one
  two       and the same for the first two relations: the walk that reads them is balanced too,
            and walks that take them (then any edges, then the last relation) join the candidates

    python scripts/first_relation_decoys.py KG_JSON OUT_DIR [--overgenerate X]

It patches the generator in this process only (the registry and find_candidates); nothing in the
package changes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import partial_chain_mc  # noqa: E402  (the script beside this one)

from kgreason.kg.kgjson import load_kg  # noqa: E402
from kgreason.tasks import baselines, distractors  # noqa: E402
from kgreason.tasks import generate as generate_module  # noqa: E402
from kgreason.tasks.defaults import SplitSpec  # noqa: E402
from kgreason.tasks.generate import TaskConfig, generate, write_dataset  # noqa: E402

FIRST_RELATION_WALKS = {"first_relation_then_walk": (1, 0), "first_relation_walk_last_relation": (1, 1)}


def _prompt_walk(first: int, last: int) -> baselines.BaselineFn:
    def rule(item, ctx):
        steps = baselines._keep(tuple(item.chain), first, last) if item.start and item.context else None
        if steps is None or len(item.chain) != item.hop_len:
            return None
        weights = partial_chain_mc.context_walk(item, steps)
        return baselines._per_option(item, lambda x: weights.get(x, 0.0))

    return rule


def balance_first_relation_walks(walks: dict[str, tuple[int, int]]) -> None:
    for name, (first, last) in walks.items():
        baselines.register_baseline(name, "balanced here", per_option=True)(
            baselines._partial_walk(lambda chain, f=first, la=last: baselines._keep(chain, f, la)))
        baselines.register_baseline(f"prompt_{name}", "balanced here", open_only=True)(_prompt_walk(first, last))


def add_prefix_decoys(prefixes: tuple[int, ...]) -> None:
    """Candidates: walks from the start taking the chain's first `n` relations (each n in `prefixes`),
    then any edges, ending with its last relation."""
    plain = distractors.find_candidates

    def find_candidates(kg, start, path_edges, reached, question, rng, **kwargs):
        chain = [r for _, r, _ in path_edges]
        walks = dict(kwargs.pop("walks") or {})
        for n in prefixes:
            if n >= len(chain) - 1:
                continue
            steps = [*chain[:n], *[None] * (len(chain) - n - 1), chain[-1]]
            for x, edges in distractors.start_walks(kg, start, len(chain), rng, avoid=set(), last_relation=chain[-1],
                                                    relations=steps).items():
                walks.setdefault(x, edges)
        return plain(kg, start, path_edges, reached, question, rng, walks=walks, **kwargs)

    generate_module.find_candidates = find_candidates


def _follow(ctx: baselines.BaselineContext, start: str, steps) -> set[str]:
    """The entities at the end of `steps` from `start` (None: any relation), by the baselines' walk loop."""
    weights, capped = baselines.step_walk(start, [ctx.out_tails if rel is None else
                                                  (lambda node, r=rel: ctx.kg.successors(node, r)) for rel in steps])
    assert not capped, "a frontier passed BFS_CAP: the count would be of an earlier step"
    return set(weights)


def prefix_room(kg, folder: Path) -> None:
    """Per item, the entities a walk of the chain's length reaches taking the chain's first one or two
    relations and ending with its last one, outside what the chain itself reaches: the decoys such
    walks could supply at most."""
    ctx = baselines.BaselineContext(kg)
    for n in (1, 2):
        counts = []
        for line in (folder / "eval.jsonl").read_text(encoding="utf-8").splitlines():
            task = json.loads(line)
            chain, start = task["relation_chain"], task["start"]
            steps = [*chain[:n], *[None] * (len(chain) - n - 1), chain[-1]]
            counts.append(len(_follow(ctx, start, steps) - _follow(ctx, start, chain)))
        print(f"  room for decoys taking the first {n} relation(s): median {statistics.median(counts)} entities; "
              f"{sum(c < 3 for c in counts)} of {len(counts)} items have fewer than 3")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("kg")
    parser.add_argument("out")
    parser.add_argument("--overgenerate", type=float, default=TaskConfig.overgenerate)
    args = parser.parse_args()
    kg = load_kg(args.kg)
    config = TaskConfig(splits=(SplitSpec("eval", 150, 4, 5, held_out=True), SplitSpec("train_hard", 100, 4, 5, strict=True)),
                        mode="open", overgenerate=args.overgenerate)
    plain = generate_module.find_candidates
    judged = dict(FIRST_RELATION_WALKS)
    for variant in ("base", "balanced", "decoys", "two"):
        if variant == "balanced":
            balance_first_relation_walks(FIRST_RELATION_WALKS)
        if variant == "decoys":
            add_prefix_decoys((1,))
        if variant == "two":
            judged["first_two_relations_then_walk"] = (2, 0)
            balance_first_relation_walks(judged)
            generate_module.find_candidates = plain
            add_prefix_decoys((1, 2))
        began = time.perf_counter()
        data = generate(kg, config)
        seconds = time.perf_counter() - began
        folder = Path(args.out) / variant
        write_dataset(data, folder)
        shutil.copy(args.kg, folder / "kg.json")
        rates = data.manifest["distractors"]["eval"]["expected_shortcut_rates"]
        registered = {k: v for k, v in rates.items() if k in baselines.BASELINES and not k.startswith("prompt_")
                      and k not in judged}
        strongest = max(registered, key=registered.get)
        print(f"{variant}: {len(data.splits['eval'])} eval items in {seconds:.1f} s; strongest registered rule "
              f"{strongest} {100 * registered[strongest]:.1f}% (balancer's running rate)")
        for name, (graph, prompt) in partial_chain_mc.walk_rates(folder).items():
            print(f"  {name:36s} {100 * graph:5.1f}%   in the prompt {100 * prompt:5.1f}%")
        if variant == "base":
            prefix_room(kg, folder)


if __name__ == "__main__":
    main()
