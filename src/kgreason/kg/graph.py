"""The knowledge-graph model: typed entities, phrased relations, directed edges, and indexes.

Everything downstream (task generation, the audit, the reward) asks the graph two questions many
times: "what is reachable from X along relation r" and "is (h, r, t) an edge". Both are answered
from adjacency dicts built once at construction, so they cost a dict lookup, not a scan.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Entity:
    id: str
    label: str
    type: str | None = None
    aliases: tuple[str, ...] = ()

    def names(self) -> tuple[str, ...]:
        """Every surface form by which a text may mention this entity (id, label, aliases)."""
        seen: dict[str, None] = {}
        for name in (self.id, self.label, *self.aliases):
            if name:
                seen.setdefault(name, None)
        return tuple(seen)


@dataclass(frozen=True)
class Relation:
    """A relation and how text says it: "<head> PHRASE <tail>", and "<tail> INVERSE_PHRASE <head>".

    A symmetric relation reads the same both ways ("is related to"): the graph stores every edge
    of it in both directions, so following it from either end gives the same answer.
    """

    id: str
    phrase: str
    inverse_phrase: str | None = None
    symmetric: bool = False


@dataclass(frozen=True)
class Edge:
    head: str
    relation: str
    tail: str


@dataclass
class KnowledgeGraph:
    """An immutable-by-convention KG with forward and backward indexes.

    `warnings` holds what was repaired while building it (self-loops and duplicate edges dropped),
    so importers and `kg stats` can report them instead of failing.
    """

    entities: dict[str, Entity]
    relations: dict[str, Relation]
    edges: list[Edge]
    name: str = "kg"
    warnings: list[str] = field(default_factory=list)
    _out: dict[str, dict[str, tuple[str, ...]]] = field(init=False, repr=False)
    _in: dict[str, dict[str, tuple[str, ...]]] = field(init=False, repr=False)
    _edge_set: set[tuple[str, str, str]] = field(init=False, repr=False)
    _all_out: dict[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)
    _all_in: dict[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._build_indexes()

    @classmethod
    def from_parts(
        cls,
        entities: Iterable[Entity],
        relations: Iterable[Relation],
        edges: Iterable[Edge],
        name: str = "kg",
    ) -> KnowledgeGraph:
        """Build a graph, dropping self-loops and duplicate edges with a warning for each kind.

        Raises KGError for duplicate ids, unknown relations, dangling endpoints or an empty graph.
        """
        ent: dict[str, Entity] = {}
        for e in entities:
            if e.id in ent:
                raise KGError(f"duplicate entity id {e.id!r}")
            ent[e.id] = e
        rel: dict[str, Relation] = {}
        for r in relations:
            if r.id in rel:
                raise KGError(f"duplicate relation id {r.id!r}")
            rel[r.id] = r
        kept: list[Edge] = []
        seen: set[tuple[str, str, str]] = set()
        self_loops: list[Edge] = []
        duplicates: list[Edge] = []
        for i, edge in enumerate(edges):
            if edge.relation not in rel:
                raise KGError(f"edge {i} ({edge.head} -{edge.relation}-> {edge.tail}): unknown relation {edge.relation!r}")
            for end in (edge.head, edge.tail):
                if end not in ent:
                    raise KGError(f"edge {i} ({edge.head} -{edge.relation}-> {edge.tail}): unknown entity {end!r}")
            key = (edge.head, edge.relation, edge.tail)
            if edge.head == edge.tail:
                self_loops.append(edge)
            elif key in seen:
                duplicates.append(edge)
            else:
                seen.add(key)
                kept.append(edge)
        if not ent or not kept:
            raise KGError("empty graph: it needs at least one entity and one edge")
        warnings = symmetric_closure(kept, rel)
        if self_loops:
            warnings.append(f"dropped {len(self_loops)} self-loop edge(s), e.g. {_fmt(self_loops[0])}")
        if duplicates:
            warnings.append(f"dropped {len(duplicates)} duplicate edge(s), e.g. {_fmt(duplicates[0])}")
        return cls(entities=ent, relations=rel, edges=kept, name=name, warnings=warnings)

    def _build_indexes(self) -> None:
        # get-then-insert instead of setdefault: setdefault allocates a throwaway {} / [] per
        # edge, which dominates index time on million-edge graphs.
        triples = [(e.head, e.relation, e.tail) for e in self.edges]
        self._out = _adjacency((h, r, t) for h, r, t in triples)
        self._in = _adjacency((t, r, h) for h, r, t in triples)
        self._edge_set = set(triples)
        self._all_out, self._all_in = {}, {}

    # --- queries -------------------------------------------------------------------------------
    def has_edge(self, head: str, relation: str, tail: str) -> bool:
        return (head, relation, tail) in self._edge_set

    def successors(self, head: str, relation: str | None = None) -> tuple[str, ...]:
        """Tails reachable from `head` by one edge (of `relation`, if given)."""
        return _neighbours(self._out, self._all_out, head, relation)

    def predecessors(self, tail: str, relation: str | None = None) -> tuple[str, ...]:
        return _neighbours(self._in, self._all_in, tail, relation)

    def out_relations(self, head: str) -> dict[str, tuple[str, ...]]:
        """relation id -> tails, for every relation leaving `head`."""
        return self._out.get(head, {})

    def in_relations(self, tail: str) -> dict[str, tuple[str, ...]]:
        return self._in.get(tail, {})

    def follow(self, start: str, chain: Sequence[str]) -> set[str]:
        """Every entity reached from `start` by following the relation chain, hop by hop.

        This is the definition of a well-posed answer: an item is well posed when exactly one
        option lies in this set.
        """
        frontier = {start}
        for rel in chain:
            nxt: set[str] = set()
            for node in frontier:
                nxt.update(self._out.get(node, {}).get(rel, ()))
            frontier = nxt
            if not frontier:
                break
        return frontier

    def degree(self, entity: str) -> int:
        return sum(len(v) for v in self._out.get(entity, {}).values()) + sum(
            len(v) for v in self._in.get(entity, {}).values()
        )

    def label(self, entity: str) -> str:
        return self.entities[entity].label

    def phrase(self, relation: str) -> str:
        return self.relations[relation].phrase

    # --- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The kg.json schema (a superset of the hobby project's: src/rel/dst edges, id/label)."""
        return {
            "name": self.name,
            "entities": [entity_dict(e) for e in self.entities.values()],
            "relations": [_relation_dict(r) for r in self.relations.values()],
            "edges": [{"src": e.head, "rel": e.relation, "dst": e.tail} for e in self.edges],
        }


def _neighbours(index: dict[str, dict[str, tuple[str, ...]]], joined: dict[str, tuple[str, ...]], entity: str,
                relation: str | None) -> tuple[str, ...]:
    """One side of an entity's edges: by `relation`, or over all relations, joined once per entity
    (the baselines' walks and distances ask for that many thousands of times per dataset; a
    graph is not changed after it is built)."""
    rels = index.get(entity, {})
    if relation is not None:
        return rels.get(relation, ())
    out = joined.get(entity)
    if out is None:
        out = joined[entity] = tuple(x for xs in rels.values() for x in xs)
    return out


def symmetric_closure(edges: list[Edge], relations: dict[str, Relation]) -> list[str]:
    """Append, in place, the missing reverse of every edge of a symmetric relation (self-loops and
    duplicates already removed); return one message per relation that needed any, with the count."""
    symmetric = {r for r, rel in relations.items() if rel.symmetric}
    if not symmetric:
        return []
    present = {(e.head, e.relation, e.tail) for e in edges if e.relation in symmetric}
    added: dict[str, list[Edge]] = {}
    for edge in list(edges):
        if edge.relation not in symmetric or (edge.tail, edge.relation, edge.head) in present:
            continue
        reverse = Edge(edge.tail, edge.relation, edge.head)
        present.add((reverse.head, reverse.relation, reverse.tail))
        edges.append(reverse)
        added.setdefault(edge.relation, []).append(reverse)
    return [
        f"symmetric relation {r!r}: added {len(rev)} reverse edge(s) so it reads the same both ways, "
        f"e.g. {_fmt(rev[0])}"
        for r, rev in added.items()
    ]


def weak_components(entity_ids: Iterable[str], edges: Iterable[Edge]) -> list[list[str]]:
    """Weakly connected components (union-find over the edges), each in `entity_ids` order.

    Components are listed in the order their first entity appears in `entity_ids`.
    """
    ids = list(entity_ids)
    parent = {e: e for e in ids}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for e in edges:
        a, b = find(e.head), find(e.tail)
        if a != b:
            parent[a] = b
    groups: dict[str, list[str]] = {}
    for e in ids:
        groups.setdefault(find(e), []).append(e)
    return list(groups.values())


class KGError(ValueError):
    """A knowledge graph could not be built or read; the message says where and why."""


def _adjacency(triples: Iterable[tuple[str, str, str]]) -> dict[str, dict[str, tuple[str, ...]]]:
    """node -> relation -> neighbours, in edge order."""
    adj: dict[str, dict] = {}
    for a, r, b in triples:
        rels = adj.get(a)
        if rels is None:
            adj[a] = {r: [b]}
            continue
        nbrs = rels.get(r)
        if nbrs is None:
            rels[r] = [b]
        else:
            nbrs.append(b)
    for rels in adj.values():
        for r, nbrs in rels.items():
            rels[r] = tuple(nbrs)
    return adj


def _fmt(edge: Edge) -> str:
    return f"{edge.head} -{edge.relation}-> {edge.tail}"


def entity_dict(e: Entity) -> dict:
    d: dict = {"id": e.id, "label": e.label}
    if e.type is not None:
        d["type"] = e.type
    if e.aliases:
        d["aliases"] = list(e.aliases)
    return d


def _relation_dict(r: Relation) -> dict:
    # "label" mirrors "phrase" so files we write load in the hobby project's tools too.
    d: dict = {"id": r.id, "label": r.phrase, "phrase": r.phrase}
    if r.inverse_phrase:
        d["inverse_phrase"] = r.inverse_phrase
    if r.symmetric:
        d["symmetric"] = True
    return d
