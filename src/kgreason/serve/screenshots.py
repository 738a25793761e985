"""Screenshots of every view of the demo, for the README (headless Debian Chromium via Playwright).

    python -m kgreason.serve.screenshots --runs runs --out docs/screenshots
    python -m kgreason.serve.screenshots --runs runs --out docs/screenshots/800x600 --width 800 --height 600

Starts the app on a free local port, opens each view, clicks what a visitor would (a training
question, "Ask the model"), and writes one PNG per view (viewport only, so each stays small).
"""

from __future__ import annotations

import argparse
import socket
import threading
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWS = ("runs", "training", "inference", "tryit", "experiments", "graph")


def _start(runs: Path):
    import uvicorn

    from kgreason.serve.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(runs), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}"


def _prepare(pg, view: str, graph_query: str | None, temperature: float, model: str | None = None) -> None:
    if view == "training":
        rows = pg.locator("#train-groups tbody tr")
        if rows.count():
            rows.nth(min(1, rows.count() - 1)).click()
            pg.locator("[data-testid=completions] .card").first.wait_for()
            cards = pg.locator("[data-testid=completions] .card")
            cards.nth(min(1, cards.count() - 1)).click()
    elif view == "tryit" and pg.locator("#try-item option").count():
        if model:
            pg.select_option("#try-model", model)
        # the token budget is the run's evaluation budget, which the view sets itself
        pg.fill("#try-temp", str(temperature))
        pg.click("#try-ask")
        pg.wait_for_selector("[data-testid=try-verdict]", timeout=300_000)
    elif view == "graph" and graph_query:
        pg.fill("#kg-q", graph_query)
        pg.press("#kg-q", "Enter")
        pg.locator("#kg-results li").nth(1).click()
    pg.evaluate("window.scrollTo(0, 0)")  # clicks scroll; show each view from its top
    pg.wait_for_timeout(600)


def take(runs: Path, out: Path, run: str | None, graph_query: str | None, width: int, height: int,
         temperature: float = 0.0, model: str | None = None, views: tuple[str, ...] = VIEWS) -> list[Path]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    server, thread, url = _start(runs)
    written = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            pg = browser.new_page(viewport={"width": width, "height": height})
            if run:
                pg.goto(url)
                pg.evaluate(f"localStorage.setItem('kgreason.run', {run!r})")
            for view in views:
                pg.goto(f"{url}/#{view}")
                pg.wait_for_selector(f"#view-{view}:not([hidden])")
                pg.wait_for_load_state("networkidle")  # a first headline is computed, not read: seconds
                pg.wait_for_timeout(800)
                _prepare(pg, view, graph_query, temperature, model)
                path = out / f"{view}.png"
                pg.screenshot(path=str(path))
                written.append(path)
                print(f"{path}  {path.stat().st_size // 1024} KB")
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default="runs", type=Path, help="the runs folder to show")
    ap.add_argument("--out", default=Path("docs/screenshots"), type=Path, help="where the PNGs go")
    ap.add_argument("--run", default=None, help="the run to show (default: the page's own choice, the newest run with a KG)")
    ap.add_argument("--graph-query", default=None, help="an entity search to show in the Graph view")
    ap.add_argument("--temperature", type=float, default=0.0, help="sampling temperature for the Try It answer")
    ap.add_argument("--model", default=None, help="the Try It model to ask (base, sft, rsft; default: the run's final phase)")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=800)
    ap.add_argument("--views", default=",".join(VIEWS),
                    help=f"comma list of the views to take (default: all: {','.join(VIEWS)})")
    args = ap.parse_args()
    views = tuple(v for v in args.views.split(",") if v)
    unknown = sorted(set(views) - set(VIEWS))
    if unknown:
        ap.error(f"--views: unknown {', '.join(unknown)}; expected some of {', '.join(VIEWS)}")
    take(args.runs, args.out, args.run, args.graph_query, args.width, args.height, args.temperature, args.model,
         views)


if __name__ == "__main__":
    main()
