"""The demo's JSON API: what each endpoint returns, input validation, and path-traversal refusal."""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

import conftest_serve as fx
from kgreason.serve.app import create_app
from kgreason.serve.generation import GenerationQueue, ModelSpec


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fx.write_runs_folder(tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def client(runs: Path) -> TestClient:
    return TestClient(create_app(runs))


def test_lists_runs_and_experiments(client: TestClient) -> None:
    data = client.get("/api/runs").json()
    names = [r["name"] for r in data["runs"]]
    assert names == ["demo-run", "dist-exp/arms/easy-s0", "dist-exp/arms/hard-s0", "dist-exp/arms/mixed-s0"]
    assert [e["name"] for e in data["experiments"]] == ["dist-exp"]
    demo = data["runs"][0]
    assert demo["model"] == "tiny:random"
    assert {p["phase"]: round(p["accuracy"], 3) for p in demo["phases"]} == {"base_eval": 0.0, "sft": 0.333, "rsft": 0.667}
    assert "hint" not in data
    assert data["default"] == "demo-run" and demo["has_kg"] and demo["has_tasks"]
    assert [r["experiment"] for r in data["runs"]] == [None] + ["dist-exp"] * 3
    assert demo["created"] == "2026-01-01T00:00:00+00:00"


def test_runs_are_newest_first_and_the_default_is_the_newest_real_run(tmp_path: Path) -> None:
    fx.write_run(tmp_path, "a-old", created="2025-01-01T00:00:00+00:00")
    fx.write_run(tmp_path, "b-new", created="2026-02-01T00:00:00+00:00")
    (fx.write_run(tmp_path, "c-no-kg", created="2026-03-01T00:00:00+00:00") / "data" / "kg.json").unlink()
    fx.write_experiment(tmp_path)
    data = TestClient(create_app(tmp_path)).get("/api/runs").json()
    names = [r["name"] for r in data["runs"]]
    assert names == ["c-no-kg", "b-new", "dist-exp/arms/easy-s0", "dist-exp/arms/hard-s0", "dist-exp/arms/mixed-s0",
                     "a-old"]  # newest first (the arms are dated 2026-01-01), equal dates by name
    assert data["default"] == "b-new"
    # an experiment arm is newer than every run of its own: still not the default
    fx.write_run(tmp_path, "dist-exp/arms/late-s0", created="2027-01-01T00:00:00+00:00")
    data = TestClient(create_app(tmp_path)).get("/api/runs").json()
    assert data["runs"][0]["name"] == "dist-exp/arms/late-s0" and data["default"] == "b-new"


def test_run_detail(client: TestClient) -> None:
    d = client.get("/api/run", params={"run": "demo-run"}).json()
    assert d["task_files"] == ["eval", "train_easy"]
    assert d["eval_phases"] == ["base_eval", "sft", "rsft"]  # pipeline order, not alphabetical
    assert d["config"]["dataset_seed"] == 0 and d["has_kg"] and d["has_episodes"]


def test_episode_groups_are_paged(client: TestClient) -> None:
    page = client.get("/api/episodes", params={"run": "demo-run", "offset": 5, "limit": 4}).json()
    assert page["total"] == 6 * 3  # steps x questions per step
    assert page["phases"] == [{"phase": "rsft", "episodes": 18 * fx.K, "groups": 18}]
    assert len(page["items"]) == 4 and page["items"][0]["step"] == 1
    assert all(g["k"] == fx.K for g in page["items"])
    last = client.get("/api/episodes", params={"run": "demo-run", "offset": 16, "limit": 50}).json()
    assert len(last["items"]) == 2
    assert client.get("/api/episodes", params={"run": "demo-run", "phase": "grpo"}).json()["total"] == 0


def test_episode_group_has_breakdowns_and_path(client: TestClient) -> None:
    g = client.get("/api/episodes", params={"run": "demo-run", "limit": 1}).json()["items"][0]
    d = client.get("/api/episode-group", params={k: g[k] for k in ("phase", "round", "step", "task_id")} | {"run": "demo-run"}).json()
    assert d["task"]["id"] == g["task_id"]
    rewards = [e["reward"]["total"] for e in d["episodes"]]
    assert rewards == sorted(rewards, reverse=True) and len(rewards) == fx.K
    false_hops = [h for e in d["episodes"] for h in e["reward"]["claimed_hops"] if not h["valid"]]
    assert len(false_hops) == 1  # the fixture's "false_hop" sample
    gold = [e for e in d["graph"]["edges"] if e["gold"]]
    assert [(e["src"], e["rel"], e["dst"]) for e in gold] == [tuple(x) for x in
                                                              [("symptom_0", "caused_by", "cause_0")]]
    node_ids = {n["id"] for n in d["graph"]["nodes"]}
    assert false_hops[0]["tail"] in node_ids  # the falsely claimed entity is drawn too
    missing = client.get("/api/episode-group", params={"run": "demo-run", "phase": "rsft", "task_id": "nope"})
    assert missing.status_code == 404 and "no episodes" in missing.json()["detail"]


def test_curves(client: TestClient) -> None:
    d = client.get("/api/curves", params={"run": "demo-run"}).json()
    assert d["phase_order"] == ["sft", "rsft", "grpo", "dpo"]
    assert [p[1] for p in d["metrics"]["sft"]["loss"]] == [2.0, 1.0, 0.6667, 0.5, 0.4, 0.3333]
    steps = d["episodes"]["rsft"]
    assert [s["step"] for s in steps] == list(range(6)) and all(s["n"] == 3 * fx.K for s in steps)
    assert steps[-1]["accuracy"] > steps[0]["accuracy"]


def test_inference_side_by_side(client: TestClient) -> None:
    cols = ["demo-run::base_eval", "demo-run::sft", "demo-run::rsft"]
    d = client.get("/api/inference", params={"col": cols, "limit": 50}).json()
    assert d["total"] == 6 and len(d["items"]) == 6
    correct = [sum(it["answers"][i]["correct"] for it in d["items"]) for i in range(3)]
    assert correct == [0, 2, 4]
    assert d["labels"]["cause_0"] == "Cause0Fault"
    hop3 = client.get("/api/inference", params={"col": cols, "hop": 3}).json()
    assert hop3["total"] == 3 and all(it["task"]["hop_len"] == 3 for it in hop3["items"])
    bad = client.get("/api/inference", params={"col": "demo-run:sft"})
    assert bad.status_code == 400 and "RUN::PHASE" in bad.json()["detail"]
    assert client.get("/api/inference", params={"col": "demo-run::nophase"}).status_code == 404


def test_kg_search_and_neighbourhood(client: TestClient) -> None:
    s = client.get("/api/kg/search", params={"run": "demo-run", "q": "cause1"}).json()
    assert [e["id"] for e in s["items"]] == ["cause_1"]
    n = client.get("/api/kg/entity", params={"run": "demo-run", "id": "cause_1"}).json()
    assert (n["out"], n["in"]) == (1, 1)
    assert {(e["src"], e["rel"], e["dst"]) for e in n["edges"]} == {("cause_1", "fixed_by", "fix_1"),
                                                                    ("symptom_1", "caused_by", "cause_1")}
    assert client.get("/api/kg/entity", params={"run": "demo-run", "id": "nope"}).status_code == 404


def test_compose_checks_well_posedness(client: TestClient) -> None:
    ok = client.post("/api/compose", json={"run": "demo-run", "start": "symptom_2", "chain": ["caused_by", "fixed_by"]})
    assert ok.status_code == 200
    task = ok.json()["task"]
    assert task["option_ids"][task["answer_star"]] == "fix_2" and task["hop_len"] == 2
    bad = client.post("/api/compose", json={"run": "demo-run", "start": "tool_1", "chain": ["caused_by"]})
    assert bad.status_code == 400 and "cannot make a well-posed question" in bad.json()["detail"]
    unknown = client.post("/api/compose", json={"run": "demo-run", "start": "symptom_2", "chain": ["teleports_to"]})
    assert unknown.status_code == 400 and "unknown relation" in unknown.json()["detail"]
    too_long = client.post("/api/compose", json={"run": "demo-run", "start": "symptom_2", "chain": ["caused_by"] * 7})
    assert too_long.status_code == 422


def test_experiment(client: TestClient) -> None:
    d = client.get("/api/experiment", params={"name": "dist-exp"}).json()
    assert [a["name"] for a in d["results"]["arms"]] == ["easy", "hard", "mixed"]
    assert d["report"].startswith("# Distribution experiment")
    assert client.get("/api/experiment", params={"name": "demo-run"}).status_code == 404


@pytest.mark.parametrize(("params", "needle"), [
    ({"run": "demo-run", "limit": 0}, "limit"),
    ({"run": "demo-run", "limit": 100000}, "limit"),
    ({"run": "demo-run", "offset": -1}, "offset"),
    ({"run": "demo-run", "limit": "ten"}, "limit"),
    ({}, "run"),
])
def test_bad_query_values_are_422_with_a_message(client: TestClient, params: dict, needle: str) -> None:
    r = client.get("/api/episodes", params=params)
    assert r.status_code == 422 and needle in r.json()["detail"]


@pytest.mark.parametrize("name", ["../demo-run", "/etc", "demo-run/../..", "..", "./demo-run", "demo-run\\..",
                                  "%2e%2e%2fetc", "a/b/c/d/e/f", "demo-run\x00"])
def test_run_names_that_are_paths_are_refused(client: TestClient, name: str) -> None:
    r = client.get("/api/run", params={"run": name})
    assert r.status_code in (404, 422), r.text
    assert "detail" in r.json()


def test_encoded_traversal_in_raw_urls_is_refused(client: TestClient) -> None:
    for url in ["/api/run?run=..%2F..%2Fetc", "/api/run?run=%2Fetc%2Fpasswd", "/vendor/..%2F..%2F..%2Fpyproject.toml",
                "/static/..%2Fapp.py", "/static/%2e%2e/app.py", "/vendor/%2e%2e%2fpackage.json",
                "/api/tasks?run=demo-run&file=..%2F..%2Fconfig"]:
        r = client.get(url)
        assert r.status_code in (404, 422), url
        assert "[project]" not in r.text and "import" not in r.text[:200]


def test_unknown_run_says_which_exist(client: TestClient) -> None:
    r = client.get("/api/run", params={"run": "nope"})
    assert r.status_code == 404 and "demo-run" in r.json()["detail"]


def test_symlinks_out_of_the_runs_folder_are_never_followed(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    fx.write_run(root, "inside")
    outside = fx.write_run(tmp_path / "elsewhere", "secret")
    os.symlink(outside, root / "linked")  # a run folder that is a symlink to outside
    secret_kg = tmp_path / "secret-kg.json"
    secret_kg.write_text(json.dumps({"entities": [{"id": "TOPSECRET", "label": "TOPSECRET"}]}))
    kg_path = root / "inside" / "data" / "kg.json"
    kg_path.unlink()
    os.symlink(secret_kg, kg_path)  # a file inside a run that links out
    c = TestClient(create_app(root))
    assert [r["name"] for r in c.get("/api/runs").json()["runs"]] == ["inside"]
    assert c.get("/api/run", params={"run": "linked"}).status_code == 404
    r = c.get("/api/kg", params={"run": "inside"})
    assert r.status_code == 403 and "outside the runs folder" in r.json()["detail"]
    assert "TOPSECRET" not in r.text
    # a symlink that stays inside the runs folder is fine
    os.symlink(root / "inside", root / "alias")
    assert "alias" in [r["name"] for r in c.get("/api/runs").json()["runs"]]


def test_empty_and_missing_runs_folder_explain_how_to_make_a_run(tmp_path: Path) -> None:
    for folder in (tmp_path / "empty", tmp_path / "missing"):
        if folder.name == "empty":
            folder.mkdir()
        d = TestClient(create_app(folder)).get("/api/runs").json()
        assert d["runs"] == [] and "kgreason run" in d["hint"]


def test_index_follows_an_appended_log_and_ignores_a_torn_line(tmp_path: Path) -> None:
    run = fx.write_run(tmp_path, "live", n_steps=2, questions_per_step=1)
    c = TestClient(create_app(tmp_path))
    assert c.get("/api/episodes", params={"run": "live"}).json()["total"] == 2
    line = (run / "episodes.jsonl").read_text().splitlines()[0]
    rec = json.loads(line) | {"step": 99}
    with (run / "episodes.jsonl").open("a") as f:
        f.write(json.dumps(rec) + "\n" + '{"run": "live", "phase": "rs')  # a write cut off mid-line
    page = c.get("/api/episodes", params={"run": "live"}).json()
    assert page["total"] == 3 and page["items"][-1]["step"] == 99 and page["bad_lines"] == 0


def test_large_episode_log_pages_without_loading_it_whole(tmp_path: Path) -> None:
    run = fx.write_run(tmp_path, "big", n_steps=1, questions_per_step=1)
    proto = json.loads((run / "episodes.jsonl").read_text().splitlines()[0])
    with (run / "episodes.jsonl").open("w") as f:
        for i in range(20_000):
            f.write(json.dumps(proto | {"step": i // 8, "task_id": f"t{i // 4 % 2}", "sample_index": i % 4}) + "\n")
    c = TestClient(create_app(tmp_path))
    page = c.get("/api/episodes", params={"run": "big", "offset": 4990, "limit": 20}).json()
    assert page["total"] == 5000 and len(page["items"]) == 10 and page["items"][-1]["step"] == 2499
    g = page["items"][-1]
    d = c.get("/api/episode-group", params={"run": "big", "phase": g["phase"], "step": g["step"], "task_id": g["task_id"]}).json()
    assert [e["sample_index"] for e in d["episodes"]] == [0, 1, 2, 3]


def test_generate_validates_its_input(client: TestClient) -> None:
    base = {"run": "demo-run", "task_id": "eval-000-h2"}
    cases = [
        (base | {"max_new_tokens": 100000}, 422, "max_new_tokens"),
        (base | {"temperature": -1}, 422, "temperature"),
        (base | {"compose": {"start": "symptom_1", "chain": ["caused_by"]}}, 422, "exactly one"),
        ({"run": "demo-run"}, 422, "exactly one"),
        (base | {"extra": 1}, 422, "extra"),
        (base | {"model": "rsft"}, 404, "has no model"),
        (base | {"model": "../x"}, 422, "model"),
        (base | {"task_id": "missing"}, 404, "no task"),
        (base | {"run": "../etc"}, 422, "run"),
    ]
    for body, status, needle in cases:
        r = client.post("/api/generate", json=body)
        assert r.status_code == status, (body, r.text)
        assert needle in r.json()["detail"], (body, r.text)
    assert client.get("/api/jobs/" + "0" * 32).status_code == 404
    assert client.get("/api/jobs/not-a-job").status_code == 422


def test_queue_reports_positions_and_caps_waiting_jobs() -> None:
    release = threading.Event()

    def slow_load(spec: ModelSpec):
        release.wait(10)
        raise RuntimeError("no model in this test")

    q = GenerationQueue(load=slow_load, max_pending=2)
    spec = ModelSpec("run::base", "tiny:random", None)
    jobs = [q.new_job(model=spec, task=None, max_new_tokens=4, temperature=0.0, timeout_s=5, score=lambda t: {})
            for _ in range(4)]
    assert q.submit(jobs[0]) == 0
    for _ in range(100):  # the worker picks the first job up
        if jobs[0].status == "running":
            break
        threading.Event().wait(0.02)
    assert [q.submit(j) for j in jobs[1:3]] == [1, 2]
    from kgreason.serve.generation import QueueFull

    with pytest.raises(QueueFull):
        q.submit(jobs[3])
    other = q.new_job(model=ModelSpec("run::sft", None, "x"), task=None, max_new_tokens=4, temperature=0.0,
                      timeout_s=5, score=lambda t: {})
    assert q.submit(other) == 0  # one queue per model
    release.set()
    for j in jobs[:3]:
        for _ in range(200):
            if j.finished:
                break
            threading.Event().wait(0.02)
        assert j.status == "error" and j.events[-1]["message"].startswith("Could not load the base model of run run")
    assert [e["position"] for e in jobs[2].events if e["event"] == "queued"][:2] == [2, 1]


def test_page_and_vendor_files(client: TestClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from kgreason.serve.app import VENDOR_FILES, missing_vendor_files

    assert not missing_vendor_files(), "run `npm ci --prefix src/kgreason/serve/web`"
    page = client.get("/")
    assert page.status_code == 200 and "/vendor/cytoscape.min.js" in page.text and "cdn" not in page.text.lower()
    for name in VENDOR_FILES:
        assert client.get(f"/vendor/{name}").status_code == 200
    assert client.get("/vendor/package.json").status_code == 404
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/api/openapi.json").json()["info"]["title"] == "kgreason demo"
    monkeypatch.setenv("KGREASON_NODE_MODULES", str(tmp_path))
    missing = client.get("/")
    assert missing.status_code == 503 and "npm ci --prefix src/kgreason/serve/web" in missing.text
    assert client.get("/vendor/cytoscape.min.js").status_code == 404


@pytest.mark.parametrize("preset", ["paper", "seed", "kgreason"])
def test_try_it_scores_with_the_runs_own_reward_preset(tmp_path: Path, preset: str) -> None:
    """The run's config.json (laid out as `kgreason run` writes it) names its reward preset; a live
    answer must be scored with it, not with the default."""

    class Recording(GenerationQueue):
        def submit(self, job):  # keep the job instead of generating
            self.kept = job
            return 0

    fx.write_run(tmp_path, "p-run", reward_preset=preset)
    queue = Recording()
    c = TestClient(create_app(tmp_path, queue=queue))
    r = c.post("/api/generate", json={"run": "p-run", "task_id": "eval-000-h2"})
    assert r.status_code == 202, r.text
    scored = queue.kept.score("TRACE: nothing\nANSWER: A")
    assert scored["preset"] == preset


# --- Try It: loads, failures, cancelling (issue 13) ----------------------------------------------
def _wait(predicate, timeout: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def _wait_job(c: TestClient, job_id: str, timeout: float = 60.0) -> dict:
    box: dict = {}

    def finished() -> bool:
        box.update(c.get(f"/api/jobs/{job_id}").json())
        return box["status"] in ("done", "error", "cancelled")

    _wait(finished, timeout)
    return box


def test_model_loads_are_one_at_a_time_and_bounded() -> None:
    import time

    from kgreason.serve.generation import ModelCache

    active, peak, lock = [0], [0], threading.Lock()

    def load(spec: ModelSpec):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.15)  # long enough that unserialised loads would overlap
        with lock:
            active[0] -= 1
        return (f"model {spec.key}", "tok")

    cache = ModelCache(load, capacity=2)
    specs = [ModelSpec(f"run::{m}", "tiny:random", None) for m in ("base", "sft", "rsft")]
    threads = [threading.Thread(target=cache.get, args=(s,)) for s in specs for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == 1, "two loads ran at once"
    assert cache.loads == 3, "each model is loaded once, however many ask for it at once"
    assert len(cache.loaded()) == 2  # the cap holds: the first loaded model was evicted
    cache.get(ModelSpec(cache.loaded()[0], None, None))  # touch the older one
    cache.get(ModelSpec("run::other", None, None))
    assert len(cache.loaded()) == 2 and "run::other" in cache.loaded()


def test_a_failed_load_shows_a_sentence_and_the_next_request_loads(runs: Path) -> None:
    inner = fx.scripted_loader("TRACE: Symptom1Error is caused by Cause1Fault.\nANSWER: B")
    calls = [0]

    def flaky(spec: ModelSpec):
        calls[0] += 1
        if calls[0] == 1:  # the message transformers gave after concurrent loads broke it
            raise NotImplementedError("Cannot copy out of meta tensor; no data! Please use torch.nn.Module.to_empty()")
        return inner(spec)

    c = TestClient(create_app(runs, queue=GenerationQueue(load=flaky)))
    body = {"run": "demo-run", "task_id": "eval-001-h3"}
    first = c.post("/api/generate", json=body)
    assert first.status_code == 202, first.text
    failed = _wait_job(c, first.json()["job_id"])
    assert failed["status"] == "error"
    message = failed["result"]["message"]
    assert message.startswith("Could not load the base model of run demo-run")
    assert "meta tensor" not in message and "Error" not in message and "torch" not in message
    second = c.post("/api/generate", json=body)
    done = _wait_job(c, second.json()["job_id"])
    assert done["status"] == "done", done
    assert done["result"]["completion"].endswith("ANSWER: B") and calls[0] == 2
    assert done["result"]["reward"]["answer"] == "B"


def test_a_queued_job_can_be_cancelled_and_frees_its_slot(runs: Path) -> None:
    gate = threading.Event()
    inner = fx.scripted_loader("TRACE: x\nANSWER: A")

    def gated(spec: ModelSpec):
        gate.wait(30)
        return inner(spec)

    queue = GenerationQueue(load=gated, max_pending=1)
    c = TestClient(create_app(runs, queue=queue))
    body = {"run": "demo-run", "task_id": "eval-000-h2"}
    running = c.post("/api/generate", json=body).json()
    _wait(lambda: c.get(f"/api/jobs/{running['job_id']}").json()["status"] == "running")
    waiting = c.post("/api/generate", json=body).json()
    assert waiting["position"] == 1 and waiting["cancel"] == f"/api/jobs/{waiting['job_id']}"
    full = c.post("/api/generate", json=body)
    assert full.status_code == 429  # the one waiting slot is taken
    r = c.delete(waiting["cancel"])
    assert r.status_code == 200 and r.json() == {"job_id": waiting["job_id"], "status": "cancelled"}
    assert c.get(f"/api/jobs/{waiting['job_id']}").json()["status"] == "cancelled"
    again = c.post("/api/generate", json=body)
    assert again.status_code == 202, again.text  # the slot is free again
    assert c.delete("/api/jobs/" + "f" * 32).status_code == 404
    gate.set()
    assert _wait_job(c, running["job_id"])["status"] == "done"
    assert _wait_job(c, again.json()["job_id"])["status"] == "done"
    assert c.delete(running["cancel"] if "cancel" in running else f"/api/jobs/{running['job_id']}").json()["status"] == "done"


def test_a_running_job_stops_when_cancelled(runs: Path) -> None:
    load = fx.scripted_loader("step by step, ", delay_s=0.02, repeat=200)
    c = TestClient(create_app(runs, queue=GenerationQueue(load=load)))
    job = c.post("/api/generate", json={"run": "demo-run", "task_id": "eval-000-h2", "max_new_tokens": 500}).json()
    _wait(lambda: c.get(f"/api/jobs/{job['job_id']}").json()["text"].count("step") >= 3)
    assert c.delete(job["cancel"]).json()["status"] == "cancelled"
    final = _wait_job(c, job["job_id"], timeout=10)
    assert final["status"] == "cancelled"
    model = load.models[0]
    assert model.stopped_early and model.tokens_streamed < 100


def test_a_client_that_disconnects_mid_stream_cancels_its_job(tmp_path: Path) -> None:
    import httpx

    fx.write_run(tmp_path, "demo-run")
    load = fx.scripted_loader("still thinking, ", delay_s=0.02, repeat=300)
    queue = GenerationQueue(load=load)
    with fx.LiveServer(tmp_path, queue=queue) as srv, httpx.Client(base_url=srv.url, timeout=30) as http:
        body = {"run": "demo-run", "task_id": "eval-000-h2", "max_new_tokens": 512}
        job = http.post("/api/generate", json=body).json()
        tokens = 0
        with http.stream("GET", job["events"]) as stream:
            for line in stream.iter_lines():
                tokens += line == "event: token"
                if tokens >= 3:
                    break  # leaving the block closes the connection mid-stream
        _wait(lambda: queue.jobs[job["job_id"]].finished, timeout=15)
        assert queue.jobs[job["job_id"]].status == "cancelled"
        model = load.models[0]
        assert model.stopped_early and model.tokens_streamed < 200  # of 512 it would have made
        # a job still waiting in the queue is cancelled too when its client leaves
        first = http.post("/api/generate", json=body).json()
        second = http.post("/api/generate", json=body).json()
        assert second["position"] >= 1
        with http.stream("GET", second["events"]) as stream:
            next(stream.iter_lines())
        _wait(lambda: queue.jobs[second["job_id"]].status == "cancelled", timeout=15)
        assert queue.pending("demo-run::base") == 0
        http.delete(first["cancel"])


# --- request validation and size (issue 13) -----------------------------------------------------
@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_a_422_not_a_500(client: TestClient, number: str) -> None:
    for field in ("temperature", "timeout_s"):
        raw = f'{{"run": "demo-run", "task_id": "eval-000-h2", "{field}": {number}}}'
        r = client.post("/api/generate", content=raw, headers={"content-type": "application/json"})
        assert r.status_code == 422, r.text
        assert r.json()["detail"] == f"{field}: Input should be a finite number"


def test_request_bodies_are_size_capped_and_never_echoed(client: TestClient) -> None:
    huge = json.dumps({"run": "demo-run", "task_id": "x" * (10 * 1024 * 1024)})
    r = client.post("/api/generate", content=huge, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "64 KB" in r.json()["detail"] and len(r.content) < 200

    def chunks():  # no Content-Length: the limit is enforced while the body arrives
        yield b'{"run": "demo-run", "task_id": "'
        for _ in range(100):
            yield b"y" * 4096
        yield b'"}'

    r = client.post("/api/generate", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and len(r.content) < 200
    # under the cap but invalid: a 422 that names the field and does not repeat the value
    marker = "z" * 50_000
    for body in ({"run": "demo-run", "task_id": marker}, {"run": "demo-run", "task_id": "a", marker: 1}):
        r = client.post("/api/generate", json=body)
        assert r.status_code == 422, r.text
        assert "z" * 100 not in r.text and len(r.content) < 2000
    assert "task_id: String should have at most 300 characters" in client.post(
        "/api/generate", json={"run": "demo-run", "task_id": marker}).json()["detail"]


# --- honest headline numbers and reports (issue 13) ----------------------------------------------
def test_eval_headlines_carry_baselines_oracle_and_answer_letters(client: TestClient, runs: Path) -> None:
    from collections import Counter

    d = client.get("/api/run", params={"run": "demo-run"}).json()
    assert [e["phase"] for e in d["evals"]] == ["base_eval", "sft", "rsft"]
    for e in d["evals"]:
        preds = (runs / "demo-run" / "eval" / e["phase"] / "predictions.jsonl").read_text().splitlines()
        chosen = Counter(json.loads(x)["reward"]["answer"] or "none" for x in preds)
        assert e["letters"] == dict(chosen), e["phase"]
        assert e["strongest_shortcut"]["name"] == "most_common_letter"  # the highest of the three
        assert e["strongest_shortcut"]["accuracy"]["mean"] == 0.5 and e["oracle"]["mean"] == 1.0
        assert e["shortcuts"] == 3
    assert d["evals"][0]["letters"] == {"none": 6}
    listed = client.get("/api/runs").json()["runs"][0]
    assert listed["name"] == "demo-run" and listed["evals"] == d["evals"]
    phases = client.get("/api/eval", params={"run": "demo-run"}).json()["phases"]
    assert [p["phase"] for p in phases] == ["base_eval", "sft", "rsft"]
    assert phases[2]["letters"] == d["evals"][2]["letters"] and phases[2]["oracle"]["mean"] == 1.0
    exp = client.get("/api/experiment", params={"name": "dist-exp"}).json()
    assert exp["strongest_shortcut"]["name"] == "most_common_letter" and exp["oracle"]["n"] == 100


def test_curves_keep_evaluations_apart_from_training(tmp_path: Path) -> None:
    run = fx.write_run(tmp_path, "r")
    with (run / "metrics.jsonl").open("a") as f:
        f.write(json.dumps({"phase": "sft_eval", "step": 0, "accuracy": 0.4, "faithful": 0.2}) + "\n")
    episode = json.loads((run / "episodes.jsonl").read_text().splitlines()[0])
    with (run / "episodes.jsonl").open("a") as f:  # `kgreason run` logs eval answers as episodes too
        f.write(json.dumps(episode | {"phase": "base_eval", "step": 0}) + "\n")
    d = TestClient(create_app(tmp_path)).get("/api/curves", params={"run": "r"}).json()
    # RSFT restarts its steps each round: one series per round (the fixture has rounds 0 and 1)
    assert set(d["metrics"]) == {"sft", "rsft round 0", "rsft round 1"} and set(d["eval_metrics"]) == {"sft_eval"}
    assert [p[0] for p in d["metrics"]["rsft round 1"]["accuracy"]] == [3, 4, 5]
    assert d["eval_metrics"]["sft_eval"]["accuracy"] == [[0, 0.4]]
    assert set(d["episodes"]) == {"rsft"} and set(d["eval_episodes"]) == {"base_eval"}


def test_reports_are_rendered_to_safe_html(client: TestClient) -> None:
    exp = client.get("/api/experiment", params={"name": "dist-exp"}).json()
    html = exp["report_html"]
    assert "<h1>Distribution experiment</h1>" in html and "<td>hard</td>" in html
    assert '<img alt="accuracy by hop" loading="lazy" src="/api/experiment/file?name=dist-exp&amp;file=accuracy_by_hop.png">' in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    img = client.get("/api/experiment/file", params={"name": "dist-exp", "file": "accuracy_by_hop.png"})
    assert img.status_code == 200 and img.headers["content-type"] == "image/png" and img.content.startswith(b"\x89PNG")
    for file, status in [("results.json", 400), ("../demo-run/config.json", 422), ("missing.png", 404)]:
        assert client.get("/api/experiment/file", params={"name": "dist-exp", "file": file}).status_code == status
    d = client.get("/api/run", params={"run": "demo-run"}).json()
    assert d["report_html"] is None  # the fixture run has no report.md


@pytest.mark.parametrize(("markdown_text", "forbidden"), [
    ("<script>alert(1)</script>", "<script"),
    ("<img src=x onerror=alert(1)>", "<img"),
    ("[click](javascript:alert(1))", "javascript:"),
    ("![remote](http://example.com/x.png)", "example.com"),
    ("![up](../../secret.png)", "secret.png\""),
    ('<div onclick="x()">hi</div>', "<div"),
    ("[x](data:text/html;base64,PHNjcmlwdD4=)", "data:"),
])
def test_report_rendering_drops_active_content(markdown_text: str, forbidden: str) -> None:
    from kgreason.serve.report import render_markdown

    html = render_markdown(f"# t\n\n{markdown_text}\n", image_url=lambda name: f"/files/{name}")
    assert forbidden not in html, html
    assert "<h1>t</h1>" in html


# --- kgreason serve --open (issue 13) ------------------------------------------------------------
@pytest.mark.parametrize("open_flag", [True, False])
def test_serve_open_opens_the_browser_once_the_server_listens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              open_flag: bool) -> None:
    import socket
    import time
    import webbrowser

    import uvicorn

    from kgreason.cli import main

    opened: list[tuple[str, bool]] = []
    listening = threading.Event()
    monkeypatch.setattr(webbrowser, "open", lambda url, *a, **k: opened.append((url, listening.is_set())) or True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def fake_run(app, host: str, port: int, log_level: str) -> None:
        time.sleep(0.5)  # the page must not open before the server listens
        with socket.socket() as srv:
            srv.bind((host, port))
            srv.listen()
            listening.set()
            deadline = time.monotonic() + (5 if open_flag else 1)
            while not opened and time.monotonic() < deadline:
                time.sleep(0.05)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    fx.write_run(tmp_path, "r")
    argv = ["serve", "--runs", str(tmp_path), "--port", str(port)] + (["--open"] if open_flag else [])
    assert main(argv) == 0
    if open_flag:
        assert opened == [(f"http://127.0.0.1:{port}/", True)]
    else:
        assert opened == []


def test_page_url_reaches_a_wildcard_bind_through_loopback() -> None:
    from kgreason.serve.commands import page_url

    assert page_url("0.0.0.0", 80) == "http://127.0.0.1:80/"
    assert page_url("::", 8765) == "http://[::1]:8765/"
    assert page_url("localhost", 1) == "http://localhost:1/"


def test_rsft_per_question_sampling_records_are_a_series_of_their_own(tmp_path: Path) -> None:
    run = fx.write_run(tmp_path, "r")
    with (run / "metrics.jsonl").open("a") as f:  # as train.rsft logs each sampled question
        f.write(json.dumps({"phase": "rsft", "round": 1, "step": 7, "hop_len": 2, "k": 4, "pass_rate": 0.5,
                            "best_reward": 1.0, "mean_reward": 0.2}) + "\n")
    d = TestClient(create_app(tmp_path)).get("/api/curves", params={"run": "r"}).json()
    assert d["metrics"]["rsft round 1 sampling"]["pass_rate"] == [[7, 0.5]]
    assert "pass_rate" not in d["metrics"]["rsft round 1"]


def test_an_experiment_arm_reads_the_experiments_shared_data(tmp_path: Path) -> None:
    import shutil

    fx.write_experiment(tmp_path)
    exp = tmp_path / fx.EXPERIMENT
    arm = exp / "arms" / "hard-s0"
    shutil.move(str(arm / "data"), str(exp / "data"))  # as the experiment lays it out: one data stage
    for other in ("easy-s0", "mixed-s0"):
        shutil.rmtree(exp / "arms" / other / "data")
    c = TestClient(create_app(tmp_path))
    name = "dist-exp/arms/hard-s0"
    d = c.get("/api/run", params={"run": name}).json()
    assert d["has_kg"] and d["task_files"] == ["eval", "train_easy"]
    assert c.get("/api/kg", params={"run": name}).json()["entities"] == 24
    items = c.get("/api/inference", params={"col": [f"{name}::rsft"], "limit": 2}).json()["items"]
    assert items[0]["task"]["question"].startswith("Start at Symptom0Error")
    listed = {r["name"]: r for r in c.get("/api/runs").json()["runs"]}
    assert all(listed[f"dist-exp/arms/{a}-s0"]["has_kg"] for a in ("easy", "hard", "mixed"))
    # a run of its own without data/ does not borrow anything
    lone = fx.write_run(tmp_path, "lone")
    shutil.rmtree(lone / "data")
    assert c.get("/api/run", params={"run": "lone"}).json()["has_kg"] is False


def test_a_model_in_use_is_not_evicted_and_the_next_load_waits_for_it() -> None:
    import time

    from kgreason.serve.generation import ModelCache

    class Model:
        def __init__(self, key: str) -> None:
            self.key = key

    def load(spec: ModelSpec):
        return Model(spec.key), "tok"

    cache = ModelCache(load, capacity=1)
    first, second = ModelSpec("run::base", None, None), ModelSpec("run::sft", None, None)
    got: list[str] = []
    with cache.lease(first) as (model, _tok):
        t = threading.Thread(target=lambda: got.append(cache.get(second)[0].key))
        t.start()
        time.sleep(0.3)
        assert got == [] and cache.loaded() == ["run::base"]  # waits: the only slot is in use
        assert cache.full_and_busy()
        assert not cache.drop("run::base")  # an idle unload leaves a model in use alone too
    t.join(5)
    assert got == ["run::sft"] and cache.loaded() == ["run::sft"] and cache.loads == 2


# --- errors never echo the request ---------------------------------------------------------------
# Hostile values of the lengths each parameter allows, with both quote kinds so that repr() escapes
# them: an echo must be recognised quoted, escaped, cut short or bare.
XSS = '<script>alert("x")</script>'
HOSTILE_ID = (("'" + XSS + "id") * 10)[:296]  # under the 300 characters an id may have
HOSTILE_SHORT = ("'" + XSS + "ph") * 3  # 90 characters, under the 100 a phase or file may have
HOSTILE_PATH = "<img src=x onerror=alert(1)>"  # no "/", so it stays one path segment
TAG = r"[a-z_]+#[0-9a-f]{8}"
assert len(HOSTILE_ID) == 296 and len(HOSTILE_SHORT) == 90


def _assert_no_echo(r: httpx.Response, *values: str) -> None:
    for value in values:
        assert value not in r.text and value[:16] not in r.text, r.text
    for marker in ("<script", "<img", "alert(", "onerror"):
        assert marker not in r.text, r.text


@pytest.mark.parametrize(
    ("method", "url", "params", "status", "says"),
    [
        (
            "GET",
            "/api/episode-group",
            {"run": "demo-run", "phase": HOSTILE_SHORT, "task_id": HOSTILE_ID},
            404,
            "no episodes for task",
        ),
        ("GET", "/api/kg/entity", {"run": "demo-run", "id": HOSTILE_ID}, 404, "unknown entity"),
        ("GET", "/api/inference", {"col": "demo-run::" + HOSTILE_SHORT}, 400, "RUN::PHASE"),
        ("GET", "/api/inference", {"col": HOSTILE_SHORT + "::sft"}, 400, "RUN::PHASE"),
        ("GET", "/api/run", {"run": HOSTILE_SHORT}, 422, "run: not a valid name"),
        ("GET", "/api/episodes", {"run": HOSTILE_SHORT}, 422, "run: not a valid name"),
        ("GET", "/api/tasks", {"run": "demo-run", "file": HOSTILE_SHORT}, 422, "file: not a valid name"),
        ("GET", "/api/curves", {"run": HOSTILE_SHORT}, 422, "run: not a valid name"),
        ("GET", "/api/eval", {"run": HOSTILE_SHORT}, 422, "run: not a valid name"),
        ("GET", "/api/kg", {"run": HOSTILE_SHORT}, 422, "run: not a valid name"),
        ("GET", "/api/kg/search", {"run": HOSTILE_SHORT, "q": "x"}, 422, "run: not a valid name"),
        ("GET", "/api/models", {"run": HOSTILE_SHORT}, 422, "run: not a valid name"),
        ("GET", "/api/experiment", {"name": HOSTILE_SHORT}, 422, "name: not a valid name"),
        (
            "GET",
            "/api/experiment/file",
            {"name": "dist-exp", "file": HOSTILE_SHORT},
            422,
            "file: not a valid name",
        ),
        (
            "GET",
            "/api/kg/entity",
            {"run": "demo-run", "id": HOSTILE_ID + "x" * 10},
            422,
            "id: String should have at most",
        ),
        ("GET", f"/static/{HOSTILE_PATH}", {}, 404, "no such static file"),
        ("GET", f"/vendor/{HOSTILE_PATH}", {}, 404, "no such vendor file"),
        ("GET", f"/api/jobs/{HOSTILE_PATH}", {}, 422, "job_id: not a job id"),
        ("GET", f"/api/jobs/{HOSTILE_PATH}/events", {}, 422, "job_id: not a job id"),
        ("DELETE", f"/api/jobs/{HOSTILE_PATH}", {}, 422, "job_id: not a job id"),
    ],
)
def test_errors_never_echo_a_hostile_id_or_name(
    client: TestClient, method: str, url: str, params: dict, status: int, says: str
) -> None:
    r = client.request(method, url, params=params)
    assert r.status_code == status, r.text
    assert says in r.json()["detail"], r.text
    _assert_no_echo(r, HOSTILE_ID, HOSTILE_SHORT, HOSTILE_PATH)


@pytest.mark.parametrize(
    ("url", "body", "status", "says"),
    [
        (
            "/api/compose",
            {"run": "demo-run", "start": HOSTILE_PATH, "chain": ["caused_by"]},
            400,
            "unknown start entity",
        ),
        (
            "/api/compose",
            {"run": "demo-run", "start": "symptom_2", "chain": [HOSTILE_PATH]},
            400,
            "unknown relation",
        ),
        (
            "/api/compose",
            {"run": "demo-run", "start": HOSTILE_ID, "chain": ["caused_by"]},
            400,
            "unknown start entity",
        ),
        (
            "/api/compose",
            {"run": "demo-run", "start": "x", "chain": ["caused_by"], HOSTILE_PATH: 1},
            422,
            "Extra inputs are not permitted",
        ),
        (
            "/api/compose",
            {"run": HOSTILE_SHORT, "start": "x", "chain": ["caused_by"]},
            422,
            "run: not a valid name",
        ),
        ("/api/generate", {"run": "demo-run", "task_id": HOSTILE_ID}, 404, "no task"),
        (
            "/api/generate",
            {"run": "demo-run", "compose": {"start": HOSTILE_PATH, "chain": ["caused_by"]}},
            400,
            "unknown start entity",
        ),
        (
            "/api/generate",
            {"run": "demo-run", "task_id": "eval-000-h2", "model": HOSTILE_PATH},
            422,
            "model: not a valid",
        ),
    ],
)
def test_errors_never_echo_a_hostile_body_value(
    client: TestClient, url: str, body: dict, status: int, says: str
) -> None:
    r = client.post(url, json=body)
    assert r.status_code == status, r.text
    assert says in r.json()["detail"], r.text
    _assert_no_echo(r, HOSTILE_ID, HOSTILE_SHORT, HOSTILE_PATH)


def test_plain_unknown_names_are_not_echoed_either_but_the_known_ones_are_listed(client: TestClient) -> None:
    run = "nope-" + "q" * 60
    r = client.get("/api/run", params={"run": run})
    assert r.status_code == 404 and "q" * 16 not in r.text
    assert re.fullmatch(rf"unknown run {TAG}; known runs: demo-run, .*", r.json()["detail"]), r.text
    short = client.get("/api/run", params={"run": "demo"})  # a prefix of a listed run: the listing survives
    assert short.json()["detail"].startswith("unknown run run#") and "known runs: demo-run" in short.text
    cases = [
        ("/api/inference", {"col": "demo-run::nophase-qqqq"}, 404, "nophase-qqqq"),
        ("/api/tasks", {"run": "demo-run", "file": "nofile-qqqq"}, 404, "nofile-qqqq"),
        (
            "/api/experiment/file",
            {"name": "dist-exp", "file": "w" * 99},
            400,
            "w" * 16,
        ),  # data.py cuts it at 80
        ("/api/experiment/file", {"name": "dist-exp", "file": "v" * 90 + ".png"}, 404, "v" * 16),
        (
            "/api/episode-group",
            {"run": "demo-run", "phase": "rsft", "task_id": "no-such-task"},
            404,
            "no-such-task",
        ),
        ("/api/experiment", {"name": "no-such-experiment"}, 404, "no-such-experiment"),
    ]
    for url, params, status, value in cases:
        r = client.get(url, params=params)
        assert r.status_code == status, (url, r.text)
        assert value not in r.text and re.search(TAG, r.json()["detail"]), (url, r.text)
    r = client.post("/api/generate", json={"run": "demo-run", "task_id": "eval-000-h2", "model": "nomodel"})
    assert r.status_code == 404 and "nomodel" not in r.text and "it has: base" in r.json()["detail"]


def test_an_error_tag_is_a_sha256_prefix_of_the_value(client: TestClient) -> None:
    import hashlib

    r = client.post("/api/compose", json={"run": "demo-run", "start": HOSTILE_PATH, "chain": ["caused_by"]})
    digest = hashlib.sha256(HOSTILE_PATH.encode()).hexdigest()[:8]
    assert r.json()["detail"] == f"unknown start entity start#{digest}"


def test_an_echo_the_redaction_does_not_recognise_falls_back_to_a_generic_sentence(runs: Path) -> None:
    from kgreason.serve.store import NotFound

    app = create_app(runs)

    def mangled(name: str, entity: str, limit: int) -> dict:  # neither quoted nor whole, nor a prefix
        raise NotFound("unknown entity " + entity.replace("'", "").upper().lower()[3:60])

    app.state.demo.neighbourhood = mangled
    r = TestClient(app).get("/api/kg/entity", params={"run": "demo-run", "id": HOSTILE_ID})
    assert r.status_code == 404 and r.json()["detail"] == "not found"


def test_an_error_message_keeps_its_closing_quote(runs: Path) -> None:
    from kgreason.serve.store import NotFound

    app = create_app(runs)

    def missing(name: str) -> dict:
        raise NotFound("no summary.json in run 'quick'")

    app.state.demo.run_detail = missing
    r = TestClient(app).get("/api/run", params={"run": "demo-run"})
    assert r.status_code == 404 and r.json()["detail"] == "no summary.json in run 'quick'"


def test_redaction_keeps_listed_names_that_merely_start_with_the_value() -> None:
    from kgreason.serve.app import _redact

    tags = {"demo": "run#00000000", "eval<x>": "phase#11111111"}
    assert _redact("unknown run 'demo'; known runs: demo-run, demo", tags) == (
        "unknown run run#00000000; known runs: demo-run, run#00000000"
    )
    assert _redact("run 'demo-run' has no eval/eval<x>", tags) == "run 'demo-run' has no eval/phase#11111111"


@pytest.mark.parametrize("url", ["/api/compose", "/api/generate"])
@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None]
)
def test_json_endpoints_answer_another_content_type_with_415(
    client: TestClient, url: str, content_type: str | None
) -> None:
    body = json.dumps(
        {"run": "demo-run", "start": "symptom_2", "chain": ["caused_by"], "task_id": "eval-000-h2"}
    )
    headers = {"content-type": content_type} if content_type else {}
    r = client.post(url, content=body, headers=headers)
    assert r.status_code == 415, r.text
    assert r.json()["detail"] == "send the body as application/json (Content-Type: application/json)"
    assert "dictionary" not in r.text


def test_json_with_a_charset_is_still_json(client: TestClient) -> None:
    body = json.dumps({"run": "demo-run", "start": "symptom_2", "chain": ["caused_by", "fixed_by"]})
    r = client.post("/api/compose", content=body, headers={"content-type": "application/json; charset=utf-8"})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "raw",
    [
        '{"run": "demo-run",, }',
        '{"run": "demo-run", "start": "<b>x',
        "{",
        "nope",
        '{"run": "demo-run"} trailing',
    ],
)
@pytest.mark.parametrize("url", ["/api/compose", "/api/generate"])
def test_malformed_json_is_a_400_with_a_plain_sentence(client: TestClient, url: str, raw: str) -> None:
    r = client.post(url, content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["detail"] == "the body is not valid JSON"
    assert not re.search(r"\d+\s*:", r.text), r.text  # no character offset posing as a field name
    assert "<b>" not in r.text


def test_validation_errors_name_the_field_and_the_rule_but_not_the_value(client: TestClient) -> None:
    r = client.post("/api/generate", json={"run": "demo-run", "task_id": HOSTILE_ID + "x" * 10})
    assert r.status_code == 422
    assert r.json()["detail"] == "task_id: String should have at most 300 characters"
    assert r.json()["errors"] == [
        {"loc": ["task_id"], "type": "string_too_long", "msg": "String should have at most 300 characters"}
    ]
    r = client.post(
        "/api/compose", json={"run": "demo-run", "start": "x", "chain": ["caused_by"], HOSTILE_PATH: 1}
    )
    assert re.fullmatch(r"key#[0-9a-f]{8}: Extra inputs are not permitted", r.json()["detail"]), r.text
    r = client.get("/api/episodes", params={"run": "demo-run", "limit": HOSTILE_PATH})
    assert r.status_code == 422 and r.json()["detail"].startswith("limit: Input should be a valid integer")
    _assert_no_echo(r, HOSTILE_PATH)


# --- intervals right at the edges (Wilson), also for files written before ------------------------
def test_old_collapsed_intervals_at_0_of_n_and_n_of_n_are_shown_as_wilson(tmp_path: Path) -> None:
    run = fx.write_run(tmp_path)
    metrics_path = run / "eval" / "base_eval" / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    # what a percentile bootstrap wrote for 0/150 and 150/150 before the Wilson interval
    metrics["accuracy"] = {"mean": 0.0, "low": 0.0, "high": 0.0, "n": 150}
    metrics["by_hop"] = {"4": {"mean": 0.0, "low": 0.0, "high": 0.0, "n": 75}}
    metrics["references"]["KG oracle"]["accuracy"] = {"mean": 1.0, "low": 1.0, "high": 1.0, "n": 150}
    metrics_path.write_text(json.dumps(metrics))
    c = TestClient(create_app(tmp_path))
    base = c.get("/api/run", params={"run": fx.RUN}).json()["evals"][0]
    assert base["phase"] == "base_eval"
    assert base["accuracy"]["low"] == 0.0 and 0.02 < base["accuracy"]["high"] < 0.03  # Wilson 0/150: [0, 2.5]
    assert 0.97 < base["oracle"]["low"] < 0.98 and base["oracle"]["high"] == 1.0  # n/n mirrored
    phases = c.get("/api/eval", params={"run": fx.RUN}).json()["phases"]
    assert 0.04 < phases[0]["metrics"]["by_hop"]["4"]["high"] < 0.06  # 0/75
    # an interval that did not collapse is shown as stored
    sft = c.get("/api/run", params={"run": fx.RUN}).json()["evals"][1]["accuracy"]
    assert sft == json.loads((run / "eval" / "sft" / "metrics.json").read_text())["accuracy"]


@pytest.mark.parametrize("text, new_tokens, timed_out, reason", [
    ("TRACE: a.\nANSWER: HTTP401Unauthorized (C)\n", 40, False, "answer"),
    ("TRACE: a.\nANSWER: HTTP401Unauthorized (C)", 40, False, "answer"),  # ended by the end token
    ("TRACE: a.\nANSWER: HTTP401Unauthorized (C)\n", 128, False, "answer"),  # its line ended at the limit
    ("TRACE: a.\nANSWER: InspectClientCertificate (B", 128, False, "length"),  # cut mid-line
    ("TRACE: 1. a. 2. b. 3.", 128, False, "length"),
    ("TRACE: no answer here.", 20, False, "eos"),
    ("TRACE: a.\nANSWER: X (C)\n", 20, True, "answer"),  # its answer was in when the time ran out
    ("TRACE: 1. a. 2.", 20, True, "timeout"),
])
def test_try_it_finish_reason_reads_the_answer_line_like_the_reward(text: str, new_tokens: int, timed_out: bool,
                                                                     reason: str) -> None:
    from kgreason.serve.generation import finish_reason

    assert finish_reason(text, new_tokens, 128, timed_out) == reason


def test_an_end_token_as_the_last_allowed_token_is_not_a_cut() -> None:
    from kgreason.serve.generation import finish_reason

    assert finish_reason("TRACE: a.\nANSWER: X (B)", 128, 128, False, ended_eos=True) == "answer"
    assert finish_reason("TRACE: a.\nANSWER: X (B)", 128, 128, False, ended_eos=False) == "length"


def test_try_it_stops_at_the_entity_answer_line() -> None:
    """The stop rule knows "ANSWER: <entity> (<letter>)": the old one stopped only at "ANSWER: B",
    so every answer ran on to the token limit."""
    import torch

    from kgreason.models.tiny import bundled_tokenizer
    from kgreason.serve.generation import _answer_stop

    tok = bundled_tokenizer()
    prompt = tok("question", add_special_tokens=False)["input_ids"]
    stop = _answer_stop(tok, len(prompt))[0]

    def stops(text: str) -> bool:
        ids = torch.tensor([prompt + tok(text, add_special_tokens=False)["input_ids"]])
        return bool(stop(ids, None).all())

    assert not stops("TRACE: 1. A is caused by B.\nANSWER: HTTP401Unauthorized (C")
    assert not stops("TRACE: 1. A is caused by B.\nANSWER: HTTP401Unauthorized (C)")  # may go on: "or D"
    assert stops("TRACE: 1. A is caused by B.\nANSWER: HTTP401Unauthorized (C)\n")


def test_junk_parameters_before_a_hostile_value_do_not_get_it_echoed(client: TestClient) -> None:
    """Only so many request values are scanned for redaction: a client that sends more (junk first)
    gets a generic sentence, not the unscanned value back (found by a review)."""
    hostile = "<img src=x onerror=alert(1)>"
    junk = "&".join("j=1" for _ in range(200))
    for url in (f"/api/episode-group?{junk}&run={fx.RUN}&phase=rsft&step=0&round=0&task_id={hostile}",
                f"/api/kg/entity?{junk}&run={fx.RUN}&id={hostile}"):
        r = client.get(url)
        assert r.status_code in (400, 404, 422) and "onerror" not in r.text and "<img" not in r.text
