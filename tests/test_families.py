"""Task families (kgreason/families): the registry, the free-form family end to end (generation,
reading, grading, stop rule, audit, refusal), and multiple choice left as it was."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from functools import lru_cache

import pytest

from conftest_tasks import builtin_kg
from kgreason.families import FAMILIES, family_of_tasks, get_family
from kgreason.io import InputError
from kgreason.records import PathStar, Task
from kgreason.reward.parse import find_answer_line, parse_completion
from kgreason.reward.score import Scorer
from kgreason.sampling.base import answer_line_end, trim_after_answer
from kgreason.tasks.audit import audit_tasks, shortcut_hits
from kgreason.tasks.format import chat_messages, format_trace, reference_completion
from kgreason.tasks.generate import SplitSpec, TaskConfig, generate, load_tasks, save_tasks, task_from_record
from kgreason.tasks.refusal import check_shortcuts, refusal_paragraph
from kgreason.tasks.screen import HELD_OUT_PROBES

SPLITS = (SplitSpec("eval", 80, 4, 5, held_out=True), SplitSpec("train_easy", 60, 1, 3),
          SplitSpec("train_hard", 10, 4, 5, strict=True))


@lru_cache(maxsize=2)
def free_form_data(mode: str):
    return generate(builtin_kg(0), TaskConfig(seed=0, mode=mode, splits=SPLITS, family="free_form"))


@lru_cache(maxsize=1)
def unscreened_closed_data():
    """The same items with the eval split not held out, so the held-out screen (tasks/screen.py) leaves it alone."""
    return generate(builtin_kg(0), TaskConfig(seed=0, mode="closed", family="free_form",
                                              splits=(SplitSpec("eval", 80, 4, 5), *SPLITS[1:])))


def _follow(kg, start: str, chain) -> set[str]:
    """The chain's image from `start`, computed here from the edge list (not kg.follow)."""
    frontier = {start}
    for rel in chain:
        frontier = {e.tail for e in kg.edges if e.relation == rel and e.head in frontier}
    return frontier


def test_both_families_are_registered_and_an_unknown_one_is_refused() -> None:
    assert {"multiple_choice", "free_form"} <= set(FAMILIES.names())
    assert get_family(None).name == get_family("").name == "multiple_choice"
    with pytest.raises(InputError, match="free_form"):
        get_family("free_from")


def test_free_form_items_have_one_answer_in_the_whole_graph_and_offer_no_options() -> None:
    kg = builtin_kg(0)
    data = free_form_data("closed")
    # the built-in graph has few chains with one answer, and the screen keeps those no rule solves
    assert len(data.splits["eval"]) >= 5 and data.splits["train_easy"]
    names: dict[str, set[str]] = {}
    for ent in kg.entities.values():
        for n in ent.names():
            names.setdefault(" ".join(n.split()).lower(), set()).add(ent.id)
    for split, tasks in data.splits.items():
        for t in tasks:
            assert t.family == "free_form" and t.options == {} and t.answer_star == "" and t.option_ids == {}
            assert _follow(kg, t.start, t.relation_chain) == {t.answer_id}, t.id
            assert t.answer_label == kg.label(t.answer_id)
            assert names[t.answer_label.lower()] == {t.answer_id}, "another entity goes by the answer's name"
            assert "Options:" not in t.prompt
            assert not re.search(rf"(?<!\w){re.escape(t.answer_label)}(?!\w)", t.question, re.IGNORECASE)
            assert all(kg.has_edge(*e) for e in t.path_star.edges)
            assert t.hop_len == len(t.relation_chain) and (split != "eval" or 4 <= t.hop_len <= 5)
    assert data.manifest["config"]["family"] == "free_form"


def test_free_form_prompt_and_reference_completion() -> None:
    t = free_form_data("closed").splits["eval"][0]
    system = chat_messages(t)[0]["content"]
    assert system.endswith("\nANSWER: C") and "(D)" not in system
    target = reference_completion(t)
    assert target.endswith(f"\nANSWER: {t.answer_label}") and target.startswith("TRACE: 1. ")


def test_free_form_grading_is_an_exact_name_and_a_verified_trace() -> None:
    kg = builtin_kg(0)
    scorer = Scorer(kg, preset="kgreason")
    tasks = free_form_data("closed").splits["eval"]
    t = tasks[0]
    other = next(x for x in tasks if x.answer_id != t.answer_id)
    gold = reference_completion(t)
    trace = gold.split("\nANSWER:")[0]
    right = scorer.score(t, gold)
    assert right.correct and right.faithful and right.format_ok and right.answer == t.answer_label
    # case, emphasis and a final full stop aside, the name is the answer
    assert scorer.score(t, f"{trace}\nANSWER: **{t.answer_label.upper()}.**").correct
    assert scorer.score(t, f"{trace}\nANSWER: **{t.answer_label}**.").faithful  # found by the independent check
    assert scorer.score(t, f"{trace}\nANSWER: '{t.answer_label}'").correct
    # another entity's name, a hedge over two names, the contract of another family, a list
    wrong = [other.answer_label, f"{t.answer_label} or {other.answer_label}", f"{t.answer_label} (B)",
             ", ".join(sorted({x.answer_label for x in tasks}))]
    for answer in wrong:
        r = scorer.score(t, f"{trace}\nANSWER: {answer}")
        assert not r.correct and not r.faithful, answer
    # a prose mention of the answer is no answer line
    assert not scorer.score(t, f"{trace} So the answer is {t.answer_label}.").correct
    # the right name after a broken trace is correct but not faithful
    broken = scorer.score(t, f"TRACE: 1. nothing here.\nANSWER: {t.answer_label}")
    assert broken.correct and not broken.faithful


def test_the_free_form_reader_and_stop_rule() -> None:
    text = "TRACE: 1. A is caused by B.\nANSWER: SyncNTP"
    assert answer_line_end(text, "free_form") is None  # the name may still go on
    assert answer_line_end(text + "\n", "free_form") is not None
    assert answer_line_end(text + "\n", "multiple_choice") is None  # no letter: multiple choice waits
    assert trim_after_answer(text + "\nmore text", "free_form") == text
    assert find_answer_line("ANSWER:\nANSWER: x\n", family="free_form").entity == "x"  # an empty line is skipped
    parsed = parse_completion("no trace\nANSWER: x", family="free_form")
    assert not parsed.format_ok and parsed.answer == "x"
    assert "ANSWER: <entity>" in parse_completion("TRACE: y.", family="free_form").error


def test_task_records_round_trip_and_multiple_choice_files_keep_their_fields() -> None:
    t = free_form_data("closed").splits["eval"][0]
    d = t.to_dict()
    assert d["family"] == "free_form" and d["answer_label"] == t.answer_label
    assert Task.from_dict(json.loads(json.dumps(d))) == t
    mc = Task.from_dict({**d, "family": "multiple_choice", "answer_label": "", "options": {"A": "x"},
                         "answer_star": "A"})
    assert "family" not in mc.to_dict() and "answer_label" not in mc.to_dict()
    bad = {k: v for k, v in d.items() if k != "answer_label"}
    with pytest.raises(InputError, match="answer_label"):
        task_from_record(bad, "f.jsonl:3")
    with pytest.raises(InputError, match="f.jsonl:4: unknown task family"):
        task_from_record({**d, "family": "essay"}, "f.jsonl:4")


def test_a_file_of_mixed_families_is_refused(tmp_path) -> None:
    ff = free_form_data("closed").splits["eval"][0]
    mc = Task.from_dict({**ff.to_dict(), "family": "multiple_choice", "options": {"A": "x"}, "answer_star": "A"})
    path = tmp_path / "mixed.jsonl"
    save_tasks([ff, mc], path)
    with pytest.raises(InputError, match="mix task families"):
        family_of_tasks(load_tasks(path))


def test_the_audit_scores_free_form_rules_over_entities() -> None:
    kg = builtin_kg(0)
    data = free_form_data("closed")
    ev = data.splits["eval"]
    report = audit_tasks(kg, ev)
    assert report["oracle_accuracy"] == 1.0 and report["ill_posed"] == 0 and report["invalid_gold_path"] == 0
    assert report["chance"] == pytest.approx(1 / len(kg.entities))
    assert report["max_shortcut"] == 0.05
    hits = shortcut_hits(kg, ev, data.splits["train_easy"] + data.splits["train_hard"])
    assert {"last_relation_tail", "chain_from_other_entities", "train_answer_prior"} <= set(hits)
    # "the letter most often correct" becomes the entity most often the answer of these very items
    # (ties: the first by id): it names that entity, so it is right exactly where that is the answer
    counts: dict[str, int] = {}
    for t in ev:
        counts[t.answer_id] = counts.get(t.answer_id, 0) + 1
    common = min(counts, key=lambda e: (-counts[e], e))
    for t, hit in zip(ev, hits["most_common_letter"], strict=True):
        assert (hit == 1.0) == (t.answer_id == common)


def test_open_book_free_form_is_refused_with_the_reason() -> None:
    kg = builtin_kg(0)
    data = free_form_data("open")
    check = check_shortcuts(kg, data.splits, ["eval"])
    assert check["limit"] == 0.05 and check["family"] == "free_form"
    assert not check["passed"]
    paragraph = refusal_paragraph("builtin:devops", check)
    assert "closed book" in paragraph and "context" in " ".join(check["held_out"]["eval"]["over"])
    # an explicit limit overrides the family's
    assert check_shortcuts(kg, data.splits, ["eval"], max_shortcut=0.99)["passed"]


def test_the_independent_checker_agrees_with_the_generator_and_the_grader(tmp_path) -> None:
    """scripts/check_free_form.py shares no code with kgreason: it re-derives every claim about the
    files and re-grades gold, wrong, hedged, decorated and broken answers from the contract."""
    import subprocess
    import sys
    from pathlib import Path

    from kgreason.kg.kgjson import save_kg
    from kgreason.tasks.generate import write_dataset

    kg = builtin_kg(0)
    data = free_form_data("closed")
    write_dataset(data, tmp_path)
    save_kg(kg, tmp_path / "kg.json")
    scorer = Scorer(kg)
    labels = sorted({t.answer_label for t in data.splits["eval"]})
    with open(tmp_path / "completions_scored.jsonl", "w", encoding="utf-8") as f:
        for i, t in enumerate(data.splits["eval"]):
            trace = reference_completion(t).split("\nANSWER:")[0]
            other = labels[i % len(labels)]
            for text in (reference_completion(t), f"{trace}\nANSWER: **{t.answer_label}**.", f"{trace}\nANSWER: {other}",
                         f"{trace}\nANSWER: {t.answer_label} or {other}", f"TRACE: 1. x.\nANSWER: {t.answer_label}",
                         f"{trace}\nANSWER:\nANSWER: {t.answer_label.lower()}", f"{trace} so it is {t.answer_label}"):
                r = scorer.score(t, text)
                f.write(json.dumps({"task_id": t.id, "variant": 0, "text": text, "correct": r.correct,
                                    "faithful": r.faithful, "format_ok": r.format_ok}) + "\n")
    script = Path(__file__).resolve().parents[1] / "scripts" / "check_free_form.py"
    proc = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "FAIL" not in proc.stdout, proc.stdout[-3000:]
    assert proc.stdout.count("PASS:") == 9


def test_bench_times_generation_for_every_family_and_mode() -> None:
    from kgreason.tasks.bench import generation_seconds

    rows = generation_seconds(sizes={"eval": 6, "train_easy": 6, "train_hard": 2}, modes=("closed",))
    assert [r["family"] for r in rows] == FAMILIES.names() and all(r["mode"] == "closed" for r in rows)
    for r in rows:
        assert r["seconds"] > 0 and r["asked"] == {"eval": 6, "train_easy": 6, "train_hard": 2}
        assert 0 < r["made"]["eval"] <= 6


def test_names_that_look_like_emphasis_or_one_letter_are_graded_by_the_answer_itself() -> None:
    """Found in review: the reader strips emphasis, so "__init__" read back as "init", and a one-letter
    label is not in the matcher's index; the answer's own name is compared first."""
    from kgreason.kg.graph import Edge, Entity, KnowledgeGraph, Relation

    ents = {e: Entity(e, label) for e, label in (("s", "start"), ("m", "middle"), ("a", "__init__"),
                                                 ("c", "C"), ("lang_c", "C lang"))}
    kg = KnowledgeGraph(entities=ents, relations={"r": Relation("r", "leads to"), "q": Relation("q", "uses")},
                        edges=[Edge("s", "r", "m"), Edge("m", "q", "a"), Edge("m", "r", "c")])
    scorer = Scorer(kg)
    for answer, chain in (("a", ["r", "q"]), ("c", ["r", "r"])):
        t = Task(id="t", split="eval", hop_len=2, question="q", options={}, answer_star="",
                 path_star=PathStar(["s", "m", answer], [("s", chain[0], "m"), ("m", chain[1], answer)]),
                 prompt="p", start="s", relation_chain=chain, answer_id=answer, family="free_form",
                 answer_label=kg.label(answer))
        t.reference_trace = format_trace(kg, t.path_star.edges)
        r = scorer.score(t, reference_completion(t))
        assert r.correct and r.faithful, (answer, reference_completion(t))
        assert not scorer.score(t, reference_completion(t).replace(kg.label(answer), "middle")).correct


def test_the_diagnosis_reads_free_form_answers_as_free_form() -> None:
    from kgreason.evaluate.diagnosis import unreadable_kind

    assert unreadable_kind("ANSWER: SyncNTP", "free_form") == "no_trace"
    assert unreadable_kind("TRACE: x.\nANSWER:", "free_form") != "hedged"
    assert unreadable_kind("ANSWER: B or C") == "hedged"  # multiple choice, as before


def test_evaluation_of_free_form_items_skips_the_option_shuffle_and_states_chance() -> None:
    from kgreason.evaluate.runner import evaluate_model
    from kgreason.models import load_model

    kg = builtin_kg(0)
    tasks = free_form_data("closed").splits["eval"][:2]
    model, tokenizer = load_model("tiny:random")
    metrics = evaluate_model(model, tokenizer, tasks, kg, shuffle=True, drift=False, references=True,
                             max_new_tokens=8, batch_size=2, n_resamples=50)
    assert "shuffle" not in metrics and "offer no options" in metrics["shuffle_note"]
    assert metrics["family"] == "free_form" and metrics["chance"] == pytest.approx(1 / len(kg.entities))
    assert metrics["references"]["KG oracle"]["accuracy"]["mean"] == 1.0


def test_the_held_out_split_is_screened_against_every_graph_rule() -> None:
    """A free-form held-out split keeps only items that leave each screened rule on the graph within
    half the 5% limit of the items kept, plus one (tasks/screen.py); the held-out probes are left to
    the refusal; the training splits are not screened."""
    kg = builtin_kg(0)
    data = free_form_data("closed")
    ev, train = data.splits["eval"], data.splits["train_easy"] + data.splits["train_hard"]
    assert data.manifest["rejections"]["eval"]["shortcut_screen"] > 0
    assert data.manifest["distractors"]["eval"]["screened_to"] == 0.025
    assert [t.id for t in ev] == [f"eval-{i:05d}" for i in range(len(ev))]
    hits = shortcut_hits(kg, ev, train)
    assert {"first_relation_then_any", "random_walk_end", "train_answer_prior", "first_two_relations_then_walk",
            *HELD_OUT_PROBES} <= set(hits)
    for name, per_item in hits.items():
        if name not in HELD_OUT_PROBES:  # the probes are judged by the refusal, never screened
            assert sum(per_item) <= 0.025 * len(ev) + 1 + 1e-9, name
    # unscreened, the same graph's 4-5 hop items are answered far more often by a walk from the start
    raw = shortcut_hits(kg, unscreened_closed_data().splits["eval"], train)
    assert max(sum(h) / len(h) for h in raw.values()) > 0.05


def test_the_open_book_hint_is_only_given_for_open_book_data() -> None:
    kg = builtin_kg(0)
    closed = check_shortcuts(kg, unscreened_closed_data().splits, ["eval"])  # unscreened: over the limit
    assert closed["mode"] == "closed" and not closed["passed"]  # refused
    assert "closed book (--mode closed)" not in refusal_paragraph("builtin:devops", closed)


def test_an_independent_checker_reads_the_same_shortcut_rates_off_the_screened_files(tmp_path) -> None:
    """scripts/check_free_form_shortcuts.py (standard library only, written apart from kgreason)
    re-derives seven rules from kg.json and the task files; its rates must be the audit's, and
    within the screen's budget."""
    import subprocess
    import sys
    from pathlib import Path

    from kgreason.kg.kgjson import save_kg
    from kgreason.tasks.generate import write_dataset

    kg = builtin_kg(0)
    data = free_form_data("closed")
    write_dataset(data, tmp_path)
    save_kg(kg, tmp_path / "kg.json")
    script = Path(__file__).resolve().parents[1] / "scripts" / "check_free_form_shortcuts.py"
    proc = subprocess.run([sys.executable, str(script), "--kg", str(tmp_path / "kg.json"), "--data", str(tmp_path),
                           "--json", "--n-boot", "200"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["well_posedness"]["failures"] == 0
    ev = data.splits["eval"]
    ours = shortcut_hits(kg, ev, data.splits["train_easy"] + data.splits["train_hard"])
    same_rule = {"random_walk_end": "random_walk_end", "reachable_any_relations": "reachable_in_k_hops",
                 "first_relation_then_any": "first_relation_then_any",
                 "chain_from_other_entities": "chain_from_other_entities",
                 "train_answer_prior": "train_answer_prior", "max_in_degree": "max_in_degree"}
    theirs = {r["rule"]: r["mean_pct"] for r in report["results"]}
    # its seventh rule, the eval answer most common among each item's candidates, knows the held-out
    # answers (kgreason's most_common_letter names one entity for every item): no rule of ours
    assert set(theirs) == {*same_rule, "most_common_answer_in_eval"}
    for rule, name in same_rule.items():
        mine = 100 * sum(ours.get(name, [0.0])) / len(ev)
        assert theirs[rule] == pytest.approx(mine, abs=1e-3), rule
        assert theirs[rule] <= 100 * (0.025 + 1 / len(ev)) + 1e-9, rule


def test_a_screened_data_folder_is_not_reused_under_another_limit(tmp_path) -> None:
    """The held-out split was kept to half of the limit it was made with (tasks/screen.py): a rerun
    with another --max-shortcut must not judge those items as if screened for the new one."""
    from kgreason.tasks.build import build_data_folder
    from kgreason.tasks.defaults import DataOptions

    opts = DataOptions(family="free_form", mode="closed", eval_size=40, train_easy=40, train_hard=10,
                       allow_shortcuts=True)
    build_data_folder(tmp_path / "data", opts)
    assert "screened_to" in json.loads((tmp_path / "data" / "manifest.json").read_text())["distractors"]["eval"]
    assert build_data_folder(tmp_path / "data", opts)["reused"]
    with pytest.raises(InputError, match="screened for --max-shortcut None"):
        build_data_folder(tmp_path / "data", replace(opts, max_shortcut=0.2))
