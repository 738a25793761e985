"""Shared data for test_tasks_*: the default dataset on the built-in graph, made once per session."""

from __future__ import annotations

from functools import lru_cache

from kgreason.kg.builtin import build_devops_kg
from kgreason.kg.graph import Edge, Entity, KnowledgeGraph, Relation
from kgreason.tasks.generate import GeneratedDataset, TaskConfig, generate


@lru_cache(maxsize=1)
def builtin_kg() -> KnowledgeGraph:
    return build_devops_kg(seed=0)


@lru_cache(maxsize=2)
def default_dataset(mode: str = "closed") -> GeneratedDataset:
    return generate(builtin_kg(), TaskConfig(seed=0, mode=mode))


def tiny_kg() -> KnowledgeGraph:
    """TLSHandshakeError -> causes -> fixes -> tools, small enough to reason about by hand."""
    ents = [
        Entity("tls", "TLSHandshakeError", "symptom"),
        Entity("skew", "ClockSkew", "cause"),
        Entity("cert", "ExpiredCertificate", "cause"),
        Entity("ntp", "SyncNTP", "fix"),
        Entity("rotate", "RotateCertificate", "fix"),
        Entity("restart", "RestartPod", "fix"),
        Entity("drain", "DrainNode", "fix"),
        Entity("chrony", "chronyc", "tool"),
        Entity("certbot", "certbot", "tool"),
        Entity("kubectl", "kubectl", "tool"),
        Entity("helm", "helm", "tool"),
    ]
    rels = [Relation("caused_by", "is caused by"), Relation("fixed_by", "is fixed by"), Relation("uses_tool", "uses")]
    edges = [
        Edge("tls", "caused_by", "skew"), Edge("tls", "caused_by", "cert"),
        Edge("skew", "fixed_by", "ntp"), Edge("cert", "fixed_by", "rotate"),
        Edge("skew", "fixed_by", "restart"), Edge("cert", "fixed_by", "drain"),
        Edge("ntp", "uses_tool", "chrony"), Edge("rotate", "uses_tool", "certbot"),
        Edge("restart", "uses_tool", "kubectl"), Edge("drain", "uses_tool", "helm"),
    ]
    return KnowledgeGraph.from_parts(ents, rels, edges, name="tiny")
