"""What each view shows, assembled from the run folders (read-only; no torch imported here).

Every function takes names that `RunsFolder` has listed and returns JSON-ready dicts. Records are
read defensively: a run written by an older or newer kgreason, or still being written, shows what
it has and says what is missing instead of failing the page.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kgreason.phases import phase_order, training_phases
from kgreason.serve.store import (
    BadRequest,
    FileCache,
    IndexRegistry,
    KeyedIndex,
    NotFound,
    RunsFolder,
    read_json_file,
)

if TYPE_CHECKING:
    from kgreason.kg.graph import KnowledgeGraph
    from kgreason.records import Task

HOW_TO_MAKE_A_RUN = (
    "No runs yet. Make one with `kgreason run` (the full pipeline on the bundled model), "
    "then reload this page; `kgreason serve --runs DIR` points the demo at another folder."
)
NEIGHBOUR_CAP = 8  # per entity, so a hub does not flood the drawing


def pipeline_order(names: list[str]) -> list[str]:
    """Phases in the order the pipeline makes them (base, sft, rsft, grpo; `base_eval` and
    `sft_eval` count as their phase), anything else after them alphabetically. Folders list
    alphabetically, which put rsft before sft."""

    order = phase_order()  # the order `kgreason run` makes its phases in (kgreason/phases.py)

    def key(name: str) -> tuple[int, str]:
        stem = name.removesuffix("_eval").removeprefix("eval_")
        return (order.index(stem) if stem in order else len(order), name)

    return sorted(names, key=key)


class Demo:
    """The data behind every view, over one runs folder."""

    def __init__(self, runs: RunsFolder) -> None:
        self.runs = runs
        self.files = FileCache(capacity=128)
        self.indexes = IndexRegistry()
        self._kgs: OrderedDict[tuple[Path, int, int], KnowledgeGraph] = OrderedDict()
        self._kg_lock = threading.Lock()
        self._scorers: dict[tuple[int, str], tuple[Any, Any]] = {}

    # --- runs ------------------------------------------------------------------------------------
    def json(self, path: Path) -> Any:
        return self.files.get("json", path, read_json_file)

    def list_runs(self) -> dict:
        """Runs newest first, each tagged with the experiment it is an arm of, and `default`: the
        run the page opens first, the newest one that has a KG and task files, preferring runs of
        their own over experiment arms (an arm may have no KG of its own)."""
        listing = self.runs.listing(fresh=True)
        exp_names = sorted(listing.experiments, key=len, reverse=True)  # the innermost folder wins
        runs = []
        for name, path in listing.runs.items():
            card = self.run_card(name, path)
            card["experiment"] = next((e for e in exp_names if name.startswith(e + "/")), None)
            runs.append(card)
        runs.sort(key=lambda r: r["name"])
        runs.sort(key=lambda r: r["created"] or "", reverse=True)
        exps = []
        for n, p in listing.experiments.items():
            results = self.json(p / "results.json")
            created = results.get("generated") if isinstance(results, dict) else None
            exps.append({"name": n, "title": _experiment_title(n, results),
                         "created": created if isinstance(created, str) else _mtime_iso(p / "results.json")})
        exps.sort(key=lambda e: e["name"])
        exps.sort(key=lambda e: e["created"] or "", reverse=True)
        real = [r for r in runs if r["has_kg"] and r["has_tasks"]]
        default = next((r for r in real if r["experiment"] is None), real[0] if real else (runs[0] if runs else None))
        out: dict[str, Any] = {"runs_dir": str(self.runs.root), "runs": runs, "experiments": exps,
                               "default": default["name"] if default else None}
        if not runs and not exps:
            out["hint"] = HOW_TO_MAKE_A_RUN
        return out

    def run_card(self, name: str, path: Path) -> dict:
        config = self.json(path / "config.json") or {}
        summary = self.json(path / "summary.json") or {}
        phases = summary.get("phases") if isinstance(summary.get("phases"), dict) else {}
        created = config.get("created")
        return {
            "name": name,
            "model": _model_ref(config),
            # config.json's own stamp; a folder written by something else gets its file's time
            "created": created if isinstance(created, str) else _mtime_iso(path / "config.json"),
            "updated": summary.get("updated") if isinstance(summary.get("updated"), str) else None,
            "has_kg": (self.data_dir(path) / "kg.json").is_file(),
            "has_tasks": bool(self.task_files(path)),
            "phases": [{"phase": p, **_phase_brief(info)} for p, info in phases.items()],
            "evals": self.eval_headlines(path),
            # what went wrong (evaluate/diagnosis.py), so the list flags a run whose table is no result
            "problems": self.problems(path),
        }

    def problems(self, path: Path) -> list[dict]:
        head = self.headline(path)
        diagnosis = head.get("diagnosis") if isinstance(head, dict) else None
        return list(diagnosis["problems"]) if isinstance(diagnosis, dict) else []

    def eval_headlines(self, path: Path) -> list[dict]:
        """Per evaluation phase (pipeline order): accuracy with its interval, the KG oracle and the
        strongest shortcut baseline on the same items, and how often each letter was answered.
        A model that answers "A" most of the time can match a shortcut baseline: the bare accuracy
        hides that, so every view that shows an accuracy shows these beside it."""
        out = []
        for phase in pipeline_order(self.runs.subfolders(path, "eval")):
            metrics = self.json(self.runs.inside(path, "eval", phase, "metrics.json"))
            metrics = metrics if isinstance(metrics, dict) else {}
            preds = self.runs.inside(path, "eval", phase, "predictions.jsonl")
            out.append({
                "phase": phase,
                "accuracy": share(metrics.get("accuracy")),
                # base's 0% is all unreadable answers: the accuracy alone does not say so
                "format_failure": share(metrics.get("format_failure_rate")),
                **references_brief(metrics.get("references")),
                "letters": self.files.get("letters", preds, letter_counts) if preds.is_file() else None,
            })
        return out

    def run_detail(self, name: str) -> dict:
        path = self.runs.run_dir(name)
        card = self.run_card(name, path)
        return {
            **card,
            "config": self.json(path / "config.json"),
            "summary": self.json(path / "summary.json"),
            "task_files": self.task_files(path),
            "adapters": self.adapters(path),
            "eval_phases": pipeline_order(self.runs.subfolders(path, "eval")),
            "has_episodes": (path / "episodes.jsonl").is_file(),
            "has_kg": (self.data_dir(path) / "kg.json").is_file(),
            "report_html": self.report_html(path / "report.md", None),
            "headline": self.headline(path),
        }

    def headline(self, path: Path) -> dict | None:
        """The run's headline (evaluate/headline.py: the sentence `kgreason run` prints last and
        report.md starts with, and its figures), rebuilt when summary.json or eval/ changes."""
        from kgreason.evaluate.headline import run_headline

        eval_root = path / "eval"
        if not eval_root.is_dir():
            return None
        # rebuilt when any evaluation's files change: a folder's own time does not move when a file
        # inside one of its subfolders is rewritten (an eval re-run with `kgreason eval --out`)
        stamps = [(f.stat().st_mtime_ns, f.stat().st_size) for f in sorted(eval_root.glob("*/*"))
                  if f.name in ("metrics.json", "predictions.jsonl")]
        # the diagnosis reads RSFT's rounds and the phases' warnings from summary.json
        summary = path / "summary.json"
        stamps += [(summary.stat().st_mtime_ns, summary.stat().st_size)] if summary.is_file() else []
        key = eval_root
        def build(_: Path) -> dict | None:
            try:
                return run_headline(path, data_dir=self.data_dir(path)).to_dict()
            except Exception:  # a malformed eval file: the rest of the page still shows, the log says why
                import logging

                logging.getLogger("kgreason.serve").exception("no headline for %s", path.name)
                return None

        return self.files.get(f"headline {hash(tuple(stamps))}", key, build)

    def report_html(self, path: Path, image_url: Any) -> str | None:
        """A report.md rendered to safe HTML (serve.report), or None when there is none."""
        if not path.is_file():
            return None
        from kgreason.serve.report import render_markdown

        text = path.read_text(encoding="utf-8", errors="replace")
        return render_markdown(text, image_url)

    def adapters(self, path: Path) -> list[str]:
        return pipeline_order([p for p in self.runs.subfolders(path, "adapters")
                               if self.runs.inside(path, "adapters", p, "adapter_config.json").is_file()])

    def data_dir(self, path: Path) -> Path:
        """A run's data folder. An experiment arm has none of its own: the arms of an experiment
        share one data stage, in the experiment's folder, so an arm's KG and task files are read
        from there (before, arms showed a Graph error and an empty Try It list)."""
        own = self.runs.inside(path, "data")
        if own.is_dir():
            return own
        for parent in path.parents:
            if not self.runs.contains(parent):
                break
            if (parent / "results.json").is_file() or (parent / "experiment.json").is_file():
                shared = self.runs.inside(parent, "data")
                if shared.is_dir():
                    return shared
        return own

    # --- tasks -----------------------------------------------------------------------------------
    def task_files(self, path: Path) -> list[str]:
        data = self.data_dir(path)
        if not data.is_dir():
            return []
        return sorted(p.stem for p in data.glob("*.jsonl") if p.is_file() and p.stem != "facts")

    def task_index(self, path: Path, file: str) -> KeyedIndex:
        if file not in self.task_files(path):
            raise NotFound(f"no task file {file!r} in this run; it has: {', '.join(self.task_files(path)) or 'none'}")
        return self.indexes.keyed("tasks", self.runs.inside(self.data_dir(path), f"{file}.jsonl"))

    def find_task(self, path: Path, task_id: str) -> dict | None:
        # eval first: Try It and Inference look up eval items most
        files = sorted(self.task_files(path), key=lambda f: (not f.startswith("eval"), f))
        for file in files:
            rec = self.task_index(path, file).get(task_id)
            if rec is not None:
                return rec
        return None

    def list_tasks(self, name: str, file: str, offset: int, limit: int, hop: int | None) -> dict:
        path = self.runs.run_dir(name)
        idx = self.task_index(path, file)
        rows = [r for r in idx.rows if hop is None or r.hop == hop]
        page = rows[offset: offset + limit]
        items = [_task_brief(rec) for rec in (idx.read(r) for r in page) if rec is not None]
        hops = sorted({r.hop for r in idx.rows})
        return {"file": file, "total": len(rows), "offset": offset, "hops": hops, "items": items}

    # --- knowledge graph -------------------------------------------------------------------------
    def kg(self, name: str) -> KnowledgeGraph:
        path = self.runs.inside(self.data_dir(self.runs.run_dir(name)), "kg.json")
        if not path.is_file():
            raise NotFound(f"run {name!r} has no data/kg.json")
        st = path.stat()
        key = (path, st.st_mtime_ns, st.st_size)
        with self._kg_lock:
            if key in self._kgs:
                self._kgs.move_to_end(key)
                return self._kgs[key]
        from kgreason.kg.kgjson import load_kg

        kg = load_kg(path)
        with self._kg_lock:
            self._kgs[key] = kg
            while len(self._kgs) > 4:
                self._kgs.popitem(last=False)
        return kg

    def kg_info(self, name: str) -> dict:
        kg = self.kg(name)
        types: dict[str, int] = {}
        for e in kg.entities.values():
            types[e.type or "untyped"] = types.get(e.type or "untyped", 0) + 1
        return {
            "name": kg.name,
            "entities": len(kg.entities),
            "edges": len(kg.edges),
            "relations": [{"id": r.id, "phrase": r.phrase} for r in kg.relations.values()],
            "types": types,
        }

    def search_entities(self, name: str, query: str, limit: int) -> dict:
        kg = self.kg(name)
        q = query.strip().lower()
        scored: list[tuple[int, int, str]] = []
        for e in kg.entities.values():
            names = [n.lower() for n in e.names()]
            if any(n == q for n in names):
                rank = 0
            elif any(n.startswith(q) for n in names):
                rank = 1
            elif any(q in n for n in names):
                rank = 2
            else:
                continue
            scored.append((rank, -kg.degree(e.id), e.id))
        scored.sort()
        return {"query": query, "total": len(scored),
                "items": [_entity_dict(kg, eid) for _, _, eid in scored[:limit]]}

    def neighbourhood(self, name: str, entity: str, limit: int) -> dict:
        kg = self.kg(name)
        if entity not in kg.entities:
            raise NotFound(f"unknown entity {entity!r} in the KG of run {name!r}")
        out = [{"src": entity, "rel": r, "dst": t} for r, ts in kg.out_relations(entity).items() for t in ts]
        inc = [{"src": h, "rel": r, "dst": entity} for r, hs in kg.in_relations(entity).items() for h in hs]
        edges = (out + inc)[:limit]
        nodes = {entity} | {e["src"] for e in edges} | {e["dst"] for e in edges}
        return {
            "entity": _entity_dict(kg, entity),
            "out": len(out),
            "in": len(inc),
            "truncated": len(out) + len(inc) > limit,
            "nodes": [_entity_dict(kg, n) for n in sorted(nodes)],
            "edges": edges,
            "phrases": {r.id: r.phrase for r in kg.relations.values()},
            "inverse": {r.id: r.inverse_phrase for r in kg.relations.values() if r.inverse_phrase},
        }

    def path_graph(self, name: str, task: dict, extra_hops: list[dict]) -> dict:
        """The gold path, its one-hop neighbourhood (capped) and every entity a trace claimed."""
        try:
            kg = self.kg(name)
        except NotFound:
            return {"nodes": [], "edges": [], "missing": "this run has no data/kg.json"}
        path_star = task.get("path_star") or {}
        gold_nodes = [str(x) for x in path_star.get("entities", []) or []]
        gold_edges = [_edge(e) for e in path_star.get("edges", []) or []]
        gold_set = {(e["src"], e["rel"], e["dst"]) for e in gold_edges if e}
        edges: dict[tuple[str, str, str], dict] = {k: {"src": k[0], "rel": k[1], "dst": k[2], "gold": True}
                                                    for k in gold_set}
        for ent in gold_nodes:
            if ent not in kg.entities:
                continue
            near = [(ent, r, t) for r, ts in kg.out_relations(ent).items() for t in ts]
            near += [(h, r, ent) for r, hs in kg.in_relations(ent).items() for h in hs]
            for key in near[:NEIGHBOUR_CAP]:
                edges.setdefault(key, {"src": key[0], "rel": key[1], "dst": key[2], "gold": False})
        nodes = {n for e in edges.values() for n in (e["src"], e["dst"])} | set(gold_nodes)
        for hop in extra_hops:
            nodes.update(str(hop.get(k)) for k in ("head", "tail") if hop.get(k))
        options = {str(v) for v in (task.get("option_ids") or {}).values()}
        return {
            "nodes": [{**_entity_dict(kg, n), "gold": n in gold_nodes, "option": n in options} for n in sorted(nodes)],
            "edges": list(edges.values()),
            "start": gold_nodes[0] if gold_nodes else task.get("start"),
            "answer": gold_nodes[-1] if gold_nodes else task.get("answer_id"),
            "phrases": {r.id: r.phrase for r in kg.relations.values()},
        }

    # --- training replay -------------------------------------------------------------------------
    def episode_groups(self, name: str, phase: str | None, offset: int, limit: int) -> dict:
        path = self.runs.run_dir(name)
        idx = self.indexes.episodes(self.runs.inside(path, "episodes.jsonl"))
        groups = idx.groups if phase is None else [g for g in idx.groups if g.phase == phase]
        page = groups[offset: offset + limit]
        items = []
        for g in page:
            rows = [idx.rows[i] for i in g.rows]
            items.append({
                "phase": g.phase, "round": g.round, "step": g.step, "task_id": g.task_id, "k": len(rows),
                "mean_reward": sum(r.total for r in rows) / len(rows),
                "best_reward": max(r.total for r in rows),
                "correct": sum(r.correct for r in rows), "faithful": sum(r.faithful for r in rows),
                "kept": sum(r.kept for r in rows),
            })
        return {"total": len(groups), "offset": offset, "phases": idx.phases(), "bad_lines": idx.bad_lines,
                "items": items}

    def episode_group(self, name: str, phase: str, round: int, step: int, task_id: str) -> dict:
        path = self.runs.run_dir(name)
        idx = self.indexes.episodes(self.runs.inside(path, "episodes.jsonl"))
        group = idx.find_group(phase, round, step, task_id)
        if group is None:
            raise NotFound(f"no episodes for task {task_id!r} at phase {phase!r}, round {round}, step {step}")
        episodes = []
        for i in group.rows[:256]:
            rec = idx.read(idx.rows[i])
            if rec is None:
                continue
            episodes.append({
                "sample_index": rec.get("sample_index", 0), "completion": rec.get("completion", ""),
                "kept": bool(rec.get("kept", False)), "reward": rec.get("reward") or {},
            })
        episodes.sort(key=lambda e: -float((e["reward"] or {}).get("total", 0) or 0))
        task = self.find_task(path, task_id) or {"id": task_id, "missing": "task not found in data/*.jsonl"}
        hops = [h for e in episodes for h in (e["reward"] or {}).get("claimed_hops", []) or []]
        return {"task": task, "episodes": episodes, "graph": self.path_graph(name, task, hops)}

    def curves(self, name: str) -> dict:
        path = self.runs.run_dir(name)
        metrics: dict[str, dict[str, list[list[float]]]] = {}
        mpath = self.runs.inside(path, "metrics.jsonl")
        if mpath.is_file():
            metrics = self.files.get("metrics", mpath, _metric_series)
        eps = self.runs.inside(path, "episodes.jsonl")
        from_episodes = self.indexes.episodes(eps).curves() if eps.is_file() else {}
        # held-out evaluations are one point per phase on another scale: kept apart from the
        # training series so no chart mixes them
        train = {p: m for p, m in metrics.items() if not _is_eval_phase(p)}
        evals = {p: m for p, m in metrics.items() if _is_eval_phase(p)}
        return {"metrics": train, "eval_metrics": evals,
                "phase_order": list(training_phases()),  # the Training view's chart order (kgreason/phases.py)
                "episodes": {p: c for p, c in from_episodes.items() if not _is_eval_phase(p)},
                "eval_episodes": {p: c for p, c in from_episodes.items() if _is_eval_phase(p)}}

    # --- inference replay ------------------------------------------------------------------------
    def eval_phases(self, name: str) -> list[dict]:
        path = self.runs.run_dir(name)
        out = []
        for phase in pipeline_order(self.runs.subfolders(path, "eval")):
            metrics = self.json(self.runs.inside(path, "eval", phase, "metrics.json"))
            has_preds = self.runs.inside(path, "eval", phase, "predictions.jsonl").is_file()
            out.append({"phase": phase, "metrics": _shares(metrics) if isinstance(metrics, dict) else metrics,
                        "has_predictions": has_preds})
        headlines = {h["phase"]: h for h in self.eval_headlines(path)}
        for row in out:
            head = headlines.get(row["phase"], {})
            row.update({k: head.get(k) for k in ("oracle", "strongest_shortcut", "shortcuts", "letters")})
        return out

    def predictions(self, name: str, phase: str) -> KeyedIndex:
        path = self.runs.run_dir(name)
        if phase not in self.runs.subfolders(path, "eval"):
            raise NotFound(f"run {name!r} has no eval/{phase}")
        preds = self.runs.inside(path, "eval", phase, "predictions.jsonl")
        if not preds.is_file():
            raise NotFound(f"run {name!r}: eval/{phase} has no predictions.jsonl")
        return self.indexes.keyed("predictions", preds)

    def inference_items(self, columns: list[tuple[str, str]], offset: int, limit: int, hop: int | None) -> dict:
        if not columns:
            raise BadRequest("choose at least one (run, phase) column")
        indexes = [self.predictions(run, phase) for run, phase in columns]
        first_run = self.runs.run_dir(columns[0][0])
        order: list[str] = []
        seen: set[str] = set()
        for idx in indexes:
            for r in idx.rows:
                if r.key not in seen:
                    seen.add(r.key)
                    order.append(r.key)
        tasks_by_id: dict[str, dict] = {}
        if hop is not None:
            keep = []
            for tid in order:
                task = self.find_task(first_run, tid)
                if task is not None and int(task.get("hop_len", 0)) == hop:
                    keep.append(tid)
                    tasks_by_id[tid] = task
            order = keep
        items = []
        for tid in order[offset: offset + limit]:
            task = tasks_by_id.get(tid) or self.find_task(first_run, tid) or {"id": tid}
            answers = []
            for idx in indexes:
                rec = idx.get(tid)
                answers.append(_answer(rec) if rec is not None else None)
            items.append({"task": _task_brief(task), "answers": answers})
        return {"columns": [{"run": r, "phase": p} for r, p in columns], "total": len(order),
                "offset": offset, "items": items, **self._names(columns[0][0], items)}

    def _names(self, name: str, items: list[dict]) -> dict:
        """Labels of the entities that claimed hops name, and relation phrases, so hops read as text."""
        try:
            kg = self.kg(name)
        except NotFound:
            return {"labels": {}, "phrases": {}}
        ids = {str(h.get(k)) for it in items for a in it["answers"] if a for h in a["claimed_hops"]
               for k in ("head", "tail") if h.get(k)}
        return {"labels": {i: kg.entities[i].label for i in ids if i in kg.entities},
                "phrases": {r.id: r.phrase for r in kg.relations.values()}}

    # --- experiments (any grid) ------------------------------------------------------------------
    def experiment(self, name: str) -> dict:
        path = self.runs.experiment_dir(name)
        results = self.json(path / "results.json")
        report = path / "report.md"
        from urllib.parse import urlencode

        def image_url(file: str) -> str | None:
            if not self.runs.inside(path, file).is_file():
                return None
            return "/api/experiment/file?" + urlencode({"name": name, "file": file})

        return {
            "name": name,
            "results": results,
            **references_brief(results.get("references") if isinstance(results, dict) else None),
            "report": report.read_text(encoding="utf-8", errors="replace")[:200_000] if report.is_file() else None,
            "report_html": self.report_html(report, image_url),
            "answers": _experiment_answers(results),
        }

    def experiment_file(self, name: str, file: str) -> Path:
        """A PNG plot of an experiment folder (the report's images); nothing else is served."""
        from kgreason.serve.report import LOCAL_PNG

        if not LOCAL_PNG.match(file):
            raise BadRequest(f"not a plot file name: {file[:80]!r}")
        path = self.runs.inside(self.runs.experiment_dir(name), file)
        if not path.is_file():
            raise NotFound(f"experiment {name!r} has no {file}")
        return path

    # --- try it ----------------------------------------------------------------------------------
    def models(self, name: str) -> list[dict]:
        path = self.runs.run_dir(name)
        config = self.json(path / "config.json") or {}
        ref = _model_ref(config)
        out = [{"id": "base", "label": f"base ({ref})" if ref else "base", "ref": ref, "adapter": None}] if ref else []
        for phase in self.adapters(path):
            out.append({"id": phase, "label": f"{phase} adapter", "ref": ref,
                        "adapter": str(self.runs.inside(path, "adapters", phase))})
        return out

    def task_record(self, name: str, task_id: str) -> Task:
        from kgreason.records import Task

        rec = self.find_task(self.runs.run_dir(name), task_id)
        if rec is None:
            raise NotFound(f"no task {task_id!r} in run {name!r}")
        return Task.from_dict(rec)

    def compose(self, name: str, start: str, chain: list[str], seed: int) -> Task:
        """A new well-posed item from a start entity and a relation chain (tasks.generate decides)."""
        import random

        from kgreason.tasks.generate import make_task

        kg = self.kg(name)
        if start not in kg.entities:
            raise BadRequest(f"unknown start entity {start!r}")
        unknown = [r for r in chain if r not in kg.relations]
        if unknown:
            raise BadRequest(f"unknown relation(s) {unknown}; this KG has: {', '.join(kg.relations)}")
        reasons: list[str] = []
        task = make_task(kg, start, chain, random.Random(seed), task_id=f"custom-{seed}", reasons=reasons,
                         family=self.family(name))
        if task is None:
            why = reasons[0] if reasons else "no well-posed item"
            raise BadRequest(f"cannot make a well-posed question from {start!r} along {chain}: {why}")
        return task

    def scorer(self, name: str) -> Any:
        """The run's reward Scorer, built once per (graph, preset): its matcher is costly to build."""
        from kgreason.reward import Scorer

        kg, preset = self.kg(name), self.reward_preset(name)
        key = (id(kg), preset)
        with self._kg_lock:
            hit = self._scorers.get(key)
            if hit is not None and hit[0] is kg:
                return hit[1]
        scorer = Scorer(kg, preset=preset)
        with self._kg_lock:
            self._scorers[key] = (kg, scorer)
            while len(self._scorers) > 4:
                self._scorers.pop(next(iter(self._scorers)))
        return scorer

    def family(self, name: str) -> str:
        """The task family the run's data was written in (its manifest's config; multiple choice when
        it names none), so Try It asks the kind of question the model was trained on."""
        from kgreason.families import DEFAULT_FAMILY

        manifest = self.json(self.runs.run_dir(name) / "data" / "manifest.json") or {}
        config = manifest.get("config") if isinstance(manifest, dict) else None
        family = config.get("family") if isinstance(config, dict) else None
        return family if isinstance(family, str) and family else DEFAULT_FAMILY

    def reward_preset(self, name: str) -> str:
        """The preset the run itself scored with, so Try It scores answers the way the run did."""
        from kgreason.runs.folder import reward_preset_of

        return reward_preset_of(self.json(self.runs.run_dir(name) / "config.json") or {})


# --- helpers -------------------------------------------------------------------------------------
def _is_eval_phase(phase: str) -> bool:
    phase = phase.split(" round ")[0]
    return phase == "eval" or phase.endswith("_eval") or phase.startswith("eval_")


def share(iv: Any) -> Any:
    """A stored share interval as the page shows it (kgreason.stats.share_record: files written
    before the Wilson interval hold bootstrap ones collapsed to [0, 0] / [1, 1] at the edges)."""
    from kgreason.stats import share_record

    return share_record(iv)


def _shares(metrics: dict) -> dict:
    """An evaluation's metrics.json with its share intervals (accuracy, by hop) made right at the edges."""
    out = dict(metrics)
    out["accuracy"] = share(metrics.get("accuracy"))
    if isinstance(metrics.get("by_hop"), dict):
        out["by_hop"] = {h: share(iv) for h, iv in metrics["by_hop"].items()}
    return out


def references_brief(refs: Any) -> dict:
    """From an evaluation's `references` ({"KG oracle": ..., "shortcut: <name>": ...}, as
    evaluate.runner writes them): the oracle and the strongest shortcut by mean accuracy."""
    from kgreason.evaluate.references import oracle_row, shortcut_rows, strongest_shortcut

    def by_hop(row: dict) -> Any:
        hops = row.get("by_hop")
        return {h: share(iv) for h, iv in hops.items()} if isinstance(hops, dict) else hops

    oracle, best = oracle_row(refs), strongest_shortcut(refs)
    return {
        "oracle": share(oracle.get("accuracy")) if oracle is not None else None,
        "oracle_by_hop": by_hop(oracle) if oracle is not None else None,
        "strongest_shortcut": ({"name": best[0], "accuracy": share(best[1].get("accuracy")), "by_hop": by_hop(best[1])}
                               if best else None),
        "shortcuts": len(shortcut_rows(refs)),
    }


def _experiment_answers(results: Any) -> list[str]:
    """The experiment's answer sentences (experiments/report.py), markdown emphasis removed: the
    page shows them as text."""
    if not isinstance(results, dict) or not isinstance(results.get("arms"), list):
        return []
    from kgreason.experiments.report import answer_sentences

    try:
        return [line.replace("**", "") for line in answer_sentences(results)]
    except Exception:  # noqa: BLE001 - a results.json of another layout: the view and its report still show
        return []


def _json_objects(path: Path) -> Iterator[dict]:
    """The JSON objects of a JSONL file, skipping lines that are not one (a torn or foreign line
    must not take a view down)."""
    import json

    with path.open("rb") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
            if isinstance(rec, dict):
                yield rec


def letter_counts(path: Path) -> dict:
    """How often each answer letter was chosen in a predictions.jsonl ("none": no parseable answer;
    "name": a free-form answer, which names an entity and has no letter to lean on)."""
    counts: dict[str, int] = {}
    for rec in _json_objects(path):
        reward = rec.get("reward") if isinstance(rec.get("reward"), dict) else {}
        letter = reward.get("answer", rec.get("answer"))
        if isinstance(letter, str) and len(letter) == 1:
            key = letter.upper()
        else:
            key = "name" if isinstance(letter, str) and letter else "none"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (kv[0] in ("name", "none"), kv[0])))


def _mtime_iso(path: Path) -> str | None:
    import datetime as dt

    try:
        stamp = path.stat().st_mtime
    except OSError:
        return None
    return dt.datetime.fromtimestamp(stamp, dt.timezone.utc).isoformat(timespec="seconds")


def _experiment_title(name: str, results: Any) -> str:
    if not isinstance(results, dict):
        return f"{name} (results.json unreadable)"
    scale = results.get("scale") or results.get("preset")  # "preset": results.json before experiment scales
    return f"{name} ({results.get('experiment', 'experiment')}, {scale} scale)" if scale else name


def _model_ref(config: dict) -> str | None:
    """The base model a run trained, read through the typed RunConfig every writer uses."""
    from kgreason.config import RunConfig
    from kgreason.io import InputError

    try:
        cfg = RunConfig.from_json(config)
    except InputError:
        return None
    return cfg.model_ref or (cfg.pipeline.model if cfg.pipeline is not None else None)


def _phase_brief(info: Any) -> dict:
    if not isinstance(info, dict):
        return {}
    out: dict[str, Any] = {"done": bool(info.get("done", False))}
    acc = info.get("accuracy")
    if isinstance(acc, dict):
        out["accuracy"] = acc.get("mean")
    elif isinstance(acc, (int, float)):
        out["accuracy"] = acc
    for key in ("wall_seconds", "mean_reward", "faithful_share"):
        if isinstance(info.get(key), (int, float)):
            out[key] = info[key]
    return out


def _entity_dict(kg: KnowledgeGraph, eid: str) -> dict:
    e = kg.entities.get(eid)
    if e is None:
        return {"id": eid, "label": eid, "type": None, "unknown": True}
    return {"id": e.id, "label": e.label, "type": e.type, "degree": kg.degree(e.id)}


def _edge(e: Any) -> dict:
    if isinstance(e, dict):
        return {"src": str(e.get("src")), "rel": str(e.get("rel")), "dst": str(e.get("dst"))}
    h, r, t = e
    return {"src": str(h), "rel": str(r), "dst": str(t)}


def _task_brief(task: dict) -> dict:
    keys = ("id", "split", "hop_len", "question", "options", "answer_star", "start", "relation_chain",
            "option_ids", "answer_id", "path_star", "reference_trace", "family", "answer_label")
    return {k: task.get(k) for k in keys if k in task}


def _answer(rec: dict) -> dict:
    reward = rec.get("reward") if isinstance(rec.get("reward"), dict) else {}
    return {
        "completion": rec.get("completion", rec.get("text", "")),
        "answer": reward.get("answer", rec.get("answer")),
        "correct": bool(reward.get("correct", rec.get("correct", False))),
        "faithful": bool(reward.get("faithful", rec.get("faithful", False))),
        "total": reward.get("total"),
        "claimed_hops": reward.get("claimed_hops", []) or [],
    }


def _metric_series(path: Path) -> dict[str, dict[str, list[list[float]]]]:
    """phase -> metric name -> [[step, value], ...] for every numeric field of metrics.jsonl."""
    out: dict[str, dict[str, list[list[float]]]] = {}
    skip = {"step", "round", "time", "epoch"}
    records: list[tuple[str, Any, dict]] = []
    rounds: dict[str, set] = {}
    for rec in _json_objects(path):
        phase = str(rec.get("phase", ""))
        records.append((phase, rec.get("round"), rec))
        rounds.setdefault(phase, set()).add(rec.get("round"))
    for phase, rnd, rec in records:
        # RSFT restarts its step count every round: one series per round, or the line would
        # jump back from the end of a round to the start of the next
        name = f"{phase} round {rnd}" if len(rounds[phase]) > 1 else phase
        if "pass_rate" in rec and "hop_len" in rec:  # RSFT's per-question sampling record, not a step's
            name += " sampling"
        step = rec.get("step", 0)
        for key, val in rec.items():
            if key in skip or isinstance(val, bool) or not isinstance(val, (int, float)):
                continue
            out.setdefault(name, {}).setdefault(key, []).append([step, val])
    for series in out.values():
        for key, pts in series.items():
            if len(pts) > 1000:  # keep the page light: every n-th point, always the last
                stride = len(pts) // 1000 + 1
                series[key] = pts[::stride] + ([pts[-1]] if (len(pts) - 1) % stride else [])
    return out
