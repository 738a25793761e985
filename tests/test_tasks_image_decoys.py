"""Image-matched decoys (tasks/distractors.py image_matched_walks, tasks/build.py's auto retry): for
graphs whose hubs funnel chains, held-out decoys that the stated chain also reaches from other
starts, so a rule that knows the chain's image cannot tell the answer apart."""

from __future__ import annotations

import random

from conftest_tasks import SMALL_SPLITS, builtin_kg
from kgreason.kg.graph import Edge, Entity, KnowledgeGraph, Relation
from kgreason.tasks import build
from kgreason.tasks.distractors import chain_image, image_matched_walks
from kgreason.tasks.generate import TaskConfig


def funnel_kg() -> KnowledgeGraph:
    """s -a-> m1 -b-> hub (the answer of chain a,b from s); s -c-> m2 -b-> x (in the image: o -a-> m3
    -b-> x); s -c-> m4 -b-> y (not in the image: nothing reaches y by a then b)."""
    ids = ["s", "m1", "hub", "m2", "x", "m3", "o", "m4", "y"]
    rels = [Relation("a", "has a", None), Relation("b", "has b", None), Relation("c", "has c", None)]
    edges = [("s", "a", "m1"), ("m1", "b", "hub"), ("s", "c", "m2"), ("m2", "b", "x"), ("o", "a", "m3"),
             ("m3", "b", "x"), ("s", "c", "m4"), ("m4", "b", "y")]
    return KnowledgeGraph.from_parts([Entity(i, i.upper()) for i in ids], rels, [Edge(*e) for e in edges],
                                     name="funnel")


def test_image_matched_walks_keep_decoys_the_chain_reaches_from_elsewhere():
    kg = funnel_kg()
    assert chain_image(kg, ["a", "b"]) == {"hub", "x"}
    found = image_matched_walks(kg, "s", ["a", "b"], random.Random(0))
    assert set(found) == {"hub", "x"}, "y is reached from s but never by the chain; hub is the answer itself"
    assert found["x"] == [("s", "c", "m2"), ("m2", "b", "x")]  # a walk of the chain's length ending with its last relation
    assert set(image_matched_walks(kg, "s", ["a", "b"], random.Random(0), reached={"hub"})) == {"x"}


def test_auto_generates_again_with_image_decoys_only_when_a_chain_image_rule_refuses(monkeypatch):
    kg = builtin_kg(0)
    splits = tuple(s for s in SMALL_SPLITS)
    configs = []

    def fake_generate(kg, config, **kw):
        configs.append(config)
        return type("D", (), {"splits": {s.name: [] for s in config.splits}, "manifest": {}})()

    def check(over):
        return lambda *a, **k: {"held_out": {"eval": {"over": {b: {} for b in over}}}}

    monkeypatch.setattr("kgreason.tasks.generate.generate", fake_generate)
    config = TaskConfig(seed=0, splits=splits)
    monkeypatch.setattr("kgreason.tasks.refusal.check_shortcuts", check(["first_relation_then_any"]))
    build.generate_with_image_decoys(kg, config, "auto", None)
    assert [c.image_decoys for c in configs] == [False], "another rule: the decoys' source is not the cause"
    configs.clear()
    monkeypatch.setattr("kgreason.tasks.refusal.check_shortcuts", check(["chain_image_any_start"]))
    build.generate_with_image_decoys(kg, config, "auto", None)
    assert [(c.image_decoys, c.overgenerate) for c in configs] == [(False, 2.0), (True, build.IMAGE_OVERGENERATE)]
    configs.clear()
    build.generate_with_image_decoys(kg, config, "off", None)
    build.generate_with_image_decoys(kg, config, "on", None)
    assert [c.image_decoys for c in configs] == [False, True]


def test_the_manifest_records_image_decoys_only_when_on():
    assert "image_decoys" not in TaskConfig().to_dict()
    assert TaskConfig(image_decoys=True).to_dict()["image_decoys"] is True


def test_the_refusal_says_image_decoys_were_tried_only_when_a_chain_image_rule_is_still_over():
    from kgreason.tasks.refusal import refusal_paragraph

    def check(rule: str) -> dict:
        return {"limit": 0.35, "chance": 0.25, "held_out": {"eval": {"items": 150, "over": {
            rule: {"accuracy": 0.6, "interval": [0.5, 0.7]}}}}}

    tried = "decoys drawn from the stated chains' image"
    assert tried in refusal_paragraph("g", check("chain_from_other_entities"), image_decoys=True)
    assert tried not in refusal_paragraph("g", check("max_in_degree"), image_decoys=True)
    assert tried not in refusal_paragraph("g", check("chain_from_other_entities"), image_decoys=False)
