"""The web demo: a FastAPI app serving a JSON API (OpenAPI at /api/openapi.json) and a static page.

    kgreason serve --runs runs            # then open http://127.0.0.1:8765

Nothing is fetched from the network: the page's JS libraries (cytoscape, chart.js) are installed
with `npm ci --prefix src/kgreason/serve/web` and served from a fixed allow-list of files under
node_modules. FastAPI's /docs page would load Swagger UI from a CDN, so it is switched off; the
spec itself is served.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException

from kgreason import __version__
from kgreason.io import InputError
from kgreason.kg.graph import KGError
from kgreason.serve.api import (
    JOB_ID,
    MAX_BODY_BYTES,
    MAX_ID,
    MAX_PAGE,
    RUN_NAME,
    SEGMENT,
    ComposeRequest,
    GenerateRequest,
    JobCancelled,
    JobCreated,
)
from kgreason.serve.data import Demo
from kgreason.serve.generation import FINISHED, GenerationQueue, Job, ModelSpec, QueueFull
from kgreason.serve.store import BadRequest, NotFound, OutsideRoot, RunsFolder

WEB_DIR = Path(__file__).resolve().parent / "web"
PAGE_FILES = {"app.js": "text/javascript", "style.css": "text/css"}
# /vendor/<name> -> file under node_modules; nothing else in node_modules is reachable.
VENDOR_FILES = {
    "cytoscape.min.js": "cytoscape/dist/cytoscape.min.js",
    "chart.umd.min.js": "chart.js/dist/chart.umd.min.js",
}
INSTALL_HINT = "npm ci --prefix src/kgreason/serve/web"

RunName = Annotated[str, Query(pattern=RUN_NAME, max_length=200, description="a run name from /api/runs")]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]


def node_modules_dir() -> Path:
    """Where the npm libraries are: KGREASON_NODE_MODULES, else web/node_modules next to this file."""
    override = os.environ.get("KGREASON_NODE_MODULES")
    return Path(override).resolve() if override else WEB_DIR / "node_modules"


def missing_vendor_files() -> list[str]:
    root = node_modules_dir()
    return [rel for rel in VENDOR_FILES.values() if not (root / rel).is_file()]


def create_app(runs_dir: str | os.PathLike = "runs", queue: GenerationQueue | None = None) -> FastAPI:
    app = FastAPI(
        title="kgreason demo",
        version=__version__,
        description="Runs, training and inference replays, live answers and the KG, over a runs folder.",
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    demo = Demo(RunsFolder(runs_dir))
    gen = queue or GenerationQueue()
    app.state.demo = demo
    app.state.queue = gen
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    _add_error_handlers(app)
    _add_page_routes(app)
    _add_run_routes(app, demo)
    _add_kg_routes(app, demo)
    _add_generation_routes(app, demo, gen)
    return app


# --- request size --------------------------------------------------------------------------------
class BodyTooLarge(HTTPException):
    """Raised from inside `receive`: FastAPI's body parsing lets HTTP exceptions through (it turns
    anything else into a 400), and the exception middleware answers it with a 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"request body too large: the limit is {limit // 1024} KB")


class BodyLimit:
    """Refuse request bodies over `max_bytes` with a 413 before they are parsed or buffered.

    Content-Length is checked up front; a chunked body (no length) is counted as it arrives and
    cut off at the limit, so neither form makes the server hold more than the limit.
    """

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = True
                if too_big:
                    await self._refuse(send)
                    return
        seen = 0
        started = False

        async def counted_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracked_send(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Any) -> None:
        body = json.dumps({"detail": f"request body too large: the limit is {self.max_bytes // 1024} KB"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


# --- errors --------------------------------------------------------------------------------------
# The demo never repeats what a client sent (README: "never echoes a request back in an error"):
# a value reflected into a message is a way to smuggle markup or megabytes through the server.
# Messages raised by data.py and store.py do name the run, task or entity they could not find, so
# every message passes through `_redact`, which swaps each request value for a short tag such as
# `task_id#1a2b3c4d` (a sha256 prefix: the client can match it, nobody can read it back).
_NAME_CHAR = r"A-Za-z0-9_\-"  # characters that continue a name: a value is redacted as a whole token
_SAFE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/: ")
_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")
_MARK = "\ue000"  # a private-use character brackets a redacted span until the tags are put in
_MAX_INPUTS, _MAX_INPUT_CHARS = 64, 400
JSON_ONLY = "send the body as application/json (Content-Type: application/json)"
NOT_JSON = "the body is not valid JSON"
# Said instead of the message when, despite redaction, it would still carry some of the input.
FALLBACK = {
    400: "the request cannot be served",
    403: "refused: that path resolves outside the runs folder",
    404: "not found",
    429: "too many requests are waiting; try again soon",
    500: "the server could not read one of its files",
}


def _tag(field: str, value: str) -> str:
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    label = field if _FIELD.fullmatch(field) and len(field) <= 20 else "input"
    return f"{label}#{digest}"


def _strings(value: Any, field: str, out: list[tuple[str, str]]) -> None:
    """The string leaves of a JSON body, each with the key it sits under."""
    if isinstance(value, str):
        out.append((field, value))
    elif isinstance(value, dict):
        for key, item in list(value.items())[:_MAX_INPUTS]:
            _strings(item, str(key), out)
    elif isinstance(value, list):
        for item in value[:_MAX_INPUTS]:
            _strings(item, field, out)


async def _request_inputs(request: Request) -> dict[str, str]:
    """Every string the client sent (path, query and JSON body values) -> the tag that replaces it."""
    found: list[tuple[str, str]] = [(k, str(v)) for k, v in request.path_params.items()]
    found += request.query_params.multi_items()
    if request.method in ("POST", "PUT", "PATCH"):
        # The route has already read the body and Starlette keeps it on this request object, so
        # this reads nothing from the socket; a body that does not parse just adds no values.
        with contextlib.suppress(Exception):
            _strings(json.loads(await request.body() or b"null"), "body", found)
    inputs: dict[str, str] = {}
    if len(found) > _MAX_INPUTS * 2:
        # more values than are scanned: one left out could be echoed, so no message is trusted
        # (a client can put junk parameters first; the caller answers with FALLBACK)
        return {TOO_MANY: TOO_MANY}
    for field, value in found:
        # Values past validation are at most 300 characters; only unvalidated extras are longer,
        # and those are never put into a message.
        value = value[:_MAX_INPUT_CHARS]
        parts = [(field, value)]
        if "::" in value:  # an inference column is RUN::PHASE, and data.py names its run or phase alone
            run, _, phase = value.partition("::")
            parts += [("run", run), ("phase", phase)]
        for label, part in parts:
            # A validated number carries nothing, and its digits also appear in counts in messages.
            if part and not _NUMBER.fullmatch(part):
                inputs.setdefault(part, _tag(label, part))
    return inputs


def _redact(message: str, inputs: dict[str, str]) -> str:
    """`message` with each request value (quoted, escaped, cut short or bare) replaced by its tag."""
    tags: list[str] = []

    def mark(tag: str) -> str:
        tags.append(tag)
        return f"{_MARK}{len(tags) - 1}{_MARK}"

    by_length = sorted(inputs, key=len, reverse=True)  # longest first: a value may hold another
    # 1. quoted whole, as repr() or JSON writes it (quotes included): how data.py names things.
    # Done for every value before the looser passes, so each echo gets its own value's tag.
    for value in by_length:
        quoted = {repr(value), json.dumps(value), json.dumps(value, ensure_ascii=False)}
        for form in sorted(quoted, key=len, reverse=True):
            if form in message:
                message = message.replace(form, mark(inputs[value]))
    for value in by_length:
        tag = inputs[value]
        # 2. a long value anywhere, also cut short (data.py writes `file[:80]!r`): from its first
        # 16 characters on, as far as the message keeps matching it
        for form in {value, repr(value)[1:-1], json.dumps(value)[1:-1]}:
            if len(form) < 16:
                continue
            at = message.find(form[:16])
            while at >= 0:
                end = at + 16
                while end - at < len(form) and end < len(message) and message[end] == form[end - at]:
                    end += 1
                message = message[:at] + mark(tag) + message[end:]
                at = message.find(form[:16])
        # 3. a short value bare (`eval/{phase}`): whole tokens only, so that "demo" leaves a listed
        # "demo-run" alone; one or two characters would hit ordinary words
        if len(value) >= 3:
            pattern = re.compile(rf"(?<![{_NAME_CHAR}]){re.escape(value)}(?![{_NAME_CHAR}])")
            message = pattern.sub(lambda _m, t=tag: mark(t), message)
    message = re.sub(rf"(['\"]){_MARK}(\d+){_MARK}\1", lambda m: tags[int(m.group(2))], message)
    return re.sub(rf"{_MARK}(\d+){_MARK}", lambda m: tags[int(m.group(1))], message)


TOO_MANY = "\ue001too many inputs"  # the marker _request_inputs returns when it did not scan all


def _echoes(message: str, inputs: dict[str, str]) -> bool:
    """Whether `message` still holds a piece of an input that a name could not contain: the last
    guard, for an echo that `_redact` did not recognise (re-escaped, or cut mid-escape)."""
    for value in inputs:
        if set(value) <= _SAFE_CHARS:
            continue
        width = min(8, len(value))
        for i in range(len(value) - width + 1):
            window = value[i : i + width]
            if not set(window) <= _SAFE_CHARS and window in message:
                return True
    return False


def _message(exc: Exception) -> str:
    # str() of a LookupError with one argument is that argument, unquoted. Stripping quotes off the
    # ends (as this once did, for KeyError's repr) also ate the closing quote of "... run 'quick'".
    return exc.args[0] if len(exc.args) == 1 and isinstance(exc.args[0], str) else str(exc)


def _short(value: Any, limit: int = 80) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _loc(parts: Any) -> list[str | int]:
    """A validation error's location without its "body"/"query"/"path" head. A key the model does
    not know is named in loc too, so one that is not a plain identifier is given as a tag."""
    parts = list(parts)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return [p if isinstance(p, int) or _FIELD.fullmatch(str(p)) else _tag("key", str(p)) for p in parts[:8]]


def _validation_message(err: dict, inputs: dict[str, str]) -> str:
    msg = _short(err.get("msg", "invalid"), 200)
    if err.get("type") == "string_pattern_mismatch":  # say what the value may be, not the regex
        pattern = (err.get("ctx") or {}).get("pattern")
        if pattern in (RUN_NAME, SEGMENT):
            msg = (
                "not a valid name (letters, digits, '.', '_', '-' and '/' between parts;"
                " no '..', no leading '/')"
            )
        elif pattern == JOB_ID:
            msg = "not a job id (32 hex digits)"
        else:
            msg = "not in the expected form"
    # pydantic's messages state the constraint, not the value; this holds if a future one does not
    return "invalid value" if TOO_MANY in inputs or _echoes(msg, inputs) else msg


def require_json(request: Request) -> None:
    """A dependency of the JSON POST routes: a body of another type is a 415, not a 422 saying
    "Input should be a valid dictionary" (FastAPI only parses bodies declared as JSON)."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
        raise HTTPException(status_code=415, detail=JSON_ONLY)


def _add_error_handlers(app: FastAPI) -> None:
    def handler(status: int):
        async def respond(request: Request, exc: Exception) -> JSONResponse:
            inputs = await _request_inputs(request)
            detail = _short(_redact(_message(exc), inputs), 600)
            if TOO_MANY in inputs or _echoes(detail, inputs):
                detail = FALLBACK.get(status, "the request cannot be served")
            return JSONResponse({"detail": detail}, status_code=status)

        return respond

    app.add_exception_handler(NotFound, handler(404))
    app.add_exception_handler(BadRequest, handler(400))
    app.add_exception_handler(OutsideRoot, handler(403))
    app.add_exception_handler(QueueFull, handler(429))
    # A broken file on disk is not the client's fault, but the message names the file and line.
    app.add_exception_handler(InputError, handler(500))
    app.add_exception_handler(KGError, handler(500))

    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Never echo the input: pydantic's errors carry it (and its ctx), which sent a 10 MB body
        # straight back and made a NaN unrenderable (a 500). So only loc, type and msg are used.
        errs = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errs):
            # FastAPI puts the parser's character offset in loc, which read as a field named "15".
            return JSONResponse(
                {"detail": NOT_JSON, "errors": [{"loc": [], "type": "json_invalid", "msg": NOT_JSON}]},
                status_code=400,
            )
        inputs = await _request_inputs(request)
        parts, errors = [], []
        for err in errs[:10]:
            loc = _loc(err.get("loc", ()))
            msg = _validation_message(err, inputs)
            parts.append(f"{'.'.join(str(p) for p in loc) or 'request'}: {msg}")
            errors.append({"loc": loc, "type": _short(err.get("type", ""), 60), "msg": msg})
        return JSONResponse({"detail": "; ".join(parts), "errors": errors}, status_code=422)

    app.add_exception_handler(RequestValidationError, invalid)


# --- the page and its files ----------------------------------------------------------------------
def _add_page_routes(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        missing = missing_vendor_files()
        if missing:
            return HTMLResponse(_missing_page(missing), status_code=503)
        return HTMLResponse((WEB_DIR / "index.html").read_text(encoding="utf-8"))

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/static/{name}", include_in_schema=False)
    def page_file(name: str) -> FileResponse:
        if name not in PAGE_FILES:
            raise NotFound(f"no such static file; served: {', '.join(PAGE_FILES)}")
        return FileResponse(WEB_DIR / name, media_type=PAGE_FILES[name], headers={"Cache-Control": "no-cache"})

    @app.get("/vendor/{name}", include_in_schema=False)
    def vendor_file(name: str) -> FileResponse:
        rel = VENDOR_FILES.get(name)
        if rel is None:
            raise NotFound(f"no such vendor file; served: {', '.join(VENDOR_FILES)}")
        path = node_modules_dir() / rel
        if not path.is_file():
            raise NotFound(f"{rel} is not installed; run `{INSTALL_HINT}`")
        return FileResponse(path, media_type="text/javascript")

    @app.get("/api/health", tags=["meta"])
    def health() -> dict:
        return {"ok": True, "version": __version__, "missing_vendor_files": missing_vendor_files()}


def _missing_page(missing: list[str]) -> str:
    items = "".join(f"<li><code>{m}</code></li>" for m in missing)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>kgreason: front end not installed</title></head>"
        "<body style='font-family:sans-serif;max-width:46em;margin:3em auto'>"
        "<h1>The demo's JavaScript libraries are not installed</h1>"
        f"<p>These files are missing under <code>{node_modules_dir()}</code>:</p><ul>{items}</ul>"
        f"<p>Install them once (no network is needed afterwards):</p><pre>{INSTALL_HINT}</pre>"
        "<p>then reload this page. The JSON API works meanwhile: <a href='/api/runs'>/api/runs</a>.</p>"
        "</body></html>"
    )


# --- runs, training, inference, experiments ------------------------------------------------------
def _add_run_routes(app: FastAPI, demo: Demo) -> None:
    @app.get("/api/runs", tags=["runs"], summary="Runs and experiments found in the runs folder")
    def list_runs() -> dict:
        return demo.list_runs()

    @app.get("/api/run", tags=["runs"], summary="One run: config, summary, task files, adapters, eval phases")
    def run_detail(run: RunName) -> dict:
        return demo.run_detail(run)

    @app.get("/api/tasks", tags=["runs"], summary="A page of one task file's items")
    def tasks(run: RunName, file: Annotated[str, Query(pattern=SEGMENT, max_length=100)] = "eval",
              offset: Offset = 0, limit: Limit = 50,
              hop: Annotated[int | None, Query(ge=1, le=20)] = None) -> dict:
        return demo.list_tasks(run, file, offset, limit, hop)

    @app.get("/api/episodes", tags=["training"], summary="A page of episode groups (k samples of one question)")
    def episodes(run: RunName, phase: Annotated[str | None, Query(max_length=100)] = None,
                 offset: Offset = 0, limit: Limit = 50) -> dict:
        return demo.episode_groups(run, phase, offset, limit)

    @app.get("/api/episode-group", tags=["training"], summary="One group: the task, its samples, the KG path")
    def episode_group(run: RunName, phase: Annotated[str, Query(max_length=100)],
                      task_id: Annotated[str, Query(min_length=1, max_length=MAX_ID)],
                      step: Annotated[int, Query(ge=0, le=10**9)] = 0,
                      round: Annotated[int, Query(ge=0, le=10**6)] = 0) -> dict:
        return demo.episode_group(run, phase, round, step, task_id)

    @app.get("/api/curves", tags=["training"], summary="Metric curves (metrics.jsonl) and per-step episode stats")
    def curves(run: RunName) -> dict:
        return demo.curves(run)

    @app.get("/api/eval", tags=["inference"], summary="A run's evaluation phases and their metrics")
    def eval_phases(run: RunName) -> dict:
        return {"run": run, "phases": demo.eval_phases(run)}

    @app.get("/api/inference", tags=["inference"], summary="Eval items answered side by side by several models")
    def inference(col: Annotated[list[str], Query(min_length=1, max_length=8, description="RUN::PHASE")],
                  offset: Offset = 0, limit: Annotated[int, Query(ge=1, le=50)] = 10,
                  hop: Annotated[int | None, Query(ge=1, le=20)] = None) -> dict:
        return demo.inference_items([_column(c) for c in col], offset, limit, hop)

    @app.get("/api/experiment", tags=["experiments"], summary="An experiment's results.json and report.md")
    def experiment(name: Annotated[str, Query(pattern=RUN_NAME, max_length=200)]) -> dict:
        return demo.experiment(name)

    @app.get("/api/experiment/file", tags=["experiments"], summary="A PNG plot of an experiment (its report's images)")
    def experiment_file(name: Annotated[str, Query(pattern=RUN_NAME, max_length=200)],
                        file: Annotated[str, Query(pattern=SEGMENT, max_length=100)]) -> FileResponse:
        return FileResponse(demo.experiment_file(name, file), media_type="image/png")


def _column(text: str) -> tuple[str, str]:
    run, sep, phase = text.partition("::")
    if not sep or not re.match(RUN_NAME, run) or not re.match(SEGMENT, phase):
        raise BadRequest("a col value is not RUN::PHASE with a listed run and an eval phase")
    return run, phase


# --- knowledge graph -----------------------------------------------------------------------------
def _add_kg_routes(app: FastAPI, demo: Demo) -> None:
    @app.get("/api/kg", tags=["graph"], summary="A run's KG: counts, relations, entity types")
    def kg_info(run: RunName) -> dict:
        return demo.kg_info(run)

    @app.get("/api/kg/search", tags=["graph"], summary="Entities whose id, label or alias contains the query")
    def kg_search(run: RunName, q: Annotated[str, Query(min_length=1, max_length=200)],
                  limit: Annotated[int, Query(ge=1, le=100)] = 20) -> dict:
        return demo.search_entities(run, q, limit)

    @app.get("/api/kg/entity", tags=["graph"], summary="An entity and its incoming and outgoing edges")
    def kg_entity(run: RunName, id: Annotated[str, Query(min_length=1, max_length=MAX_ID)],
                  limit: Annotated[int, Query(ge=1, le=500)] = 80) -> dict:
        return demo.neighbourhood(run, id, limit)


# --- try it --------------------------------------------------------------------------------------
def _add_generation_routes(app: FastAPI, demo: Demo, gen: GenerationQueue) -> None:
    @app.get("/api/models", tags=["try it"], summary="The models a run offers: its base and its adapters")
    def models(run: RunName) -> dict:
        return {"run": run, "models": demo.models(run)}

    @app.post(
        "/api/compose",
        tags=["try it"],
        summary="A well-posed question from a start entity and a relation chain",
        dependencies=[Depends(require_json)],
    )
    def compose(req: ComposeRequest) -> dict:
        task = demo.compose(req.run, req.start, req.chain, req.seed)
        return {"task": task.to_dict(), "graph": demo.path_graph(req.run, task.to_dict(), [])}

    @app.post("/api/generate", tags=["try it"], summary="Queue a live answer; stream it from the events URL",
              status_code=202, dependencies=[Depends(require_json)])
    def generate(req: GenerateRequest) -> JobCreated:
        spec = _model_spec(demo, req.run, req.model)
        if req.compose is not None:
            task = demo.compose(req.run, req.compose.start, req.compose.chain, req.compose.seed)
        else:
            task = demo.task_record(req.run, req.task_id or "")
        scorer = demo.scorer(req.run)

        def score(text: str) -> dict:
            return scorer.score(task, text).to_dict()

        job = gen.new_job(model=spec, task=task, max_new_tokens=req.max_new_tokens, temperature=req.temperature,
                          timeout_s=req.timeout_s, score=score)
        position = gen.submit(job)
        return JobCreated(job_id=job.id, position=position, events=f"/api/jobs/{job.id}/events",
                          cancel=f"/api/jobs/{job.id}")

    @app.delete("/api/jobs/{job_id}", tags=["try it"],
                summary="Cancel a job: a waiting one frees its queue slot, a running one stops at its next token")
    def cancel_job(job_id: Annotated[str, _job_id_param()]) -> JobCancelled:
        job = gen.cancel(job_id)
        if job is None:
            raise NotFound(NO_JOB)
        return JobCancelled(job_id=job.id, status="cancelled" if job.cancel_requested.is_set() else job.status)

    @app.get("/api/jobs/{job_id}", tags=["try it"], summary="A job's status, position and text so far")
    def job_status(job_id: Annotated[str, _job_id_param()]) -> dict:
        job = _job(gen, job_id)
        text = "".join(e.get("text", "") for e in list(job.events) if e["event"] == "token")
        done = next((e for e in list(job.events) if e["event"] in FINISHED), None)
        return {"job_id": job.id, "status": job.status, "position": gen.position(job), "text": text, "result": done,
                "task": job.task.to_dict()}

    @app.get("/api/jobs/{job_id}/events", tags=["try it"], summary="Server-sent events: queued, started, token, done")
    async def job_events(job_id: Annotated[str, _job_id_param()]) -> StreamingResponse:
        job = _job(gen, job_id)
        return StreamingResponse(_sse(job, gen), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _job_id_param():
    from fastapi import Path as PathParam

    return PathParam(pattern=JOB_ID)


NO_JOB = "no job with that id (finished jobs are kept for a while, then forgotten)"


def _job(gen: GenerationQueue, job_id: str) -> Job:
    job = gen.jobs.get(job_id)
    if job is None:
        raise NotFound(NO_JOB)
    return job


def _model_spec(demo: Demo, run: str, model: str) -> ModelSpec:
    for m in demo.models(run):
        if m["id"] == model:
            return ModelSpec(key=f"{run}::{model}", ref=m["ref"], adapter=m["adapter"])
    known = ", ".join(m["id"] for m in demo.models(run)) or "none (config.json names no model)"
    raise NotFound(f"this run has no model by that name; it has: {known}")


async def _sse(job: Job, gen: GenerationQueue):
    """The job's events as server-sent events. A client that goes away before the job finishes
    cancels it: Starlette cancels this generator when the connection drops (or the next write
    fails), and the `finally` frees the job's queue slot or stops its generation."""
    sent, idle = 0, 0.0
    try:
        while True:
            events = job.events
            while sent < len(events):
                ev = events[sent]
                sent += 1
                yield f"event: {ev['event']}\ndata: {json.dumps(ev, ensure_ascii=False)}\n\n"
                if ev["event"] in FINISHED:
                    return
                idle = 0.0
            await asyncio.sleep(0.03)
            idle += 0.03
            if idle > 5:  # keeps proxies from closing a quiet stream, and finds a vanished client
                yield ": keep-alive\n\n"
                idle = 0.0
    finally:
        if not job.finished:
            gen.cancel(job.id, reason="the client disconnected")
