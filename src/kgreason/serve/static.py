"""`kgreason serve --export DIR` (= `kgreason export demo`): the demo's replay views as static files.

The front end (web/app.js) asks the JSON API for everything it shows. Here every request the
Runs, Training, Inference, Experiments and Graph views can make over a runs folder is answered
once, by the same `Demo` methods the server calls, and written to `DIR/data/<n>.js`; the page is
the same index.html and app.js with a `data/index.js` that sets `window.KGREASON_STATIC`, which
makes app.js's `api()` read those files instead of the network. Try It needs a model server and
shows itself as unavailable.

Why JavaScript files and not JSON: a page opened from file:// may not fetch() files (Chromium
refuses it), but it may load <script> tags; each data file stores its answer in a global. A
static host serves the same files. Each answer is its own file, loaded when a view asks, so the
page does not read the whole copy up front.

A request is identified by its path and its query parameters in the order app.js writes them,
sorted by name only (repeated `col` parameters keep their order: it is the column order), the
same key app.js's `staticKey` computes. Entity search is answered in the browser from one list of
entities per run (`/static/entities`), ranked as `Demo.search_entities` ranks them; an inference
comparison of fewer phases is cut from the all-phases pages (`/static/inference-columns`).

What is capped (so a big run folder stays a reasonable copy): the episode groups whose samples
can be opened (`max_groups` per run, the first pages of each phase first) and the KG entities
whose neighbourhood can be opened (`max_entities` per run). Anything else the page asks for is
answered "not in this static copy".
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kgreason.io import InputError, staged_dir

EXPORT_MARK = "kgreason_static.json"
TRAIN_PAGE = 25  # app.js S.train.limit
INF_PAGE = 5  # app.js S.inf.limit
ENTITY_LIMIT = 80  # app.js openEntity
FIRST_SEARCH = {"q": "a", "limit": "1"}  # app.js showGraph's first entity


def request_key(path: str, params: list[tuple[str, Any]] | None = None) -> str:
    """The key app.js's staticKey() computes for the same request."""
    pairs = [[k, str(v)] for k, v in (params or []) if v is not None and v != ""]
    pairs.sort(key=lambda kv: kv[0])  # stable: repeated names keep their order
    return path + " " + json.dumps(pairs, ensure_ascii=False, separators=(",", ":"))


class _Writer:
    """Numbered data files and the key → file index."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.index: dict[str, int] = {}
        self.bytes = 0

    def put(self, path: str, params: list[tuple[str, Any]] | None, answer: Any) -> None:
        key = request_key(path, params)
        if key in self.index:
            return
        n = len(self.index)
        text = json.dumps(answer, ensure_ascii=False, separators=(",", ":"), default=str)
        body = f"window.KGREASON_STATIC.data[{n}] = {text};\n"
        (self.data_dir / f"{n}.js").write_text(body, encoding="utf-8")
        self.index[key] = n
        self.bytes += len(body.encode("utf-8"))

    def try_put(self, path: str, params: list[tuple[str, Any]] | None, answer: Callable[[], Any]) -> bool:
        """Store `answer()`; a request the server would refuse (NotFound, ...) is left out, so the page
        shows the same "not found" it would show without the file."""
        from kgreason.serve.store import BadRequest, NotFound

        try:
            value = answer()
        except (NotFound, BadRequest):
            return False
        self.put(path, params, value)
        return True


def _page(index_html: str, runs_label: str) -> str:
    """index.html with relative asset paths, the static data bootstrap, and Try It marked unavailable."""
    html = index_html.replace('href="/static/style.css"', 'href="style.css"')
    html = html.replace('src="/vendor/', 'src="vendor/').replace('src="/static/app.js"', 'src="app.js"')
    html = html.replace('<script src="app.js"></script>', '<script src="data/index.js"></script>\n  <script src="app.js"></script>')
    html = re.sub(r'(<a href="#tryit"[^>]*>)Try It(</a>)', r'\1Try It (unavailable)\2', html)
    footer = (f'<footer class="muted">static copy of the kgreason demo over {runs_label}: replays only; '
              "Try It needs <code>kgreason serve</code></footer>")
    html = re.sub(r"<footer[^>]*>.*?</footer>", footer, html, flags=re.S)
    if 'src="data/index.js"' not in html or "Try It (unavailable)" not in html:
        raise RuntimeError("serve/web/index.html changed shape: the static export cannot rewrite it")
    return html


IMAGE_SRC = re.compile(r'(src=")(/api/experiment/file\?[^"]*)"')


def _with_local_images(demo: Any, name: str, files_dir: Path, prefix: str) -> dict:
    """The experiment's answer with its report's plots copied to files/ and pointed at there: the
    server serves them from /api/experiment/file, which a static copy does not have."""
    from html import unescape
    from urllib.parse import parse_qs, urlsplit

    from kgreason.serve.store import BadRequest, NotFound

    answer = demo.experiment(name)

    def local(match: re.Match) -> str:
        file = (parse_qs(urlsplit(unescape(match.group(2))).query).get("file") or [""])[0]
        try:
            source = demo.experiment_file(name, file)  # the server's own check: a PNG inside the folder
        except (NotFound, BadRequest):
            return match.group(0)
        files_dir.mkdir(exist_ok=True)
        shutil.copyfile(source, files_dir / f"{prefix}{file}")
        return f'{match.group(1)}files/{prefix}{file}"'

    if isinstance(answer.get("report_html"), str):
        answer["report_html"] = IMAGE_SRC.sub(local, answer["report_html"])
    return answer


def _slim_eval(phase: dict) -> dict:
    """An eval phase without `metrics.options.train_tasks`: evaluations record every training item
    there (3.3 MB per phase on the quick profile), which no view reads; the count stays."""
    metrics = phase.get("metrics")
    options = metrics.get("options") if isinstance(metrics, dict) else None
    if not isinstance(options, dict) or not isinstance(options.get("train_tasks"), list):
        return phase
    slim = {k: v for k, v in options.items() if k != "train_tasks"}
    slim["train_tasks_count"] = len(options["train_tasks"])
    return {**phase, "metrics": {**metrics, "options": slim}}


def _entities(demo: Any, run: str) -> list[list[Any]]:
    """[entity dict, lower-case names] per entity: what the browser ranks a search with."""
    from kgreason.serve.data import _entity_dict

    kg = demo.kg(run)
    return [[_entity_dict(kg, e.id), [n.lower() for n in e.names()]] for e in kg.entities.values()]


def _export_run(w: _Writer, demo: Any, run: str, max_groups: int, max_entities: int) -> dict:
    counts = {"episode_groups": 0, "entities": 0, "inference_pages": 0}
    w.put("/api/run", [("run", run)], demo.run_detail(run))
    w.put("/api/curves", [("run", run)], demo.curves(run))
    w.put("/api/eval", [("run", run)], {"run": run, "phases": [_slim_eval(p) for p in demo.eval_phases(run)]})
    w.try_put("/api/tasks", [("run", run), ("file", "eval"), ("limit", 1)],
              lambda: demo.list_tasks(run, "eval", 0, 1, None))

    # Training: every page of the group list, for all phases and each phase; samples of the
    # first max_groups groups (the first page of each phase, then the rest in order).
    first = demo.episode_groups(run, None, 0, TRAIN_PAGE)
    wanted: list[dict] = []
    for phase in [None, *[p["phase"] for p in first["phases"]]]:
        offset, total = 0, None
        while total is None or offset < total:
            page = demo.episode_groups(run, phase, offset, TRAIN_PAGE)
            total = page["total"]
            w.put("/api/episodes", [("run", run), ("phase", phase), ("offset", offset), ("limit", TRAIN_PAGE)], page)
            wanted.extend(page["items"] if offset == 0 else [])
            offset += TRAIN_PAGE
    everything = demo.episode_groups(run, None, 0, 10**9)["items"]
    seen: set[tuple] = set()
    for g in wanted + everything:
        key = (g["phase"], g["round"], g["step"], g["task_id"])
        if key in seen or len(seen) >= max_groups:
            continue
        seen.add(key)
        params = [("run", run), ("phase", g["phase"]), ("round", g["round"]), ("step", g["step"]),
                  ("task_id", g["task_id"])]
        if w.try_put("/api/episode-group", params,
                     lambda g=g: demo.episode_group(run, g["phase"], g["round"], g["step"], g["task_id"])):
            counts["episode_groups"] += 1

    # Inference: the default comparison (every phase with predictions), every page, every hop filter.
    cols = [p["phase"] for p in demo.eval_phases(run) if p["has_predictions"]]
    if cols:
        from kgreason.serve.store import NotFound

        hops: list[int | None] = [None]
        with contextlib.suppress(NotFound):  # no eval task file: the page's hop filter stays empty too
            hops += demo.list_tasks(run, "eval", 0, 1, None)["hops"]
        col_params = [("col", f"{run}::{c}") for c in cols]
        # Other choices of phases are cut from these pages in the browser; exact only when every
        # phase answered the same items in the same order (then any choice lists the same items).
        orders = [[r.key for r in demo.predictions(run, c).rows] for c in cols]
        w.put("/static/inference-columns", [("run", run)],
              {"cols": cols, "exact": all(order == orders[0] for order in orders)})
        for hop in hops:
            offset, total = 0, None
            while total is None or offset < total:
                page = demo.inference_items([(run, c) for c in cols], offset, INF_PAGE, hop)
                total = page["total"]
                w.put("/api/inference", [*col_params, ("offset", offset), ("limit", INF_PAGE), ("hop", hop)], page)
                counts["inference_pages"] += 1
                offset += INF_PAGE

    # Graph: its summary, the entity list for search, and each entity's neighbourhood (capped).
    if w.try_put("/api/kg", [("run", run)], lambda: demo.kg_info(run)):
        entities = _entities(demo, run)
        w.put("/static/entities", [("run", run)], entities)
        w.put("/api/kg/search", [("run", run), *FIRST_SEARCH.items()],
              demo.search_entities(run, FIRST_SEARCH["q"], int(FIRST_SEARCH["limit"])))
        for ent, _names in entities[:max_entities]:
            w.put("/api/kg/entity", [("run", run), ("id", ent["id"]), ("limit", ENTITY_LIMIT)],
                  demo.neighbourhood(run, ent["id"], ENTITY_LIMIT))
            counts["entities"] += 1
    return counts


def export_demo(runs_dir: str | Path, out: str | Path, max_groups: int = 200, max_entities: int = 5000) -> dict:
    """Write the static copy of the demo over `runs_dir` into `out` (temp folder + rename)."""
    from kgreason.serve.app import INSTALL_HINT, VENDOR_FILES, WEB_DIR, missing_vendor_files, node_modules_dir
    from kgreason.serve.data import Demo
    from kgreason.serve.store import RunsFolder

    runs_dir, out = Path(runs_dir).expanduser(), Path(out).expanduser()
    if not runs_dir.is_dir():
        raise InputError(f"{runs_dir}: runs folder not found")
    missing = missing_vendor_files()
    if missing:
        raise InputError(f"front-end libraries missing ({', '.join(missing)}); install them with `{INSTALL_HINT}`")
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / EXPORT_MARK).is_file())):
        raise InputError(f"{out}: exists and is not an earlier static export; choose a new --export folder")
    demo = Demo(RunsFolder(runs_dir))
    out.parent.mkdir(parents=True, exist_ok=True)
    with staged_dir(out) as tmp:
        (tmp / "data").mkdir()
        (tmp / "vendor").mkdir()
        w = _Writer(tmp / "data")
        listing = demo.list_runs()
        listing["runs_dir"] = runs_dir.resolve().name + " (static copy)"
        w.put("/api/runs", [], listing)
        runs = {}
        for card in listing["runs"]:
            runs[card["name"]] = _export_run(w, demo, card["name"], max_groups, max_entities)
        for i, exp in enumerate(listing["experiments"]):
            w.try_put("/api/experiment", [("name", exp["name"])],
                      lambda e=exp, i=i: _with_local_images(demo, e["name"], tmp / "files", f"{i}-"))
        boot = {"index": w.index, "data": {}}
        (tmp / "data" / "index.js").write_text(
            "// kgreason static demo: request key -> data/<n>.js (see kgreason/serve/static.py)\n"
            f"window.KGREASON_STATIC = {json.dumps(boot, ensure_ascii=False, separators=(',', ':'))};\n",
            encoding="utf-8")
        for name in ("app.js", "style.css"):
            shutil.copyfile(WEB_DIR / name, tmp / name)
        for name, rel in VENDOR_FILES.items():
            shutil.copyfile(node_modules_dir() / rel, tmp / "vendor" / name)
        index_html = (WEB_DIR / "index.html").read_text(encoding="utf-8")
        (tmp / "index.html").write_text(_page(index_html, runs_dir.resolve().name), encoding="utf-8")
        summary = {"runs_dir": str(runs_dir.resolve()), "runs": runs,
                   "experiments": [e["name"] for e in listing["experiments"]], "files": len(w.index),
                   "data_bytes": w.bytes, "max_groups": max_groups, "max_entities": max_entities}
        (tmp / EXPORT_MARK).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return {**summary, "folder": str(out)}
