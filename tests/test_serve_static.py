"""`kgreason serve --export DIR`: the static copy of the demo, opened from file:// in headless Chromium.

No server runs in these tests: the page, its libraries and its data are files, and any request that
is not file:// fails the test (as does any page error).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import conftest_serve as fx
from kgreason.cli import main
from kgreason.serve.static import EXPORT_MARK, export_demo, request_key

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    runs = fx.write_runs_folder(tmp_path_factory.mktemp("runs"))
    out = tmp_path_factory.mktemp("static") / "site"
    assert main(["serve", "--runs", str(runs), "--export", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def browser() -> Iterator:
    assert Path(fx.CHROMIUM).is_file(), f"{fx.CHROMIUM} is missing: apt-get install -y chromium"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=fx.CHROMIUM, args=fx.CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser) -> Iterator:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("request", lambda r: errors.append(f"non-file request {r.url}") if not r.url.startswith("file://") else None)
    pg.set_default_timeout(20_000)
    yield pg
    ctx.close()
    assert not errors, errors


def open_view(pg, site: Path, view: str) -> None:
    pg.goto(f"{(site / 'index.html').as_uri()}#{view}")
    pg.wait_for_selector(f"#view-{view}:not([hidden])")


def test_the_copy_is_files_only(site: Path) -> None:
    html = (site / "index.html").read_text()
    assert '"/static/' not in html and '"/vendor/' not in html  # no server paths left
    assert (site / "vendor" / "chart.umd.min.js").is_file() and (site / "vendor" / "cytoscape.min.js").is_file()
    info = json.loads((site / EXPORT_MARK).read_text())
    assert info["runs"][fx.RUN]["episode_groups"] == 18 and info["experiments"] == [fx.EXPERIMENT]


def test_runs_view_opens_from_file_url_with_accuracy(page, site: Path) -> None:
    open_view(page, site, "runs")
    rows = page.locator("#runs-table tbody tr[data-run]")  # run rows (experiment arms may have a heading row)
    rows.first.wait_for()
    assert rows.count() == 4
    assert "4 run(s), 1 experiment(s)" in page.inner_text("#runs-dir")
    assert "static copy" in page.inner_text("#runs-dir")
    assert "rsft 66.7%" in rows.first.inner_text()
    page.wait_for_function("document.querySelector('#run-config').textContent.includes('tiny:random')")
    rows.nth(0).locator("input").check()
    rows.nth(1).locator("input").check()
    page.click("#compare-btn")
    page.locator("[data-testid=compare-table]").wait_for()
    assert "66.7%" in page.inner_text("[data-testid=compare-table]")


def test_try_it_is_shown_as_unavailable(page, site: Path) -> None:
    open_view(page, site, "tryit")
    note = page.locator("[data-testid=try-unavailable]")
    note.wait_for()
    assert "unavailable in this static copy" in note.inner_text() and "kgreason serve" in note.inner_text()
    assert page.is_disabled("#try-ask") and page.is_disabled("#try-model")
    assert "(unavailable)" in page.inner_text("#tabs a[data-view=tryit]")


def test_training_and_inference_replays(page, site: Path) -> None:
    open_view(page, site, "training")
    page.wait_for_function("document.querySelector('#train-page').textContent.includes('question groups')")
    assert "18 question groups · page 1 of 1" in page.inner_text("#train-page")
    page.locator("#train-groups tbody tr").nth(1).click()
    cards = page.locator("[data-testid=completions] .card")
    cards.first.wait_for()
    assert cards.count() == fx.K and "✓ gold" in page.inner_text("#train-detail")
    assert page.evaluate("S.cys['train-cy'].edges('.gold').length") == 2
    open_view(page, site, "inference")
    page.wait_for_function("document.querySelector('#inf-page').textContent.includes('eval items')")
    assert "6 eval items · page 1 of 2" in page.inner_text("#inf-page")
    assert page.locator("#inf-items .inf-item").first.locator(".card").count() == 3
    page.click("#inf-next")  # every page of the default comparison is in the copy
    page.wait_for_function("document.querySelector('#inf-page').textContent.includes('page 2 of 2')")
    page.select_option("#inf-hop", "3")
    page.wait_for_function("document.querySelector('#inf-page').textContent.startsWith('3 eval items')")
    first_answers = page.inner_text("#inf-items .inf-item >> nth=0")
    page.click("#inf-cols input[value=base_eval]")  # fewer phases: cut from the all-phases pages
    page.wait_for_function("document.querySelectorAll('#inf-items .inf-item')[0].querySelectorAll('.card').length === 2")
    assert "base_eval" not in page.inner_text("#inf-items .inf-item >> nth=0") and "base_eval" in first_answers
    assert "3 eval items" in page.inner_text("#inf-page") and not page.is_visible("#banner.error")


def test_experiments_and_graph(page, site: Path) -> None:
    open_view(page, site, "experiments")
    page.wait_for_function("document.querySelectorAll('#exp-table tbody tr:not(.ref)').length === 3")  # arms, not baselines
    assert "75.0% [65.0, 85.0] (n=100)" in page.inner_text("#exp-table")
    # the report's plot, copied into the copy (the server serves it from /api/experiment/file)
    page.wait_for_function("(() => { const i = document.querySelector('#exp-report img');"
                           " return !!i && i.complete && i.naturalWidth > 0; })()")
    assert page.get_attribute("#exp-report img", "src").startswith("files/")
    open_view(page, site, "graph")
    page.wait_for_function("document.querySelector('#kg-info').textContent.includes('24 entities')")
    page.fill("#kg-q", "Cause4")  # answered in the browser from the run's entity list
    page.press("#kg-q", "Enter")
    page.locator("#kg-results li").nth(1).wait_for()
    assert "1 match(es)" in page.inner_text("#kg-results")
    page.locator("#kg-results li").nth(1).click()
    page.wait_for_function("document.querySelector('#kg-rels h3').textContent.startsWith('Cause4Fault')")
    page.click("#kg-rels a[data-entity=fix_4]")
    page.wait_for_function("document.querySelector('#kg-rels h3').textContent.startsWith('Fix4Patch')")
    assert "→ uses: Tool4Kit" in page.inner_text("#kg-rels")


def test_browser_and_exporter_compute_the_same_request_keys(page, site: Path) -> None:
    open_view(page, site, "runs")
    cases = [
        ("/api/runs", []),
        ("/api/episodes", [("run", "exp/arm a"), ("offset", 25), ("limit", 25)]),
        ("/api/inference", [("col", "r::sft_eval"), ("col", "r::base_eval"), ("offset", 0), ("limit", 5), ("hop", 3)]),
        ("/api/kg/entity", [("run", "r"), ("id", 'Ünïcode "x" & y+z #1'), ("limit", 80)]),
    ]
    for path, params in cases:
        # encoded the way app.js encodes (URLSearchParams), decoded and keyed by staticKey()
        got = page.evaluate("([p, pairs]) => { const u = new URLSearchParams(); "
                            "pairs.forEach(([k, v]) => u.append(k, String(v))); return staticKey(p + '?' + u); }",
                            [path, params])
        assert got == request_key(path, params), path


def test_refuses_a_foreign_folder_and_a_missing_runs_folder(tmp_path: Path, capsys) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    runs = fx.write_runs_folder(tmp_path / "runs")
    assert main(["export", "demo", "--runs", str(runs), "--out", str(foreign)]) == 2
    assert "not an earlier static export" in capsys.readouterr().err
    assert (foreign / "notes.txt").read_text() == "keep me"
    assert main(["export", "demo", "--runs", str(tmp_path / "nope"), "--out", str(tmp_path / "site")]) == 2
    assert "runs folder not found" in capsys.readouterr().err
    export_demo(runs, tmp_path / "site")
    export_demo(runs, tmp_path / "site")  # an earlier copy is replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "runs", "site"]  # no temp folder left


def test_eval_phases_leave_out_the_recorded_training_items() -> None:
    from kgreason.serve.static import _slim_eval

    phase = {"phase": "sft", "has_predictions": True,
             "metrics": {"accuracy": {"mean": 0.5}, "options": {"seed": 0, "train_tasks": [{"id": "t1"}, {"id": "t2"}]}}}
    slim = _slim_eval(phase)
    assert slim["metrics"]["options"] == {"seed": 0, "train_tasks_count": 2}
    assert slim["metrics"]["accuracy"] == {"mean": 0.5} and slim["has_predictions"] is True
    assert "train_tasks" in phase["metrics"]["options"]  # the input is not changed
    assert _slim_eval({"phase": "base", "metrics": None}) == {"phase": "base", "metrics": None}


def test_a_group_missing_from_the_copy_clears_the_last_details(browser, tmp_path: Path) -> None:
    """Clicking a row whose samples were capped out of the copy shows the banner and leaves no
    other question's samples on screen beneath it."""
    runs = fx.write_runs_folder(tmp_path / "runs")
    out = tmp_path / "site"
    export_demo(runs, out, max_groups=2)
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    pg.set_default_timeout(20_000)
    open_view(pg, out, "training")
    pg.wait_for_function("document.querySelector('#train-page').textContent.includes('question groups')")
    pg.locator("#train-groups tbody tr").nth(0).click()
    pg.locator("[data-testid=completions] .card").first.wait_for()
    pg.locator("#train-groups tbody tr").nth(10).click()  # beyond the copy's first 2 groups
    pg.wait_for_selector("#banner.error:not([hidden])")
    assert "not in this static copy" in pg.inner_text("#banner")
    assert pg.locator("[data-testid=completions] .card").count() == 0
    assert pg.evaluate("S.cys['train-cy'] === undefined")
    ctx.close()
