"""Each view of the demo in headless Chromium (Debian's `chromium`), checking what a user sees.

The browser is Debian's package, not Playwright's download (impossible offline): these tests fail,
not skip, when it is missing, because the views are what they test.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import conftest_serve as fx

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[fx.LiveServer]:
    runs = fx.write_runs_folder(tmp_path_factory.mktemp("runs"))
    with fx.LiveServer(runs) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser() -> Iterator:
    assert Path(fx.CHROMIUM).is_file(), f"{fx.CHROMIUM} is missing: apt-get install -y chromium"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=fx.CHROMIUM, args=fx.CHROMIUM_ARGS)
        yield b
        b.close()


def _checked_page(browser, server: fx.LiveServer) -> Iterator:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("request", lambda r: errors.append(f"external request {r.url}") if not r.url.startswith(server.url) else None)
    pg.set_default_timeout(20_000)
    yield pg
    ctx.close()
    assert not errors, errors


@pytest.fixture
def page(browser, server: fx.LiveServer) -> Iterator:
    yield from _checked_page(browser, server)


def open_view(pg, server: fx.LiveServer, view: str) -> None:
    pg.goto(f"{server.url}/#{view}")
    pg.wait_for_selector(f"#view-{view}:not([hidden])")


def test_runs_view_lists_runs_and_compares(page, server: fx.LiveServer) -> None:
    open_view(page, server, "runs")
    rows = page.locator("#runs-table tbody tr[data-run]")
    rows.first.wait_for()
    assert rows.count() == 4
    assert "4 run(s), 1 experiment(s)" in page.inner_text("#runs-dir")
    assert "rsft 66.7%" in rows.first.inner_text()
    first = rows.first.inner_text()
    assert "rsft 66.7% [46.7, 86.7] (n=6)" in first  # accuracy with its interval
    assert "strongest shortcut (most_common_letter) 50.0% [20.0, 80.0] (n=6)" in first
    assert "KG oracle 100.0% [70.0, 100.0] (n=6)" in first
    assert "none 6" in first  # the base phase never gave a parseable letter
    assert "base_eval 0.0% [0.0, 20.0] (n=6) 100.0% without a readable answer" in first  # why base has 0%
    page.wait_for_function("document.querySelector('#run-config').textContent.includes('tiny:random')")
    rows.nth(0).locator("input").check()
    rows.nth(1).locator("input").check()
    page.click("#compare-btn")
    table = page.locator("[data-testid=compare-table]")
    table.wait_for()
    assert table.locator("thead th").count() == 3
    assert "66.7% [46.7, 86.7] (n=6)" in table.inner_text()  # accuracy with its interval
    assert "most_common_letter: 50.0%" in table.inner_text()


def test_landing_page_opens_with_the_headline_sentence_and_chart(page, server: fx.LiveServer) -> None:
    from kgreason.evaluate.headline import run_headline

    open_view(page, server, "runs")
    page.wait_for_function("document.querySelector('#headline-sentence').textContent.length > 0")
    # the very sentence `kgreason run` prints last and report.md starts with (evaluate/headline.py)
    expected = run_headline(server.runs / fx.RUN).sentence
    assert page.inner_text("#headline-sentence") == expected
    assert expected.startswith("RSFT ") and "chance is 25.0%" in expected and "KG oracle scores 100.0%" in expected
    assert "always the letter most often correct in these items" in expected  # the shortcut in plain words
    assert page.locator("#headline").bounding_box()["y"] < page.locator("#runs-table").bounding_box()["y"]
    assert page.locator("[data-testid=headline-diagnosis]").is_hidden()  # nothing went wrong in this run
    labels = page.evaluate("S.charts['chart-headline'].data.datasets.map(d => d.label)")
    assert labels == ["held-out accuracy % (95% CI)", "faithful traces %", "strongest shortcut (most_common_letter)",
                      "chance", "KG oracle"]
    assert page.evaluate("S.charts['chart-headline'].data.labels") == ["base_eval", "sft", "rsft"]
    assert page.evaluate("S.charts['chart-headline'].data.datasets[3].data") == [25, 25, 25]
    assert page.evaluate("S.charts['chart-headline'].data.datasets[0].data")[2] == pytest.approx(66.67, abs=0.01)
    # the base phase answered 0 of 6: its interval reaches above 0 (Wilson), not the bootstrap's [0, 0]
    base = page.evaluate("S.charts['chart-headline'].data.datasets[0].intervals[0]")
    assert base["low"] == 0 and 30 < base["high"] < 45
    # the newest experiment's answer, one sentence per compared arm
    exp = page.inner_text("[data-testid=headline-exp]")
    assert "RSFT on hard vs RSFT on easy: +5.0 points [+1.0, +9.0]" in exp and "**" not in exp


def test_training_view_replays_episodes(page, server: fx.LiveServer) -> None:
    open_view(page, server, "training")
    page.wait_for_function("document.querySelector('#train-page').textContent.includes('question groups')")
    assert "18 question groups · page 1 of 1" in page.inner_text("#train-page")
    assert page.locator("#train-groups tbody tr").count() == 18
    page.locator("#train-groups tbody tr").nth(1).click()
    cards = page.locator("[data-testid=completions] .card")
    cards.first.wait_for()
    assert cards.count() == fx.K
    text = page.inner_text("#train-detail")
    assert "Start at Symptom1Error" in text and "✓ gold" in text
    assert "✗ false" in text and "✓ true" in text and "kept" in text
    # the KG neighbourhood is drawn: cytoscape renders canvases with the path's nodes
    n_nodes = page.evaluate("S.cys['train-cy'].nodes().length")
    gold_edges = page.evaluate("S.cys['train-cy'].edges('.gold').length")
    assert n_nodes >= 3 and gold_edges == 2
    cards.nth(1).click()  # the sample with a false hop: drawn as a false claimed edge
    assert page.evaluate("S.cys['train-cy'].edges('.claim-false').length") == 1
    # each sample card names each field once (a "coverage" term beside the raw coverage read twice)
    fields = page.inner_text("[data-testid=completions] .card >> nth=0 >> [data-testid=card-fields]")
    names = [re.sub(r"[\s\d./+-]+$", "", part).strip() for part in re.split(r" · | \+ |: ", fields)]
    assert len(names) == len(set(names)), names
    # one chart per training phase, each on its own x axis, ≤ 5 series of distinct colours, shares in %
    charts = page.evaluate("[...document.querySelectorAll('#train-charts .chart.phase')].map(c => c.dataset.phase)")
    assert charts == ["sft", "rsft"]
    sft = page.evaluate("S.charts['chart-train-sft'].data.datasets.map(d => d.label)")
    assert sft == ["training loss"]
    rsft = page.evaluate("S.charts['chart-train-rsft'].data.datasets.map(d => d.label)")
    # the held-out probe leads, thick, so a reward that rises while it falls is seen at once
    assert rsft == ["held-out probe: accuracy %", "held-out probe: faithful %", "sampled answers: accuracy % (per round)",
                    "sampled answers: faithful % (per round)", "mean sampled reward (per round)"]
    assert page.evaluate("S.charts['chart-train-rsft'].options.scales.x.title.text") == "round"
    assert page.evaluate("S.charts['chart-train-sft'].options.scales.x.title.text") == "optimizer step"
    # per-round means: the fixture's 6 steps of sampled questions are 2 rounds
    assert page.evaluate("S.charts['chart-train-rsft'].data.datasets[2].data.map(p => p.x)") == [0, 1]
    assert page.evaluate("S.charts['chart-train-rsft'].data.datasets[0].data.map(p => Math.round(p.y))") == [35, 50]
    colours = page.evaluate("S.charts['chart-train-rsft'].data.datasets.map(d => d.borderColor)")
    assert len(set(colours)) == len(colours)
    assert page.evaluate("S.charts['chart-train-rsft'].options.scales.y.max") == 100
    assert page.evaluate("S.charts['chart-eval'].options.scales.y.max") == 100
    assert page.evaluate("S.charts['chart-eval'].data.datasets[0].data")[2] == pytest.approx(66.67, abs=0.01)
    assert page.evaluate("S.charts['chart-eval'].data.labels") == ["base_eval", "sft", "rsft"]
    assert page.evaluate("S.charts['chart-eval'].data.datasets.map(d => d.label)") == [
        "held-out accuracy", "strongest shortcut (most_common_letter)", "KG oracle"]


def test_inference_view_shows_models_side_by_side(page, server: fx.LiveServer) -> None:
    open_view(page, server, "inference")
    page.wait_for_function("document.querySelector('#inf-page').textContent.includes('eval items')")
    assert "6 eval items · page 1 of 2" in page.inner_text("#inf-page")
    page.wait_for_function("document.querySelectorAll('#inf-items .inf-item').length > 0")
    items = page.locator("#inf-items .inf-item")
    assert items.count() == 5 and items.first.locator(".card").count() == 3
    metrics = page.inner_text("[data-testid=inf-metrics]")
    assert "66.7% [46.7, 86.7] (n=6)" in metrics
    assert "most_common_letter: 50.0% [20.0, 80.0] (n=6)" in metrics and "100.0% [70.0, 100.0] (n=6)" in metrics
    heads = page.eval_on_selector_all("[data-testid=inf-metrics] tbody tr td:first-child", "tds => tds.map(t => t.textContent)")
    assert heads == ["base_eval", "sft", "rsft"]  # pipeline order
    assert "✗ false: Symptom" in page.inner_text("#inf-items")  # hops read as labels, not ids
    page.select_option("#inf-hop", "3")
    page.wait_for_function("document.querySelector('#inf-page').textContent.startsWith('3 eval items')")
    page.click("#inf-cols input[value=base_eval]")
    page.wait_for_function("document.querySelectorAll('#inf-items .inf-item')[0].querySelectorAll('.card').length === 2")


def test_try_it_streams_an_answer_from_tiny_random(page, server: fx.LiveServer) -> None:
    open_view(page, server, "tryit")
    page.wait_for_function("document.querySelector('#try-item').options.length === 6")
    assert "base (tiny:random)" in page.inner_text("#try-model")
    from kgreason.config import PipelineConfig

    # the evaluation's own token budget, and nothing drawn before a question is asked: no empty
    # answer box, no gold answer, no path graph
    assert page.input_value("#try-max") == str(PipelineConfig().eval.max_new_tokens)
    assert page.locator("#try-answer").is_hidden() and "✓ gold" not in page.inner_text("#try-question")
    assert page.locator("#try-graph canvas").count() == 0
    page.fill("#try-max", "24")
    page.fill("#try-temp", "1.0")  # greedy decoding of a random model prints blank lines
    page.click("#try-ask")
    page.wait_for_selector("[data-testid=try-verdict]", timeout=120_000)
    answer = page.locator("#try-answer")
    chunks = int(answer.get_attribute("data-chunks") or 0)
    assert chunks > 1, "the answer should arrive in several streamed pieces"
    assert answer.inner_text().strip()
    status = page.inner_text("#try-status")
    waited, took = re.search(r"done in ([\d.]+)s.*generating took ([\d.]+)s", status).groups()
    assert float(waited) + 0.1 >= float(took)  # what the user waited counts the load and the queue
    # a random model never writes an answer line: the answer hit the limit, and the page says so
    assert "cut at the 24-token limit" in status and page.locator("[data-testid=try-cut]").count() == 1
    assert "✓ gold" in page.inner_text("#try-question")  # the gold answer once the model has answered
    verdict = page.inner_text("[data-testid=try-verdict]")
    assert "claimed hop(s)" in verdict and "reward" in verdict


def test_try_it_composes_a_well_posed_question(page, server: fx.LiveServer) -> None:
    open_view(page, server, "tryit")
    page.wait_for_function("document.querySelector('#try-item').options.length === 6")
    page.check("input[name=try-mode][value=compose]")
    page.fill("#try-start", "symptom_3")
    page.select_option("#try-chain select >> nth=0", "caused_by")
    page.select_option("#try-chain select >> nth=1", "fixed_by")
    page.click("#try-compose")
    page.wait_for_function("document.querySelector('#try-question').textContent.includes('Symptom3Error')")
    question = page.inner_text("#try-question")
    assert question.count("Patch") == 4 and "✓ gold" not in question  # not given away before the answer
    assert page.evaluate("S.cys['try-graph'] === undefined")
    page.fill("#try-max", "8")
    page.fill("#try-temp", "1.0")
    page.click("#try-ask")
    page.wait_for_selector("[data-testid=try-verdict]", timeout=120_000)
    assert "Fix3Patch ✓ gold" in page.inner_text("#try-question")
    page.wait_for_function("S.cys['try-graph'] && S.cys['try-graph'].edges('.gold').length === 2")
    page.fill("#try-start", "<img src=x onerror=window.pwned=1>")  # a hostile start: refused, never echoed
    page.click("#try-compose")
    page.wait_for_selector("#banner.error:not([hidden])")
    assert "<img" not in page.inner_text("#banner") and "onerror" not in page.inner_text("#banner")
    assert page.locator("#banner img").count() == 0 and page.evaluate("window.pwned") is None
    page.fill("#try-start", "tool_1")  # tools have no cause: no item exists
    page.click("#try-compose")
    page.wait_for_selector("#banner.error:not([hidden])")
    assert "cannot make a well-posed question" in page.inner_text("#banner")


def test_experiments_view(page, server: fx.LiveServer) -> None:
    open_view(page, server, "experiments")
    page.wait_for_function("document.querySelectorAll('#exp-table tbody tr:not(.ref)').length === 3")
    table = page.inner_text("#exp-table")
    assert "RSFT on hard" in table and "75.0% [65.0, 85.0] (n=100)" in table
    assert page.inner_text("[data-testid=exp-question]") == "Which training distribution teaches 4-5 hops?"
    assert "0.030" in table  # the mixed arm's KL drift
    assert page.locator("[data-testid=table-2x2]").count() == 3
    page.set_viewport_size({"width": 700, "height": 900})  # the 2x2 tables stay inside their cards
    overflow = page.evaluate("""[...document.querySelectorAll('#exp-2x2 .card')].map(c => {
      const t = c.querySelector('table').getBoundingClientRect(), r = c.getBoundingClientRect();
      return t.right <= r.right + 0.5 && t.left >= r.left - 0.5; })""")
    assert overflow == [True, True, True]
    assert page.evaluate("S.charts.exp.data.datasets.map(d => d.label)") == [
        "RSFT on easy", "RSFT on hard", "RSFT on mixed", "strongest shortcut (most_common_letter)"]
    assert page.evaluate("S.charts.exp.data.datasets[3].data") == [50] * 5  # % like every chart
    assert "RSFT on hard vs RSFT on easy" in page.inner_text("[data-testid=exp-answers]")
    assert page.evaluate("S.charts.exp.data.labels.length") == 5
    assert "hard arm generalises best" in page.inner_text("#exp-report")
    # baselines beside the arms: the oracle and the strongest shortcut with its interval
    assert "100.0% [70.0, 100.0] (n=100)" in page.inner_text("[data-testid=exp-oracle]")
    assert page.inner_text("[data-testid=exp-oracle]").count("100.0% [70.0, 100.0] (n=20)") == 5  # by hop
    assert "strongest shortcut (most_common_letter)" in page.inner_text("[data-testid=exp-shortcut]")
    assert "50.0% [20.0, 80.0] (n=100)" in page.inner_text("[data-testid=exp-shortcut]")
    assert page.inner_text("[data-testid=exp-shortcut]").count("50.0% [20.0, 80.0] (n=20)") == 5  # by hop
    # report.md is rendered (a table, a heading, its plot served locally), and its raw HTML is inert
    assert page.locator("#exp-report h1").inner_text() == "Distribution experiment"
    assert page.locator("#exp-report table td").first.inner_text() == "hard"
    page.wait_for_function("document.querySelector('#exp-report img').complete")
    assert page.evaluate("document.querySelector('#exp-report img').naturalWidth") == 1
    assert page.locator("#exp-report script").count() == 0 and page.evaluate("window.pwned") is None
    assert "<script>" in page.inner_text("#exp-report")  # shown as text


def test_graph_view_searches_and_follows_relations(page, server: fx.LiveServer) -> None:
    open_view(page, server, "graph")
    page.wait_for_function("document.querySelector('#kg-info').textContent.includes('24 entities')")
    page.fill("#kg-q", "Cause4")
    page.press("#kg-q", "Enter")
    page.locator("#kg-results li").nth(1).wait_for()
    assert "1 match(es)" in page.inner_text("#kg-results")
    page.locator("#kg-results li").nth(1).click()
    page.wait_for_function("document.querySelector('#kg-rels h3')?.textContent.startsWith('Cause4Fault')")
    assert "→ is fixed by: Fix4Patch" in page.inner_text("#kg-rels")
    page.click("#kg-rels a[data-entity=fix_4]")  # follow the relation
    page.wait_for_function("document.querySelector('#kg-rels h3')?.textContent.startsWith('Fix4Patch')")
    assert "→ uses: Tool4Kit" in page.inner_text("#kg-rels")
    assert page.inner_text("#kg-trail").endswith("cause_4 → fix_4")
    assert page.evaluate("S.cys.kg.nodes().length") == 3


def test_a_failed_run_is_flagged_and_says_what_went_wrong(browser, tmp_path: Path) -> None:
    """Issue 28: the demo flags a run whose trained phase is below the strongest shortcut or whose
    RSFT kept no winners, and its landing page shows the paragraph `kgreason run` printed."""
    from kgreason.evaluate.headline import run_headline

    run = fx.write_failed_run(tmp_path)
    paragraph = run_headline(run).diagnosis["paragraph"]
    with fx.LiveServer(tmp_path) as srv:
        pg = browser.new_page()
        pg.goto(f"{srv.url}/#runs")
        pg.wait_for_selector("[data-testid=headline-diagnosis]:not([hidden])")
        assert pg.inner_text("[data-testid=headline-diagnosis]") == "What went wrong: " + paragraph.replace("`", "")
        flag = pg.locator(f"tr[data-run='{run.name}'] [data-testid=run-problem]")
        assert flag.inner_text() == "needs attention" and "RSFT kept no winners" in flag.get_attribute("title")
        pg.close()


def test_empty_runs_folder_says_how_to_make_a_run(browser, tmp_path: Path) -> None:
    with fx.LiveServer(tmp_path) as srv:
        pg = browser.new_page()
        pg.goto(f"{srv.url}/#runs")
        pg.wait_for_selector("#runs-empty:not([hidden])")
        assert "kgreason run" in pg.inner_text("#runs-empty")
        pg.goto(f"{srv.url}/#training")
        pg.wait_for_selector("#train-detail .empty")
        assert "kgreason run" in pg.inner_text("#train-detail")
        assert pg.locator("#train-detail .empty code").count() >= 1 and "`" not in pg.inner_text("#train-detail")
        pg.close()


def test_experiments_view_without_an_experiment_names_the_command(browser, tmp_path: Path) -> None:
    fx.write_run(tmp_path, "only-run")
    with fx.LiveServer(tmp_path) as srv:
        pg = browser.new_page()
        pg.goto(f"{srv.url}/#distribution")  # the view's earlier name still lands on it
        pg.wait_for_selector("#exp-empty:not([hidden])")
        assert pg.locator("#tabs a.active").inner_text() == "Experiments"
        text = pg.inner_text("#exp-empty")
        assert "kgreason experiment distribution" in text and "kgreason eval" not in text
        assert "`" not in text and pg.locator("#exp-empty code").count() >= 2  # commands as code, no backticks
        # nothing to choose and nothing to draw: no empty dropdown, no blank chart
        assert pg.locator("#exp-select").is_hidden() and pg.locator("#chart-exp").is_hidden()
        assert pg.locator("#exp-report").is_hidden() and pg.locator("#exp-question").is_hidden()
        pg.close()


# --- Try It under load and with odd answers (issue 13) -------------------------------------------
def _counting(load):
    """Wraps a load function, recording how many loads ran at once (the most seen) and any failure."""
    import threading

    state = {"active": 0, "peak": 0, "calls": [], "failures": []}
    lock = threading.Lock()

    def wrapped(spec):
        with lock:
            state["active"] += 1
            state["peak"] = max(state["peak"], state["active"])
            state["calls"].append(spec.key)
        try:
            return load(spec)
        except Exception as exc:
            state["failures"].append(repr(exc))
            raise
        finally:
            with lock:
                state["active"] -= 1

    wrapped.state = state  # type: ignore[attr-defined]
    return wrapped


ASK_ALL = """async (models) => Promise.all(models.map(async (model) => {
  const r = await fetch('/api/generate', {method: 'POST', headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({run: 'demo-run', model, task_id: 'eval-000-h2', max_new_tokens: 8, temperature: 1.0})});
  const job = await r.json();
  if (!r.ok) return {model, status: 'http ' + r.status, detail: job.detail};
  return await new Promise((resolve) => {
    const es = new EventSource(job.events);
    es.addEventListener('done', (e) => { es.close(); resolve({model, status: 'done', chunks: JSON.parse(e.data).chunks}); });
    es.addEventListener('error', (e) => { es.close(); resolve({model, status: 'error', detail: e.data}); });
  });
}))"""


def test_concurrent_first_loads_of_three_models_then_each_answers(browser, tmp_path: Path) -> None:
    from kgreason.serve.generation import GenerationQueue, load_for_spec

    run = fx.write_run(tmp_path, "demo-run")
    fx.write_adapters(run, ("sft", "rsft"))
    load = _counting(load_for_spec)
    queue = GenerationQueue(load=load, max_loaded=2)
    with fx.LiveServer(tmp_path, queue=queue) as srv:
        pg = browser.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.set_default_timeout(120_000)
        pg.goto(f"{srv.url}/#tryit")
        pg.wait_for_function("document.querySelector('#try-model').options.length === 3")
        models = pg.eval_on_selector_all("#try-model option", "os => os.map(o => o.value)")
        assert models == ["base", "sft", "rsft"]
        assert pg.input_value("#try-model") == "rsft"  # the run's final phase, not base (0% held out)
        results = pg.evaluate(ASK_ALL, models)  # three first requests, fired at once
        assert [r["status"] for r in results] == ["done"] * 3, results
        state = load.state
        assert state["peak"] == 1, "loads overlapped"
        assert sorted(state["calls"]) == sorted(f"demo-run::{m}" for m in models) and not state["failures"]
        assert len(queue.models.loaded()) <= 2  # the cap held
        # and afterwards each model answers a question asked through the page
        pg.fill("#try-max", "8")
        pg.fill("#try-temp", "1.0")
        for model in models:
            pg.select_option("#try-model", model)
            pg.click("#try-ask")
            pg.wait_for_selector("[data-testid=try-verdict]")
            assert pg.inner_text("#try-status").startswith("done in"), pg.inner_text("#try-status")
            assert "reward" in pg.inner_text("[data-testid=try-verdict]")
        assert not state["failures"] and state["peak"] == 1
        assert not pg.locator("#banner.error:not([hidden])").count(), pg.inner_text("#banner")
        pg.close()
        assert not errors, errors


@pytest.fixture(scope="module")
def scripted_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[fx.LiveServer]:
    """A live demo whose model streams a valid answer and, while `srv.gate` is clear, holds it
    after a few words, so a test can look at the page while an answer is still arriving."""
    import threading

    from kgreason.serve.generation import GenerationQueue

    runs = tmp_path_factory.mktemp("scripted")
    fx.write_run(runs, "demo-run")
    text = "TRACE: Symptom0Error is caused by Cause0Fault. Cause0Fault is fixed by Fix0Patch.\nANSWER: A"
    gate = threading.Event()
    load = fx.scripted_loader(text, delay_s=0.01, gate=gate)
    with fx.LiveServer(runs, queue=GenerationQueue(load=load)) as srv:
        srv.gate, srv.load = gate, load  # type: ignore[attr-defined]
        try:
            yield srv
        finally:
            gate.set()  # nothing left held when the server stops


@pytest.fixture
def scripted_page(browser, scripted_server: fx.LiveServer) -> Iterator:
    yield from _checked_page(browser, scripted_server)


def test_try_it_clears_the_last_path_graph_while_a_new_answer_streams(scripted_page, scripted_server: fx.LiveServer) -> None:
    srv, page = scripted_server, scripted_page
    srv.gate.set()  # the first answer streams straight through
    open_view(page, srv, "tryit")
    page.wait_for_function("document.querySelector('#try-item').options.length === 6")
    page.click("#try-ask")
    page.wait_for_selector("[data-testid=try-verdict]", timeout=60_000)
    page.wait_for_function("S.cys['try-graph'] && S.cys['try-graph'].nodes().length > 0")
    first_start = page.evaluate("S.cys['try-graph'].nodes('.start').map(n => n.id())")
    assert first_start == ["symptom_0"]
    page.select_option("#try-item", "eval-001-h3")
    assert page.evaluate("S.cys['try-graph'] === undefined")  # another question: the old graph goes
    srv.gate.clear()  # the second one holds after a few words until the checks below are done
    try:
        page.click("#try-ask")
        page.wait_for_function("document.querySelector('#try-status').textContent.startsWith('generating')")
        page.wait_for_function("Number(document.querySelector('#try-answer').dataset.chunks) >= 1")
        # mid-stream: no verdict yet, and no graph of the previous question
        assert page.locator("[data-testid=try-verdict]").count() == 0
        assert page.evaluate("S.cys['try-graph'] === undefined")
        assert page.locator("#try-graph canvas").count() == 0
    finally:
        srv.gate.set()
    page.wait_for_selector("[data-testid=try-verdict]", timeout=60_000)
    page.wait_for_function("S.cys['try-graph'] && S.cys['try-graph'].nodes('.start').length === 1")
    assert page.evaluate("S.cys['try-graph'].nodes('.start').map(n => n.id())") == ["symptom_1"]
    # the scripted trace is about symptom_0, outside this question's neighbourhood: drawn anyway
    assert page.evaluate("S.cys['try-graph'].edges('.claim-true').length") == 2


def test_try_it_cancel_button_stops_the_answer(scripted_page, scripted_server: fx.LiveServer) -> None:
    page = scripted_page
    scripted_server.gate.clear()  # held after a few words: only the cancel button ends this answer
    models = scripted_server.load.models  # type: ignore[attr-defined]  # the queue keeps one loaded
    for m in models:
        m.stopped_early = False
    before = sum(m.tokens_streamed for m in models)
    open_view(page, scripted_server, "tryit")
    page.wait_for_function("document.querySelector('#try-item').options.length === 6")
    page.click("#try-ask")
    page.wait_for_function("Number(document.querySelector('#try-answer').dataset.chunks) >= 1")
    page.click("#try-cancel")
    try:
        page.wait_for_function("document.querySelector('#try-status').textContent === 'cancelled'")
    finally:
        scripted_server.gate.set()  # later tests stream freely, whatever happened here
    assert page.locator("[data-testid=try-verdict]").count() == 0
    assert page.locator("#try-cancel").is_hidden() and page.locator("#try-ask").is_enabled()
    assert any(m.stopped_early for m in models) and sum(m.tokens_streamed for m in models) - before < 20


def test_try_it_says_when_the_answer_is_only_blank_lines(browser, tmp_path: Path) -> None:
    from kgreason.serve.generation import GenerationQueue

    fx.write_run(tmp_path, "demo-run")
    with fx.LiveServer(tmp_path, queue=GenerationQueue(load=fx.scripted_loader("\n\n \n\n\n"))) as srv:
        pg = browser.new_page()
        pg.goto(f"{srv.url}/#tryit")
        pg.wait_for_function("document.querySelector('#try-item').options.length === 6")
        pg.click("#try-ask")
        pg.wait_for_selector("[data-testid=try-verdict]", timeout=60_000)
        assert pg.inner_text("#try-answer") == "The model produced no text: its answer was only blank lines or spaces."
        assert "no-text" in (pg.get_attribute("#try-answer", "class") or "")
        assert pg.inner_text("#try-status").endswith(": no text")
        pg.close()


def test_landing_page_opens_the_newest_real_run_and_groups_arms(browser, tmp_path: Path) -> None:
    fx.write_run(tmp_path, "aaa-old", created="2025-03-01T10:00:00+00:00")
    fx.write_run(tmp_path, "mmm-new", created="2026-05-02T09:30:00+00:00")
    (fx.write_run(tmp_path, "000-newest-no-kg", created="2026-06-01T00:00:00+00:00") / "data" / "kg.json").unlink()
    fx.write_experiment(tmp_path)  # its arms are dated 2026-01-01
    with fx.LiveServer(tmp_path) as srv:
        pg = browser.new_page()
        pg.goto(f"{srv.url}/")
        pg.wait_for_function("document.querySelector('#run-config').textContent.includes('mmm-new')")
        assert pg.input_value("#run-select") == "mmm-new"  # not 000-newest-no-kg, not aaa-old
        groups = pg.eval_on_selector_all("#run-select optgroup", "gs => gs.map(g => [g.label, g.children.length])")
        assert groups == [["runs", 3], ["experiment dist-exp", 3]]
        order = pg.eval_on_selector_all("#runs-table tbody tr[data-run]", "rs => rs.map(r => r.dataset.run)")
        assert order[:3] == ["000-newest-no-kg", "mmm-new", "aaa-old"]  # newest first
        assert order[3:] == ["dist-exp/arms/easy-s0", "dist-exp/arms/hard-s0", "dist-exp/arms/mixed-s0"]
        assert pg.locator("#runs-table tr.group[data-experiment=dist-exp]").count() == 1
        first = pg.inner_text("#runs-table tbody tr[data-run='000-newest-no-kg']")
        assert "2026-06-01 00:00" in first and "no KG" in first
        pg.goto(f"{srv.url}/#graph")  # the default run has a KG, so the graph view works
        pg.wait_for_function("document.querySelector('#kg-info').textContent.includes('24 entities')")
        assert pg.locator("#banner.error:not([hidden])").count() == 0
        pg.close()


LABEL_OVERLAPS = """() => { const bs = S.cys.kg.nodes().map(n => n.boundingBox({includeLabels: true, includeOverlays: false}));
  let c = 0; for (let i = 0; i < bs.length; i++) for (let j = i + 1; j < bs.length; j++) { const a = bs[i], b = bs[j];
  if (a.x1 < b.x2 && b.x1 < a.x2 && a.y1 < b.y2 && b.y1 < a.y2) c++; } return c; }"""


def test_training_path_graph_labels_do_not_overlap(browser, tmp_path: Path) -> None:
    """The question's neighbourhood in the Training view (a breadth-first layout spaces nodes, not
    labels): with long entity names its labels used to run into each other."""
    import json

    run = fx.write_run(tmp_path, "long-names")
    kg = json.loads((run / "data" / "kg.json").read_text())
    for e in kg["entities"]:
        e["label"] += "WithAVeryLongOperationalName"
    # a denser neighbourhood: every symptom is caused by every cause (rows of six long labels)
    kg["edges"] += [{"src": f"symptom_{i}", "rel": "caused_by", "dst": f"cause_{j}"}
                    for i in range(6) for j in range(6) if i != j]
    (run / "data" / "kg.json").write_text(json.dumps(kg))
    with fx.LiveServer(tmp_path) as srv:
        pg = browser.new_page(viewport={"width": 1280, "height": 800})
        pg.goto(f"{srv.url}/#training")
        pg.wait_for_function("document.querySelector('#train-page').textContent.includes('question groups')")
        pg.locator("#train-groups tbody tr").nth(1).click()
        pg.wait_for_function("S.cys['train-cy'] && S.cys['train-cy'].nodes().length > 3")
        assert pg.evaluate(LABEL_OVERLAPS.replace("S.cys.kg", "S.cys['train-cy']")) == 0
        pg.close()


def test_graph_view_labels_do_not_overlap_around_a_hub(browser, tmp_path: Path) -> None:
    import json

    from kgreason.kg.builtin import build_devops_kg

    run = fx.write_run(tmp_path, "hub-run")
    kg = build_devops_kg(seed=0, size="small")
    (run / "data" / "kg.json").write_text(json.dumps(kg.to_dict()))
    hubs = sorted(kg.entities, key=lambda e: -kg.degree(e))
    with fx.LiveServer(tmp_path) as srv:
        pg = browser.new_page(viewport={"width": 1280, "height": 900})
        pg.goto(f"{srv.url}/#graph")
        pg.wait_for_function("S.cys.kg && S.cys.kg.nodes().length > 0")
        for entity in (hubs[0], hubs[len(hubs) // 4]):  # the busiest entity and a middling one
            pg.evaluate("id => openEntity(id)", entity)
            pg.wait_for_function("id => S.cys.kg.nodes('.center').map(n => n.id())[0] === id", arg=entity)
            if entity == hubs[0]:
                assert pg.evaluate("S.cys.kg.nodes().length") > 8  # enough neighbours to crowd a ring
            assert pg.evaluate(LABEL_OVERLAPS) == 0, entity
        pg.close()


def test_try_it_without_eval_items_says_so_and_cannot_ask(browser, tmp_path: Path) -> None:
    run = fx.write_run(tmp_path, "arm-like")
    (run / "data" / "eval.jsonl").unlink()  # like an experiment arm: no task files of its own
    (run / "data" / "train_easy.jsonl").unlink()
    with fx.LiveServer(tmp_path) as srv:
        pg = browser.new_page()
        pg.goto(f"{srv.url}/#tryit")
        pg.wait_for_selector("[data-testid=try-no-items]")
        assert "no eval items" in pg.inner_text("#try-question")
        assert pg.is_disabled("#try-ask")
        pg.check("input[name=try-mode][value=compose]")  # the run still has its KG: compose works
        assert pg.is_disabled("#try-ask")
        pg.fill("#try-start", "symptom_2")
        pg.click("#try-compose")
        pg.wait_for_function("document.querySelector('#try-question').textContent.includes('Symptom2Error')")
        assert pg.is_enabled("#try-ask")
        pg.close()


def test_a_failed_load_shows_a_sentence_and_asking_again_works(browser, tmp_path: Path) -> None:
    from kgreason.serve.generation import GenerationQueue

    inner = fx.scripted_loader("TRACE: Symptom0Error is caused by Cause0Fault.\nANSWER: A")
    calls = [0]

    def flaky(spec):
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("Cannot copy out of meta tensor; no data!")
        return inner(spec)

    fx.write_run(tmp_path, "demo-run")
    with fx.LiveServer(tmp_path, queue=GenerationQueue(load=flaky)) as srv:
        pg = browser.new_page()
        pg.goto(f"{srv.url}/#tryit")
        pg.wait_for_function("document.querySelector('#try-item').options.length === 6")
        pg.click("#try-ask")
        pg.wait_for_selector("#banner.error:not([hidden])")
        banner = pg.inner_text("#banner")
        assert banner.startswith("Could not load the base model of run demo-run.") and "meta tensor" not in banner
        assert "asking again retries the load" in banner
        assert pg.is_enabled("#try-ask")
        pg.click("#try-ask")
        pg.wait_for_selector("[data-testid=try-verdict]", timeout=60_000)
        assert "answer A: correct" in pg.inner_text("[data-testid=try-verdict]")
        assert pg.locator("#banner.error:not([hidden])").count() == 0
        pg.close()
