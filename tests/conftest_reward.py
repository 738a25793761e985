"""The small graph and task that docs/reward.md's worked examples use (imported by test_reward_*)."""

from __future__ import annotations

from kgreason.kg.graph import Edge, Entity, KnowledgeGraph, Relation
from kgreason.records import PathStar, Task

RELATIONS = [
    Relation("caused_by", "is caused by", "causes"),
    Relation("leads_to", "leads to", "follows from"),
    Relation("fixed_by", "is fixed by", "fixes"),
    Relation("diagnosed_by", "is diagnosed by", "diagnoses"),
    Relation("uses_tool", "uses", "is used by"),
    Relation("related_to", "is related to", None),
]

ENTITIES = [
    Entity("tls_handshake_error", "TLSHandshakeError", "symptom"),
    Entity("clock_skew", "ClockSkew", "cause", ("clock drift",)),
    Entity("sync_ntp", "SyncNTP", "fix"),
    Entity("expired_certificate", "ExpiredCertificate", "cause"),
    Entity("rotate_certificate", "RotateCertificate", "fix"),
    Entity("check_ntp_status", "CheckNTPStatus", "diagnostic"),
    Entity("oom_killed", "OOMKilled", "symptom", ("OOM",)),
    Entity("memory_leak", "MemoryLeak", "cause"),
    Entity("increase_memory_limit", "IncreaseMemoryLimit", "fix"),
    Entity("restart_pod", "RestartPod", "fix"),
    Entity("chronyc", "chronyc", "tool"),
    Entity("disk_full", "Disk full", "symptom"),
    Entity("disk_full_error", "Disk full error", "symptom"),
    Entity("ntp_unreachable", "NTPUnreachable", "cause"),
]

EDGES = [
    ("tls_handshake_error", "caused_by", "clock_skew"),
    ("clock_skew", "fixed_by", "sync_ntp"),
    ("tls_handshake_error", "caused_by", "expired_certificate"),
    ("expired_certificate", "fixed_by", "rotate_certificate"),
    ("clock_skew", "diagnosed_by", "check_ntp_status"),
    ("check_ntp_status", "uses_tool", "chronyc"),
    ("oom_killed", "caused_by", "memory_leak"),
    ("memory_leak", "fixed_by", "increase_memory_limit"),
    ("oom_killed", "fixed_by", "restart_pod"),
    ("disk_full", "related_to", "disk_full_error"),
    # A second walk of the example's chain to the same answer: TLSHandshakeError -caused_by->
    # NTPUnreachable -fixed_by-> SyncNTP (docs/reward.md, worked example "other_walk").
    ("tls_handshake_error", "caused_by", "ntp_unreachable"),
    ("ntp_unreachable", "fixed_by", "sync_ntp"),
]


def small_kg() -> KnowledgeGraph:
    return KnowledgeGraph.from_parts(ENTITIES, RELATIONS, [Edge(*e) for e in EDGES], name="reward-example")


def example_task() -> Task:
    """2 hops: TLSHandshakeError -caused_by-> ClockSkew -fixed_by-> SyncNTP; the answer is B."""
    options = {"A": "RestartPod", "B": "SyncNTP", "C": "CheckNTPStatus", "D": "IncreaseMemoryLimit"}
    return Task(
        id="example-2hop",
        split="eval",
        hop_len=2,
        question="Start at TLSHandshakeError. Follow: is caused by, then is fixed by. Which option do you reach?",
        options=options,
        answer_star="B",
        path_star=PathStar(
            entities=["tls_handshake_error", "clock_skew", "sync_ntp"],
            edges=[("tls_handshake_error", "caused_by", "clock_skew"), ("clock_skew", "fixed_by", "sync_ntp")],
        ),
        prompt="",
        start="tls_handshake_error",
        relation_chain=["caused_by", "fixed_by"],
        option_ids={"A": "restart_pod", "B": "sync_ntp", "C": "check_ntp_status", "D": "increase_memory_limit"},
        answer_id="sync_ntp",
    )


def hobby_task() -> Task:
    """The same item in the hobby project's schema: no start, chain or option ids (loaded via from_dict)."""
    t = example_task()
    return Task.from_dict(
        {
            "id": "hobby-1",
            "split": "eval",
            "hop_len": 2,
            "question": "What is the root cause of TLSHandshakeError?",
            "options": t.options,
            "answer_star": "B",
            "path_star": t.path_star.to_dict(),
            "prompt": "What is the root cause of TLSHandshakeError?",
        }
    )


# The worked examples of docs/reward.md: name -> (completion, {preset: total}).
WORKED_EXAMPLES: dict[str, tuple[str, dict[str, float]]] = {
    "faithful": (
        "TRACE: TLSHandshakeError is caused by ClockSkew. ClockSkew is fixed by SyncNTP.\nANSWER: B",
        {"seed": 1.5, "paper": 1.6, "kgreason": 1.8},
    ),
    "bare_right": ("TRACE:\nANSWER: B", {"seed": 1.0, "paper": 0.1, "kgreason": 1.0}),
    "ends_only": (
        "TRACE: TLSHandshakeError is fixed by SyncNTP.\nANSWER: B",
        {"seed": 1 + 0.5 * 2 / 3, "paper": 0.1 + 1.2 * 2 / 3 + 0.3, "kgreason": 1.0},
    ),
    "wrong_relation": (
        "TRACE: TLSHandshakeError leads to ClockSkew. ClockSkew is fixed by SyncNTP.\nANSWER: B",
        {"seed": 1.5, "paper": 1.6, "kgreason": 1.1},
    ),
    "entity_dump_wrong": (
        "TRACE: TLSHandshakeError ClockSkew SyncNTP CheckNTPStatus RestartPod.\nANSWER: A",
        {"seed": -1.5, "paper": 0.5, "kgreason": -0.9},
    ),
    "spam_right": (
        "TRACE: ClockSkew ClockSkew ClockSkew ClockSkew TLSHandshakeError SyncNTP.\nANSWER: B",
        {"seed": 1.0, "paper": 0.85, "kgreason": 0.9},
    ),
    "other_branch_wrong": (
        "TRACE: TLSHandshakeError is caused by ExpiredCertificate. ExpiredCertificate is fixed by "
        "RotateCertificate.\nANSWER: A",
        {"seed": -2.0, "paper": -1.0 + 1.2 / 3, "kgreason": -0.6},
    ),
    "unparseable": ("The fix is SyncNTP.", {"seed": -2.0, "paper": -1.0, "kgreason": -1.5}),
    # Another valid walk of the stated chain to the right answer: faithful, full path credit.
    "other_walk": (
        "TRACE: TLSHandshakeError is caused by NTPUnreachable. NTPUnreachable is fixed by SyncNTP.\nANSWER: B",
        {"seed": 1 + 0.5 * 2 / 3, "paper": 0.1 + 1.2 * 2 / 3 + 0.3, "kgreason": 1.8},
    ),
    # The gold clauses, negated: they claim nothing (was faithful, 1.8, before claims had to be affirmative).
    "negated_gold": (
        "TRACE: TLSHandshakeError is not caused by ClockSkew. ClockSkew is not fixed by SyncNTP.\nANSWER: B",
        {"seed": 1.5, "paper": 1.6, "kgreason": 1.1},
    ),
    # Step numbers and the entity-first answer line read like the plain gold trace.
    "numbered_steps": (
        "TRACE: 1. TLSHandshakeError is caused by ClockSkew. 2. ClockSkew is fixed by SyncNTP.\nANSWER: SyncNTP (B)",
        {"seed": 1.5, "paper": 1.6, "kgreason": 1.8},
    ),
    # Prose in the trace is no answer line: the ANSWER line decides (it was read as A before).
    "prose_answer_in_trace": (
        "TRACE: TLSHandshakeError is caused by ClockSkew. ClockSkew is fixed by SyncNTP. So the answer is a "
        "tool.\nANSWER: B",
        {"seed": 1.5, "paper": 1.6, "kgreason": 1.8},
    ),
    # Two answer lines: the first wins, so this is a wrong answer with a right chain.
    "two_answer_lines": (
        "TRACE: TLSHandshakeError is caused by ClockSkew. ClockSkew is fixed by SyncNTP.\nANSWER: C\nANSWER: B",
        {"seed": -1.5, "paper": 0.5, "kgreason": -0.5},
    ),
}
