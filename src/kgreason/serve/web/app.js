// kgreason demo: one page, six views, plain JS over the JSON API (see /api/openapi.json).
"use strict";

const S = { runs: [], experiments: [], run: null, compare: new Set(), charts: {}, cys: {},
            train: { offset: 0, limit: 25, phase: "" }, inf: { offset: 0, limit: 5 }, kgTrail: [] };
const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) e.setAttribute(k, v);
  }
  for (const kid of kids.flat()) if (kid !== null && kid !== undefined) e.append(kid.nodeType ? kid : String(kid));
  return e;
};
// text with `commands` in it, as the CLI and the server write it: code spans, not literal backticks
const prose = (text) => String(text || "").split("`").map((part, i) => (i % 2 ? el("code", { text: part }) : part));
const pct = (x) => (x === null || x === undefined || isNaN(x)) ? "n/a" : (100 * x).toFixed(1) + "%";
const num = (x, d = 2) => (typeof x === "number") ? x.toFixed(d) : (x ?? "");
const interval = (iv) => {
  if (iv === null || iv === undefined) return "n/a";
  if (typeof iv === "number") return pct(iv);
  const n = iv.n !== undefined ? ` (n=${iv.n})` : "";
  return `${pct(iv.mean)} [${pct(iv.low).replace("%", "")}, ${pct(iv.high).replace("%", "")}]${n}`;
};

// how often each letter was answered; a model leaning on one letter can match a shortcut baseline
// while looking like it reasons, so a letter chosen for over half the answers is flagged
function lettersBox(letters) {
  if (!letters) return el("span", { class: "muted", text: "no predictions" });
  const total = Object.values(letters).reduce((a, b) => a + b, 0) || 1;
  const top = Object.entries(letters).filter(([k]) => k !== "none" && k !== "name").sort((a, b) => b[1] - a[1])[0];
  const skew = top && top[1] / total > 0.5;
  return el("span", { class: "letters" + (skew ? " warn" : ""), "data-testid": "letters",
    title: skew ? `answers "${top[0]}" ${top[1]} of ${total} times: check the shortcut baselines` : "answer letters chosen" },
    Object.entries(letters).map(([k, v]) => `${k} ${v}`).join(" · ") + (skew ? ` (${top[0]}: ${pct(top[1] / total)})` : ""));
}
function refsBox(e) {
  // the floor (strongest shortcut that never follows the chain) and the ceiling (the KG oracle)
  if (!e || (!e.strongest_shortcut && !e.oracle)) return el("span", { class: "muted", text: "no baselines recorded" });
  const sc = e.strongest_shortcut;
  return el("span", { class: "refs", "data-testid": "refs" },
    sc ? `strongest shortcut (${sc.name}) ${interval(sc.accuracy)}` : "", sc && e.oracle ? " · " : "",
    e.oracle ? `KG oracle ${interval(e.oracle)}` : "");
}
// a phase whose answers often have no readable answer line (base: all of them) says so beside its accuracy
const unreadable = (e) => (e.format_failure && e.format_failure.mean > 0.05
  ? el("span", { class: "unreadable", "data-testid": "unreadable", text: `${pct(e.format_failure.mean)} without a readable answer ` }) : null);
const baseline = (evals) => (evals || []).find((e) => e.strongest_shortcut || e.oracle);

async function api(path, opts) {
  if (window.KGREASON_STATIC) return staticApi(path);
  const r = await fetch(path, opts);
  let body = null;
  try { body = await r.json(); } catch (e) { body = { detail: r.statusText }; }
  if (!r.ok) throw new Error(body.detail || `HTTP ${r.status}`);
  return body;
}
const q = (params) => new URLSearchParams(Object.entries(params).filter(([, v]) => v !== null && v !== undefined && v !== ""));

// --- static copy (kgreason serve --export): API answers are files under data/ (serve/static.py) -
// the key: path and parameters sorted by name only (repeated `col`s keep their column order)
function staticKey(path) {
  const u = new URL(path, "http://static.invalid/");
  const pairs = [...u.searchParams.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return u.pathname + " " + JSON.stringify(pairs);
}
function staticLoad(n) {
  const st = window.KGREASON_STATIC;
  if (n in st.data) return Promise.resolve(st.data[n]);
  // file:// pages may not fetch(), but may load scripts: each data file stores its answer itself
  return new Promise((resolve, reject) => {
    const s = document.createElement("script");
    s.src = `data/${n}.js`;
    s.onload = () => { s.remove(); resolve(st.data[n]); };
    s.onerror = () => { s.remove(); reject(new Error(`static copy: data/${n}.js is missing`)); };
    document.head.append(s);
  });
}
async function staticApi(path) {
  const st = window.KGREASON_STATIC, key = staticKey(path), u = new URL(path, "http://static.invalid/");
  if (!(key in st.index) && u.pathname === "/api/kg/search") return staticSearch(u.searchParams);
  if (!(key in st.index) && u.pathname === "/api/inference") return staticInference(u.searchParams);
  if (!(key in st.index)) throw new Error(`not in this static copy (${u.pathname}): \`kgreason serve\` shows everything`);
  return JSON.parse(JSON.stringify(await staticLoad(st.index[key])));  // a copy: views may change what they get
}
async function staticInference(params) {
  // another choice of phases than the copy's: cut from the all-phases page, which is exact when
  // every phase answered the same items in the same order (serve/static.py checks at export)
  const st = window.KGREASON_STATIC, cols = params.getAll("col"), run = (cols[0] || "").split("::")[0];
  const infoKey = staticKey("/static/inference-columns?" + q({ run }));
  const info = infoKey in st.index ? await staticLoad(st.index[infoKey]) : null;
  const phases = cols.map((c) => (c.startsWith(run + "::") ? c.slice(run.length + 2) : null));
  if (!info || !info.exact || !phases.every((p) => info.cols.includes(p))) throw new Error("not in this static copy (this choice of phases): `kgreason serve` shows every choice");
  const full = new URLSearchParams();
  info.cols.forEach((c) => full.append("col", `${run}::${c}`));
  for (const k of ["offset", "limit", "hop"]) if (params.has(k)) full.set(k, params.get(k));
  const page = await staticApi("/api/inference?" + full);
  const pick = phases.map((p) => info.cols.indexOf(p));
  page.columns = pick.map((i) => page.columns[i]);
  page.items.forEach((it) => { it.answers = pick.map((i) => it.answers[i]); });
  return page;
}
async function staticSearch(params) {
  // Demo.search_entities' ranking: exact name, then prefix, then substring; more edges first; id
  const st = window.KGREASON_STATIC, query = (params.get("q") || "").trim().toLowerCase();
  const key = staticKey("/static/entities?" + q({ run: params.get("run") }));
  if (!(key in st.index)) throw new Error("not in this static copy: this run has no graph");
  const scored = [];
  for (const [e, names] of await staticLoad(st.index[key])) {
    const rank = names.some((n) => n === query) ? 0 : names.some((n) => n.startsWith(query)) ? 1 : names.some((n) => n.includes(query)) ? 2 : -1;
    if (rank >= 0) scored.push([rank, -(e.degree || 0), e.id, e]);
  }
  scored.sort((a, b) => a[0] - b[0] || a[1] - b[1] || (a[2] < b[2] ? -1 : a[2] > b[2] ? 1 : 0));
  return { query: params.get("q"), total: scored.length, items: scored.slice(0, parseInt(params.get("limit") || "20", 10)).map((x) => x[3]) };
}

function banner(msg, error = false) {
  const b = $("#banner");
  b.hidden = !msg; b.replaceChildren(...prose(msg)); b.className = "banner" + (error ? " error" : "");
}
async function guarded(fn) {
  try { banner(""); await fn(); } catch (e) { banner(e.message, true); }
}

// --- routing -------------------------------------------------------------------------------------
const VIEWS = { runs: showRuns, training: showTraining, inference: showInference, tryit: showTryIt,
                experiments: showExperiments, graph: showGraph };
const VIEW_ALIASES = { distribution: "experiments" };  // the view's earlier name: old links still land
function route() {
  const asked = (location.hash.slice(1) || "runs").split("?")[0];
  const view = VIEW_ALIASES[asked] || asked;
  const name = VIEWS[view] ? view : "runs";
  document.querySelectorAll(".view").forEach((s) => { s.hidden = s.id !== `view-${name}`; });
  document.querySelectorAll("#tabs a").forEach((a) => a.classList.toggle("active", a.dataset.view === name));
  guarded(VIEWS[name]);
}

const day = (iso) => (iso ? String(iso).slice(0, 16).replace("T", " ") : "date unknown");
// runs of their own first, then each experiment's arms under it; newest first within each (the
// server sorts), so the list reads like the runs folder's history rather than its alphabet
function runGroups(runs) {
  const own = runs.filter((r) => !r.experiment);
  const byExp = new Map();
  runs.filter((r) => r.experiment).forEach((r) => { if (!byExp.has(r.experiment)) byExp.set(r.experiment, []); byExp.get(r.experiment).push(r); });
  return { own, byExp };
}
const armName = (r) => (r.experiment ? r.name.slice(r.experiment.length + 1) : r.name);
async function loadRuns() {
  const data = await api("/api/runs");
  S.runs = data.runs; S.experiments = data.experiments; S.hint = data.hint; S.runsDir = data.runs_dir;
  const sel = $("#run-select");
  const keep = S.run || localStorage.getItem("kgreason.run");
  const { own, byExp } = runGroups(S.runs);
  const opt = (r) => el("option", { value: r.name, text: `${armName(r)} · ${day(r.created)}${r.has_kg ? "" : " · no KG"}` });
  sel.replaceChildren(...(own.length ? [el("optgroup", { label: "runs" }, own.map(opt))] : []),
    ...[...byExp.entries()].map(([exp, arms]) => el("optgroup", { label: `experiment ${exp}` }, arms.map(opt))));
  S.run = S.runs.find((r) => r.name === keep) ? keep : data.default;
  if (S.run) sel.value = S.run;
}
function needRun(container) {
  if (S.run) return true;
  container.replaceChildren(el("div", { class: "empty" }, prose(S.hint || "No runs found. Make one with `kgreason run`.")));
  return false;
}

// --- Runs ----------------------------------------------------------------------------------------
async function showRuns() {
  await loadRuns();
  $("#runs-dir").textContent = `runs folder: ${S.runsDir} · ${S.runs.length} run(s), ${S.experiments.length} experiment(s)`;
  const empty = $("#runs-empty");
  empty.hidden = !!S.runs.length;
  empty.replaceChildren(...prose(S.hint || "No runs found in this folder. Make one with `kgreason run`."));
  $("#runs-table").hidden = !S.runs.length;
  const row = (r) => el("tr", { "data-run": r.name, class: (r.name === S.run ? "selected" : "") + (r.experiment ? " arm" : "") },
    el("td", {}, el("input", { type: "checkbox", checked: S.compare.has(r.name) ? "checked" : null,
      onclick: (ev) => { ev.stopPropagation(); ev.target.checked ? S.compare.add(r.name) : S.compare.delete(r.name);
                         $("#compare-btn").disabled = S.compare.size < 2; } })),
    el("td", {}, el("a", { href: "#runs", onclick: (ev) => { ev.preventDefault(); selectRun(r.name); } }, armName(r)),
      r.has_kg ? null : el("span", { class: "badge bad", text: "no KG" }),
      // a run whose table is no result (evaluate/diagnosis.py): flagged, the problems on hover
      (r.problems || []).length ? el("span", { class: "badge bad", "data-testid": "run-problem",
        title: r.problems.map((p) => p.text).join("; "), text: "needs attention" }) : null),
    el("td", { class: "date", text: day(r.created) }),
    el("td", { text: r.model || "?" }),
    el("td", {}, r.phases.map((p) => el("span", { class: "badge" + (p.done ? "" : " bad") },
      `${p.phase}${p.accuracy !== undefined ? " " + pct(p.accuracy) : ""}`))),
    el("td", { class: "evals" }, (r.evals || []).map((e) => el("div", {}, el("b", { text: e.phase }), ` ${interval(e.accuracy)} `, unreadable(e), lettersBox(e.letters))),
      baseline(r.evals) ? el("div", { class: "refline" }, refsBox(baseline(r.evals))) : null));
  const { own, byExp } = runGroups(S.runs);
  const expTitle = (name) => { const e = S.experiments.find((x) => x.name === name); return e ? `${e.title} · ${day(e.created)}` : name; };
  $("#runs-table tbody").replaceChildren(...own.map(row),
    ...[...byExp.entries()].flatMap(([exp, arms]) => [
      el("tr", { class: "group", "data-experiment": exp }, el("td", { colspan: 6 }, el("b", { text: "experiment " }), expTitle(exp),
        el("span", { class: "muted", text: ` · ${arms.length} arm run(s)` }))),
      ...arms.map(row)]));
  $("#compare-btn").disabled = S.compare.size < 2;
  if (S.run) await showRunDetail(S.run);
  else showHeadline(null, null);
  await showExperimentHeadline();
}
async function showRunDetail(name) {
  const d = await api("/api/run?" + q({ run: name }));
  $("#run-detail-title").textContent = `${name} — ${d.task_files.length} task file(s), adapters: ${d.adapters.join(", ") || "none"}, eval: ${d.eval_phases.join(", ") || "none"}`;
  $("#run-config").textContent = JSON.stringify(d.config, null, 2);
  // report_html is rendered and sanitised on the server (serve/report.py): no raw HTML, no scripts
  const rep = $("#run-report");
  rep.hidden = !d.report_html;
  rep.innerHTML = d.report_html || "";
  $("#run-summary").textContent = d.summary ? JSON.stringify(d.summary, null, 2) : "no summary.json yet";
  showHeadline(name, d.headline);
}
// The landing page opens with the result: the sentence `kgreason run` printed last (report.md's
// first line too) and a chart of the figures it rests on, for the run shown (the newest by default)
function showHeadline(name, h) {
  const box = $("#headline");
  box.hidden = !h && !S.experiments.length;
  $("#headline-title").hidden = $("#headline-sentence").hidden = box.querySelector(".headline-chart").hidden = !h;
  if (!h) { $("#headline-diagnosis").hidden = true; return; }
  $("#headline-title").textContent = `Run ${name}`;
  $("#headline-sentence").textContent = h.sentence;
  const why = $("#headline-diagnosis");
  why.hidden = !h.diagnosis;
  why.replaceChildren(...(h.diagnosis ? [el("b", { text: "What went wrong: " }), ...prose(h.diagnosis.paragraph)] : []));
  box.querySelector(".headline-chart").hidden = !h.phases.length;
  if (h.phases.length) headlineChart("chart-headline", h);
}
async function showExperimentHeadline() {
  // the newest experiment's answer, one sentence per compared arm, as its report.md starts
  const box = $("#headline-exp");
  const exp = S.experiments[0];
  if (!exp) { box.replaceChildren(); return; }
  const d = await api("/api/experiment?" + q({ name: exp.name })).catch(() => null);
  const answers = (d && d.answers) || [];
  box.replaceChildren(el("h3", {}, "Experiment ", el("a", { href: "#experiments", text: exp.title || exp.name })),
    answers.length ? el("ul", { class: "sentences" }, answers.map((a) => el("li", { text: a })))
      : el("p", { class: "muted", text: d ? "No arm of it has finished against the arm it is compared to yet."
                                           : "This experiment's results could not be read." }));
}
function selectRun(name) {
  S.run = name; localStorage.setItem("kgreason.run", name); $("#run-select").value = name;
  S.train.offset = 0; S.inf.offset = 0; S.train.phase = ""; S.kgTrail = [];
  route();
}
async function compareRuns() {
  const names = [...S.compare];
  const details = await Promise.all(names.map((n) => api("/api/run?" + q({ run: n }))));
  const phases = [...new Set(details.flatMap((d) => (d.evals || []).map((e) => e.phase)))];
  const cell = (d, ph) => { const e = (d.evals || []).find((x) => x.phase === ph); return e ? interval(e.accuracy) : "—"; };
  const refRow = (label, pick) => el("tr", { class: "ref" }, el("td", { text: label }), details.map((d) => {
    const b = baseline(d.evals); const v = b ? pick(b) : null;
    return el("td", { text: v ? v : "—" });
  }));
  const table = el("table", { class: "grid", "data-testid": "compare-table" },
    el("thead", {}, el("tr", {}, el("th", { text: "held-out eval" }), names.map((n) => el("th", { text: n })))),
    el("tbody", {}, phases.map((ph) => el("tr", {}, el("td", { text: `${ph} accuracy [95% CI]` }), details.map((d) => el("td", { text: cell(d, ph) })))),
      refRow("strongest shortcut", (b) => b.strongest_shortcut ? `${b.strongest_shortcut.name}: ${interval(b.strongest_shortcut.accuracy)}` : null),
      refRow("KG oracle", (b) => b.oracle ? interval(b.oracle) : null),
      phases.map((ph) => el("tr", {}, el("td", { text: `${ph} answer letters` }), details.map((d) => {
        const e = (d.evals || []).find((x) => x.phase === ph); return el("td", {}, e ? lettersBox(e.letters) : "—");
      }))),
      el("tr", {}, el("td", { text: "model" }), details.map((d) => el("td", { text: d.model || "?" })))));
  $("#runs-compare").replaceChildren(el("h3", { text: "Held-out accuracy by phase" }), table);
}

// --- charts --------------------------------------------------------------------------------------
const COLORS = ["#0969da", "#cf222e", "#1a7f37", "#bf8700", "#8250df", "#57606a", "#e16f24", "#0a3069"];
// one chart per scale: a loss (0-4) on an accuracy axis (0-1) flattened the accuracies, so each
// chart has its own axes, with a second y axis ("y1", right) only where two scales belong together
function lineChart(id, title, datasets, axes = {}, xTitle = "step") {
  if (S.charts[id]) S.charts[id].destroy();
  const scales = { x: { type: "linear", title: { display: true, text: xTitle } } };
  for (const [k, v] of Object.entries(axes)) scales[k] = { title: { display: true, text: v.title }, min: v.min, max: v.max, position: k === "y1" ? "right" : "left", grid: { drawOnChartArea: k !== "y1" } };
  S.charts[id] = new Chart(document.getElementById(id), {
    type: "line",
    data: { datasets: datasets.map((d, i) => ({ borderColor: COLORS[i % COLORS.length], backgroundColor: COLORS[i % COLORS.length],
      pointRadius: 2, borderWidth: 1.5, tension: 0.1, parsing: false, ...d })) },
    options: { animation: false, maintainAspectRatio: false, scales,
      plugins: { title: { display: true, text: title }, legend: { labels: { boxWidth: 10 } } } },
  });
}

// --- Training ------------------------------------------------------------------------------------
// One chart per training phase, each on its own x axis (SFT and GRPO: optimizer steps; RSFT:
// rounds), shares in % on the left and the one quantity the phase optimises (loss or mean sampled
// reward) dashed on the right; at most five series a chart, each its own colour. Sampled answers
// are averaged per round (RSFT) or over a sliding window of steps (GRPO): one question's k samples
// alone are noise.
const ROUND_PHASES = ["rsft"];  // phases that train in rounds: their charts are per round, one round included
const roundOf = (name, phase) => (name === phase ? 0 : parseInt(name.slice(phase.length + " round ".length), 10));
function seriesOf(curves, phase) {
  // metrics.jsonl series of a phase, whatever rounds it was split into: {key: [[x, y]...]}, x the
  // step (one round) or the round (several: the round's last value)
  const names = Object.keys(curves.metrics).filter((n) => (n === phase || n.startsWith(phase + " round ")) && !n.endsWith(" sampling"));
  const byRound = ROUND_PHASES.includes(phase) || names.length > 1 || (names[0] && names[0] !== phase);
  const out = {};
  for (const n of names) for (const [key, pts] of Object.entries(curves.metrics[n])) {
    if (!pts.length) continue;
    (out[key] = out[key] || []).push(...(byRound ? [[roundOf(n, phase), pts[pts.length - 1][1]]] : pts));
  }
  for (const pts of Object.values(out)) pts.sort((a, b) => a[0] - b[0]);
  return { series: out, byRound };
}
function sampledMeans(points, byRound) {
  // [{x, accuracy, faithful, reward}]: per round, or a trailing mean over a tenth of the steps
  const w = (p) => p.n || 1;
  const mean = (ps, k) => ps.reduce((a, p) => a + w(p) * (p[k] ?? 0), 0) / (ps.reduce((a, p) => a + w(p), 0) || 1);
  const rounds = [...new Set(points.map((p) => p.round))];
  if (byRound || rounds.length > 1) {
    return rounds.sort((a, b) => a - b).map((r) => { const ps = points.filter((p) => p.round === r);
      return { x: r, accuracy: mean(ps, "accuracy"), faithful: mean(ps, "faithful"), reward: mean(ps, "mean_reward") }; });
  }
  const win = smoothingWindow(points.length);
  return points.map((p, i) => { const ps = points.slice(Math.max(0, i - win + 1), i + 1);
    return { x: p.step, accuracy: mean(ps, "accuracy"), faithful: mean(ps, "faithful"), reward: mean(ps, "mean_reward") }; });
}
// a trailing mean over a tenth of the steps, at least 2 once there are 6 steps to smooth
const smoothingWindow = (n) => (n >= 6 ? Math.max(2, Math.round(n / 10)) : 1);
function phaseChartSets(curves, phase) {
  const { series, byRound } = seriesOf(curves, phase);
  const pts = (key, k = 100) => (series[key] || []).map(([x, y]) => ({ x, y: k * y }));
  const points = curves.episodes[phase] || [], win = smoothingWindow(points.length);
  const sampled = sampledMeans(points, byRound);
  const smooth = byRound || new Set(points.map((p) => p.round)).size > 1 ? "per round" : win > 1 ? `mean of ${win} steps` : "per step";
  const sets = [];
  // the held-out probe first and thick: it is what the reward is meant to move, so reward
  // hacking shows as the two lines parting (kgreason.train.probe)
  if (series["probe/accuracy"]) sets.push({ label: "held-out probe: accuracy %", data: pts("probe/accuracy"), borderWidth: 3 });
  if (series["probe/faithful"]) sets.push({ label: "held-out probe: faithful %", data: pts("probe/faithful"), borderWidth: 3 });
  if (sampled.length) {
    sets.push({ label: `sampled answers: accuracy % (${smooth})`, data: sampled.map((p) => ({ x: p.x, y: 100 * p.accuracy })) });
    sets.push({ label: `sampled answers: faithful % (${smooth})`, data: sampled.map((p) => ({ x: p.x, y: 100 * p.faithful })) });
    sets.push({ label: `mean sampled reward (${smooth})`, data: sampled.map((p) => ({ x: p.x, y: p.reward })), yAxisID: "y1", borderDash: [5, 4] });
  } else {
    if (series.mean_token_accuracy) sets.push({ label: "token accuracy %", data: pts("mean_token_accuracy") });
    const loss = series.loss ? "loss" : series.train_loss ? "train_loss" : null;
    if (loss) sets.push({ label: "training loss", data: pts(loss, 1), yAxisID: "y1", borderDash: [5, 4] });
  }
  return { sets: sets.slice(0, 5), right: sampled.length ? "mean reward" : "loss", x: byRound ? "round" : "optimizer step" };
}
async function showTraining() {
  const detail = $("#train-detail");
  if (!needRun(detail)) return;
  const [curves, run] = await Promise.all([api("/api/curves?" + q({ run: S.run })), api("/api/run?" + q({ run: S.run }))]);
  const box = $("#train-charts");
  box.querySelectorAll(".chart.phase").forEach((c) => { const id = c.querySelector("canvas").id; if (S.charts[id]) { S.charts[id].destroy(); delete S.charts[id]; } c.remove(); });
  const known = new Set([...Object.keys(curves.metrics).map((n) => n.split(" round ")[0].replace(/ sampling$/, "")), ...Object.keys(curves.episodes)]);
  const order = curves.phase_order || [];  // the server's table of training phases (kgreason/phases.py)
  const phases = [...order.filter((p) => known.has(p)), ...[...known].filter((p) => !order.includes(p)).sort()];
  for (const phase of phases) {
    const { sets, right, x } = phaseChartSets(curves, phase);
    if (!sets.length) continue;
    const id = `chart-train-${phase}`;
    box.insertBefore(el("div", { class: "chart phase", "data-phase": phase }, el("canvas", { id })), box.lastElementChild);
    lineChart(id, `${phase}: training`, sets, { y: { title: "% of answers", min: 0, max: 100 }, y1: { title: right } }, x);
  }
  evalChart("chart-eval", run.evals || []);
  await loadGroups();
}
// shares are drawn in % everywhere (the tables print %): an interval record scaled alike
// (a missing share, NaN sent as null, stays null: no bar, rather than a 0% one)
const finite = (x) => typeof x === "number" && Number.isFinite(x);
const P = (iv) => (iv && typeof iv === "object" && finite(iv.mean)
  ? { ...iv, mean: 100 * iv.mean, low: finite(iv.low) ? 100 * iv.low : undefined, high: finite(iv.high) ? 100 * iv.high : undefined } : null);
const P1 = (x) => (finite(x) ? 100 * x : x && typeof x === "object" && finite(x.mean) ? 100 * x.mean : null);
// held-out accuracy per phase with its interval, beside the strongest shortcut and the oracle
function evalChart(id, evals) {
  if (S.charts[id]) S.charts[id].destroy();
  const labels = evals.map((e) => e.phase);
  const ref = baseline(evals) || {};
  const sc = ref.strongest_shortcut;
  const datasets = [{ label: "held-out accuracy", backgroundColor: COLORS[0] + "cc", data: evals.map((e) => P1(e.accuracy)),
                      intervals: evals.map((e) => P(e.accuracy)) }];
  if (sc) datasets.push({ type: "line", label: `strongest shortcut (${sc.name})`, data: evals.map(() => P1(sc.accuracy)), borderColor: COLORS[1], borderDash: [5, 4], pointRadius: 0, borderWidth: 1.5 });
  if (ref.oracle) datasets.push({ type: "line", label: "KG oracle", data: evals.map(() => P1(ref.oracle)), borderColor: COLORS[2], borderDash: [2, 3], pointRadius: 0, borderWidth: 1.5 });
  S.charts[id] = new Chart(document.getElementById(id), {
    type: "bar", plugins: [errorBars], data: { labels, datasets },
    options: { animation: false, maintainAspectRatio: false, scales: { y: { min: 0, max: 100, title: { display: true, text: "accuracy % (95% CI)" } } },
      plugins: { title: { display: true, text: evals.length ? "Held-out evaluation by phase" : "Held-out evaluation: none yet" }, legend: { labels: { boxWidth: 10 } } } },
  });
}
// the landing page's chart: what the headline sentence says, drawn (evaluate/headline.py)
function headlineChart(id, h) {
  if (S.charts[id]) S.charts[id].destroy();
  const labels = h.phases.map((p) => p.phase);
  const flat = (label, y, color, dash) => ({ type: "line", label, data: labels.map(() => y), borderColor: color, backgroundColor: color,
                                             borderDash: dash, pointRadius: 0, borderWidth: 1.5 });
  const datasets = [
    { label: "held-out accuracy % (95% CI)", backgroundColor: COLORS[0] + "cc", data: h.phases.map((p) => P1(p.accuracy)), intervals: h.phases.map((p) => P(p.accuracy)) },
    { label: "faithful traces %", backgroundColor: COLORS[2] + "99", data: h.phases.map((p) => P1(p.faithful)), intervals: h.phases.map((p) => P(p.faithful)) },
  ];
  if (h.shortcut) datasets.push(flat(`strongest shortcut (${h.shortcut.name})`, P1(h.shortcut.accuracy), COLORS[1], [5, 4]));
  if (h.chance !== null && h.chance !== undefined) datasets.push(flat("chance", 100 * h.chance, COLORS[5], [2, 2]));
  if (h.oracle) datasets.push(flat("KG oracle", P1(h.oracle), COLORS[4], [8, 3]));
  S.charts[id] = new Chart(document.getElementById(id), {
    type: "bar", plugins: [errorBars], data: { labels, datasets },
    options: { animation: false, maintainAspectRatio: false, scales: { y: { min: 0, max: 100, title: { display: true, text: "% of held-out items" } } },
      plugins: { title: { display: true, text: `Held-out ${h.hops.length ? h.hops[0] + "-" + h.hops[h.hops.length - 1] + " hop " : ""}items, by phase` },
                 legend: { labels: { boxWidth: 10 } } } },
  });
}
async function loadGroups() {
  const t = S.train;
  const page = await api("/api/episodes?" + q({ run: S.run, phase: t.phase, offset: t.offset, limit: t.limit }));
  const sel = $("#train-phase");
  sel.replaceChildren(el("option", { value: "", text: "all phases" }),
    ...page.phases.map((p) => el("option", { value: p.phase, text: `${p.phase} (${p.groups} questions, ${p.episodes} samples)` })));
  sel.value = t.phase;
  const pages = Math.max(1, Math.ceil(page.total / t.limit));
  $("#train-page").textContent = `${page.total} question groups · page ${Math.floor(t.offset / t.limit) + 1} of ${pages}`;
  $("#train-prev").disabled = t.offset === 0;
  $("#train-next").disabled = t.offset + t.limit >= page.total;
  const body = $("#train-groups tbody");
  body.replaceChildren(...page.items.map((g) => el("tr", { onclick: (ev) => { markRow(ev.currentTarget); guarded(() => showGroup(g)); } },
    el("td", { text: g.phase }), el("td", { text: g.round }), el("td", { text: g.step }), el("td", { text: g.task_id }),
    el("td", { text: `${g.correct} / ${g.k}` }), el("td", { text: num(g.best_reward) }), el("td", { text: num(g.mean_reward) }))));
  if (!page.total) $("#train-detail").replaceChildren(el("div", { class: "empty", text: "This run has no episodes yet (they appear while RSFT/GRPO samples)." }));
}
function markRow(tr) { tr.parentElement.querySelectorAll("tr").forEach((r) => r.classList.toggle("selected", r === tr)); }

// `gold`: mark the right option; Try It leaves it out until the model has answered
function questionBox(task, gold = true) {
  const opts = task.options || {};
  const right = (k) => gold && k === task.answer_star;
  return el("div", { class: "question" },
    el("div", {}, el("b", { text: task.id || "" }), task.hop_len ? ` · ${task.hop_len} hop(s)` : "", task.missing ? ` · ${task.missing}` : ""),
    el("div", { text: task.question || "" }),
    // free form offers no options: the answer is a name, shown once the gold may be shown
    Object.keys(opts).length
      ? el("ol", {}, Object.entries(opts).map(([k, v]) => el("li", { class: right(k) ? "gold" : "" }, `${v}${right(k) ? "  ✓ gold" : ""}`)))
      : el("div", { class: gold && task.answer_label ? "gold" : "muted",
                    text: gold && task.answer_label ? `answer: ${task.answer_label}  ✓ gold` : "free form: the model names the entity" }));
}
function hopList(hops, graph) {
  const label = (id) => (graph && graph.nodes ? (graph.nodes.find((n) => n.id === id) || {}).label : null) || id;
  const phrase = (r) => (graph && graph.phrases && graph.phrases[r]) || r || "(no relation named)";
  if (!hops || !hops.length) return el("div", { class: "muted", text: "no hops claimed" });
  return el("ul", { class: "hops" }, hops.map((h) => el("li", { class: h.valid ? "hop-true" : "hop-false" },
    `${h.valid ? "✓ true" : "✗ false"}: ${label(h.head)} ${phrase(h.relation)} ${label(h.tail)}`)));
}
function rewardCard(ep, graph, onSelect) {
  const r = ep.reward || {};
  // each field once: the reward's terms, then the raw measures no term already names (a
  // "coverage" term and the raw path coverage used to both read "coverage", with two values)
  const comps = Object.entries(r.components || {}).map(([k, v]) => `${k} ${num(v)}`).join(" + ");
  const named = new Set(Object.keys(r.components || {}).map((k) => k.replace(/_penalty$/, "").replace(/^path_/, "")));
  const raw = [["coverage", `path coverage ${num(r.path_coverage)}`], ["valid_hops", `valid hops ${r.valid_hops ?? 0}/${(r.claimed_hops || []).length}`],
               ["repetition", `repetition ${num(r.repetition)}`]].filter(([k]) => !named.has(k)).map(([, t]) => t);
  return el("div", { class: "card", onclick: onSelect },
    el("div", {}, el("b", { text: `#${ep.sample_index}  reward ${num(r.total)}` }), " ",
      el("span", { class: "badge " + (r.correct ? "ok" : "bad"), text: r.correct ? "correct" : "wrong" }),
      el("span", { class: "badge " + (r.faithful ? "ok" : "bad"), text: r.faithful ? "faithful" : "unfaithful" }),
      r.format_ok === false ? el("span", { class: "badge bad", text: "unparseable" }) : null,
      ep.kept ? el("span", { class: "badge kept", text: "kept" }) : null),
    el("pre", { text: ep.completion }),
    el("div", { class: "muted", "data-testid": "card-fields", text: [`answer ${r.answer ?? "—"}`, ...raw].join(" · ") + (comps ? ` · reward terms: ${comps}` : "") }),
    hopList(r.claimed_hops, graph));
}
async function showGroup(g) {
  // the previous group's details go first: a group missing from a static copy must not leave
  // another question's samples on screen under the error banner
  if (S.cys["train-cy"]) { S.cys["train-cy"].destroy(); delete S.cys["train-cy"]; }
  $("#train-detail").replaceChildren(el("div", { class: "muted", text: "loading…" }));
  const d = await api("/api/episode-group?" + q({ run: S.run, phase: g.phase, round: g.round, step: g.step, task_id: g.task_id }))
    .catch((e) => { $("#train-detail").replaceChildren(); throw e; });
  const cyBox = el("div", { class: "cy", id: "train-cy" });
  const cards = el("div", { class: "cards", "data-testid": "completions" });
  const select = (i) => {
    cards.querySelectorAll(".card").forEach((c, j) => c.classList.toggle("selected", i === j));
    drawPath("train-cy", d.graph, d.episodes[i] ? d.episodes[i].reward.claimed_hops : []);
  };
  d.episodes.forEach((ep, i) => cards.append(rewardCard(ep, d.graph, () => select(i))));
  $("#train-detail").replaceChildren(questionBox(d.task),
    el("div", { class: "legend muted" }, el("span", { text: "gold path: thick amber" }), el("span", { text: "trace hop true: green" }),
      el("span", { text: "trace hop false: dashed red" })),
    cyBox, el("h4", { text: `${d.episodes.length} sampled completions (best first)` }), cards);
  select(0);
}

// --- graph drawing -------------------------------------------------------------------------------
const CY_STYLE = [
  { selector: "node", style: { label: "data(label)", "font-size": 9, "background-color": "#8c959f", width: 14, height: 14, "text-valign": "bottom", "text-margin-y": 3 } },
  { selector: "node.gold", style: { "background-color": "#bf8700", width: 18, height: 18 } },
  { selector: "node.start", style: { shape: "diamond", "background-color": "#0969da", width: 22, height: 22 } },
  { selector: "node.answer", style: { shape: "star", "background-color": "#1a7f37", width: 24, height: 24 } },
  { selector: "node.option", style: { "border-width": 2, "border-color": "#8250df" } },
  { selector: "node.trace", style: { "border-width": 3, "border-color": "#cf222e" } },
  { selector: "node.center", style: { "background-color": "#0969da", width: 24, height: 24 } },
  { selector: "edge", style: { width: 1, "line-color": "#d0d7de", "target-arrow-color": "#d0d7de", "target-arrow-shape": "triangle", "curve-style": "bezier", label: "data(label)", "font-size": 7, color: "#57606a",
                                "text-rotation": "autorotate", "text-background-color": "#ffffff", "text-background-opacity": 0.85, "text-background-padding": 1 } },
  // ring labels point away from the centre, so neighbouring labels extend apart instead of into each other
  { selector: "node.lbl-right", style: { "text-valign": "center", "text-halign": "right", "text-margin-x": 4, "text-margin-y": 0 } },
  { selector: "node.lbl-left", style: { "text-valign": "center", "text-halign": "left", "text-margin-x": -4, "text-margin-y": 0 } },
  { selector: "node.lbl-top", style: { "text-valign": "top", "text-halign": "center", "text-margin-y": -3 } },
  { selector: "edge.gold", style: { width: 4, "line-color": "#d4a72c", "target-arrow-color": "#d4a72c" } },
  { selector: "edge.claim-true", style: { width: 2.5, "line-color": "#1a7f37", "target-arrow-color": "#1a7f37" } },
  { selector: "edge.claim-false", style: { width: 2.5, "line-color": "#cf222e", "target-arrow-color": "#cf222e", "line-style": "dashed" } },
];
function drawPath(containerId, graph, claimed) {
  const box = document.getElementById(containerId);
  if (!box) return;
  if (!graph || !graph.nodes || !graph.nodes.length) { box.replaceChildren(el("div", { class: "muted", text: graph && graph.missing ? graph.missing : "no graph" })); return; }
  const phrase = (r) => (graph.phrases && graph.phrases[r]) || r || "?";
  const traceNodes = new Set((claimed || []).flatMap((h) => [h.head, h.tail]));
  const els = graph.nodes.map((n) => ({ data: { id: n.id, label: n.label || n.id },
    classes: [n.gold ? "gold" : "", n.option ? "option" : "", n.id === graph.start ? "start" : "", n.id === graph.answer ? "answer" : "", traceNodes.has(n.id) ? "trace" : ""].join(" ") }));
  // a trace may name entities outside the drawn neighbourhood; cytoscape refuses an edge to a
  // node it does not have, so they are added (labelled by id) rather than failing the drawing
  const have = new Set(graph.nodes.map((n) => n.id));
  traceNodes.forEach((id) => { if (id && !have.has(id)) { have.add(id); els.push({ data: { id, label: id }, classes: "trace" }); } });
  graph.edges.forEach((e, i) => els.push({ data: { id: `e${i}`, source: e.src, target: e.dst, label: e.gold ? phrase(e.rel) : "" }, classes: e.gold ? "gold" : "" }));
  (claimed || []).forEach((h, i) => {
    if (!h.head || !h.tail) return;
    els.push({ data: { id: `c${i}`, source: h.head, target: h.tail, label: `${h.valid ? "✓" : "✗"} ${phrase(h.relation)}` }, classes: h.valid ? "claim-true" : "claim-false" });
  });
  if (S.cys[containerId]) S.cys[containerId].destroy();
  S.cys[containerId] = cytoscape({ container: box, elements: els, style: CY_STYLE, maxZoom: 1.6,
    layout: { name: "breadthfirst", directed: true, roots: graph.start ? [graph.start] : undefined, spacingFactor: 0.9, animate: false } });
  spreadRows(S.cys[containerId]);
}
// The breadth-first layout puts each depth on one row and spaces nodes, not their labels: long
// entity names under neighbouring nodes ran into each other. Each row is spread left to right
// until no two labels touch, then the drawing is refitted.
function spreadRows(cy) {
  const box = (n) => n.boundingBox({ includeLabels: true, includeOverlays: false });
  const rows = [];  // nodes within a few pixels of the same height share a row
  cy.nodes().toArray().sort((a, b) => a.position().y - b.position().y).forEach((n) => {
    const last = rows[rows.length - 1];
    if (last && Math.abs(last[0].position().y - n.position().y) < 6) last.push(n); else rows.push([n]);
  });
  for (const row of rows) {
    row.sort((a, b) => a.position().x - b.position().x);
    for (let i = 1; i < row.length; i++) {
      const gap = box(row[i - 1]).x2 + 8 - box(row[i]).x1;
      if (gap > 0) for (let j = i; j < row.length; j++) row[j].position({ x: row[j].position().x + gap, y: row[j].position().y });
    }
  }
  // a label that still reaches into the row below (a long name over a big star) moves that node down
  const hit = (a, b) => a.x1 < b.x2 && b.x1 < a.x2 && a.y1 < b.y2 && b.y1 < a.y2;
  const nodes = cy.nodes().toArray();
  for (let pass = 0; pass < 20; pass++) {
    let moved = false;
    for (let i = 0; i < nodes.length; i++) for (let j = i + 1; j < nodes.length; j++) {
      const [a, b] = [box(nodes[i]), box(nodes[j])];
      if (!hit(a, b)) continue;
      const [up, down] = nodes[i].position().y <= nodes[j].position().y ? [a, nodes[j]] : [b, nodes[i]];
      const lower = box(down);
      down.position({ x: down.position().x, y: down.position().y + (up.y2 - lower.y1) + 4 });
      moved = true;
    }
    if (!moved) break;
  }
  cy.fit(undefined, 20);
}

// --- Inference -----------------------------------------------------------------------------------
async function showInference() {
  const box = $("#inf-items");
  if (!needRun(box)) return;
  const ev = await api("/api/eval?" + q({ run: S.run }));
  const phases = ev.phases.filter((p) => p.has_predictions);
  if (!phases.length) { box.replaceChildren(el("div", { class: "empty", text: "This run has no evaluation predictions yet (eval/<phase>/predictions.jsonl)." })); $("#inf-cols").replaceChildren(); return; }
  const chosen = S.inf.cols && S.inf.run === S.run ? S.inf.cols : phases.map((p) => p.phase);
  S.inf.run = S.run; S.inf.cols = chosen;
  $("#inf-cols").replaceChildren("compare: ", ...phases.map((p) => el("label", {}, el("input", { type: "checkbox", value: p.phase, checked: chosen.includes(p.phase) ? "checked" : null,
    onchange: () => { S.inf.cols = [...document.querySelectorAll("#inf-cols input:checked")].map((i) => i.value); S.inf.offset = 0; guarded(loadInference); } }), ` ${p.phase} `)));
  $("#inf-metrics").replaceChildren(el("table", { class: "grid", "data-testid": "inf-metrics" },
    el("thead", {}, el("tr", {}, el("th", { text: "phase" }), el("th", { text: "accuracy [95% CI]" }), el("th", { text: "by hop" }),
      el("th", { text: "answer letters" }), el("th", { text: "strongest shortcut" }), el("th", { text: "KG oracle" }))),
    el("tbody", {}, phases.map((p) => el("tr", {}, el("td", { text: p.phase }), el("td", { text: interval(p.metrics && p.metrics.accuracy) }),
      el("td", { text: Object.entries((p.metrics && p.metrics.by_hop) || {}).map(([h, iv]) => `${h}: ${interval(iv)}`).join(" · ") }),
      el("td", {}, lettersBox(p.letters)),
      el("td", { text: p.strongest_shortcut ? `${p.strongest_shortcut.name}: ${interval(p.strongest_shortcut.accuracy)}` : "not recorded" }),
      el("td", { text: p.oracle ? interval(p.oracle) : "not recorded" }))))));
  await loadInference();
}
async function loadInference() {
  const box = $("#inf-items");
  if (!S.inf.cols.length) { box.replaceChildren(el("div", { class: "empty", text: "Pick at least one phase." })); return; }
  const params = new URLSearchParams();
  S.inf.cols.forEach((c) => params.append("col", `${S.run}::${c}`));
  params.set("offset", S.inf.offset); params.set("limit", S.inf.limit);
  const hop = $("#inf-hop").value; if (hop) params.set("hop", hop);
  const d = await api("/api/inference?" + params);
  const pages = Math.max(1, Math.ceil(d.total / S.inf.limit));
  $("#inf-page").textContent = `${d.total} eval items · page ${Math.floor(S.inf.offset / S.inf.limit) + 1} of ${pages}`;
  $("#inf-prev").disabled = S.inf.offset === 0; $("#inf-next").disabled = S.inf.offset + S.inf.limit >= d.total;
  const names = { nodes: Object.entries(d.labels || {}).map(([id, label]) => ({ id, label })), phrases: d.phrases || {} };
  box.replaceChildren(...d.items.map((it) => el("div", { class: "inf-item" }, questionBox(it.task),
    el("div", { class: "cols", style: `grid-template-columns: repeat(${d.columns.length}, 1fr)` },
      d.columns.map((c, i) => {
        const a = it.answers[i];
        if (!a) return el("div", { class: "card" }, el("b", { text: c.phase }), el("div", { class: "muted", text: "not answered" }));
        return el("div", { class: "card" }, el("div", {}, el("b", { text: c.phase }), " ",
          el("span", { class: "badge " + (a.correct ? "ok" : "bad"), text: `${a.answer ?? "—"} ${a.correct ? "correct" : "wrong"}` }),
          el("span", { class: "badge " + (a.faithful ? "ok" : "bad"), text: a.faithful ? "faithful" : "unfaithful" })),
          el("pre", { text: a.completion }), hopList(a.claimed_hops, names));
      })))));
  // the hop filter's options come after the items so the page text and the items appear together
  const hopSel = $("#inf-hop");
  if (hopSel.options.length <= 1) {
    const t = await api("/api/tasks?" + q({ run: S.run, file: "eval", limit: 1 })).catch(() => ({ hops: [] }));
    (t.hops || []).forEach((h) => hopSel.append(el("option", { value: h, text: `${h}` })));
  }
}

// --- Try It --------------------------------------------------------------------------------------
let relations = [];
async function showTryIt() {
  const status = $("#try-status");
  if (window.KGREASON_STATIC) {  // a static copy has no model server behind it
    $("#try-question").replaceChildren(el("div", { class: "empty", "data-testid": "try-unavailable",
      text: "Try It is unavailable in this static copy: live answers need a model server. Run `kgreason serve --runs RUNS` to ask the models." }));
    document.querySelectorAll("#view-tryit button, #view-tryit input, #view-tryit select").forEach((x) => { x.disabled = true; });
    return;
  }
  if (!needRun($("#try-result"))) return;
  const [models, tasks, kg, run] = await Promise.all([
    api("/api/models?" + q({ run: S.run })),
    api("/api/tasks?" + q({ run: S.run, file: "eval", limit: 200 })).catch(() => ({ items: [] })),
    api("/api/kg?" + q({ run: S.run })).catch(() => ({ relations: [] })),
    api("/api/run?" + q({ run: S.run })).catch(() => ({ config: null })),
  ]);
  const modelSel = $("#try-model"), chosen = S.tryRun === S.run ? modelSel.value : null;
  modelSel.replaceChildren(...models.models.map((m) => el("option", { value: m.id, text: m.label })));
  // a new run opens on its final phase (base answers nothing: 0% on the held-out items) and on the
  // token budget its evaluation used, so an answer is cut where the reported accuracy cut it
  if (chosen && models.models.some((m) => m.id === chosen)) modelSel.value = chosen;
  else if (models.models.length) modelSel.value = models.models[models.models.length - 1].id;
  if (S.tryRun !== S.run) {
    // another run: item ids repeat across runs (eval-00000 ...) but their questions differ, so
    // nothing answered, shown or composed on the last run carries over
    const cfg = (run && run.config && run.config.pipeline) || {};
    $("#try-max").value = Math.min(512, (cfg.eval && cfg.eval.max_new_tokens) || 128);  // the server's cap
    S.tryShown = S.tryAnswered = S.composed = null;
    clearGraph("try-graph"); $("#try-result").replaceChildren(); $("#try-answer").textContent = "";
    $("#try-answer").hidden = true; $("#try-status").textContent = ""; $("#try-status").classList.remove("warn");
  }
  S.tryRun = S.run;
  if (!models.models.length) status.textContent = "this run's config.json names no model";
  $("#try-item").replaceChildren(...tasks.items.map((t) => el("option", { value: t.id, text: `${t.id} · ${t.hop_len} hops · ${(t.question || "").slice(0, 90)}` })));
  S.tryTasks = Object.fromEntries(tasks.items.map((t) => [t.id, t]));
  relations = kg.relations || [];
  if (!$("#try-chain").children.length) { addHop(); addHop(); }
  else $("#try-chain").querySelectorAll("select").forEach(fillRelations);
  showChosenItem();
}
function fillRelations(sel) {
  const v = sel.value;
  sel.replaceChildren(...relations.map((r) => el("option", { value: r.id, text: r.phrase })));
  if (v) sel.value = v;
}
function addHop() {
  const chain = $("#try-chain");
  if (chain.children.length >= 6) return;
  const sel = el("select", { class: "hop" });
  fillRelations(sel);
  if (relations[chain.children.length % Math.max(1, relations.length)]) sel.value = relations[chain.children.length % relations.length].id;
  chain.append(sel);
}
function tryMode() { return document.querySelector("input[name=try-mode]:checked").value; }
function showChosenItem() {
  $("#try-item-box").hidden = tryMode() !== "item";
  $("#try-compose-box").hidden = tryMode() !== "compose";
  if (tryMode() === "item") {
    const t = S.tryTasks && S.tryTasks[$("#try-item").value];
    if (S.tryShown !== $("#try-item").value) {  // another question: the last answer and its graph do not belong to it
      S.tryShown = $("#try-item").value; S.tryAnswered = null;
      clearGraph("try-graph"); $("#try-result").replaceChildren(); $("#try-answer").textContent = ""; $("#try-answer").hidden = true;
      $("#try-status").textContent = ""; $("#try-status").classList.remove("warn");
    }
    $("#try-question").replaceChildren(t ? questionBox(t, S.tryAnswered === $("#try-item").value) : el("span", { class: "muted", "data-testid": "try-no-items",
      text: "This run has no eval items (data/eval.jsonl), so there is nothing to ask; compose a question instead if it has a KG." }));
  } else {
    $("#try-question").replaceChildren(S.composed ? questionBox(S.composed.task, S.tryAnswered === "compose") : el("span", { class: "muted", text: "choose a start entity and a relation chain, then Compose" }));
  }
  updateAsk();
}
// Ask works only with a model and a question: a run without eval items (an experiment arm, say)
// used to offer an empty list with Ask enabled
function updateAsk() {
  const question = tryMode() === "item" ? !!(S.tryTasks && S.tryTasks[$("#try-item").value]) : !!S.composed;
  const model = $("#try-model").options.length > 0;
  $("#try-ask").disabled = !!S.asking || !question || !model;
  $("#try-ask").title = !model ? "this run's config.json names no model" : !question ? "choose or compose a question first" : "";
}
function composeSpec() {
  return { start: $("#try-start").value.trim(), chain: [...document.querySelectorAll("#try-chain select")].map((s) => s.value),
           seed: parseInt($("#try-seed").value || "0", 10) };
}
async function compose() {
  S.composed = null; updateAsk();
  const spec = composeSpec();
  const d = await api("/api/compose", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ run: S.run, ...spec }) });
  S.composed = { ...d, spec };
  S.tryAnswered = null; clearGraph("try-graph"); $("#try-result").replaceChildren(); $("#try-answer").hidden = true;
  showChosenItem();  // the gold answer and its path appear once the model has answered
}
async function searchStart() {
  const v = $("#try-start").value.trim();
  if (!v || !S.run) return;
  const d = await api("/api/kg/search?" + q({ run: S.run, q: v, limit: 20 }));
  $("#try-start-list").replaceChildren(...d.items.map((e) => el("option", { value: e.id, text: `${e.label} (${e.type || "?"})` })));
}
function clearGraph(containerId) {
  if (S.cys[containerId]) { S.cys[containerId].destroy(); delete S.cys[containerId]; }
  const box = document.getElementById(containerId);
  if (box) box.replaceChildren();
}
const NO_TEXT = "The model produced no text: its answer was only blank lines or spaces.";
async function ask() {
  const body = { run: S.run, model: $("#try-model").value, max_new_tokens: parseInt($("#try-max").value, 10),
                 temperature: parseFloat($("#try-temp").value) };
  if (tryMode() === "item") body.task_id = $("#try-item").value;
  else { if (!S.composed) throw new Error("compose a well-posed question first"); body.compose = S.composed.spec; }
  const out = $("#try-answer"), status = $("#try-status");
  out.textContent = ""; out.dataset.chunks = 0; out.classList.remove("no-text", "cut"); out.hidden = false; $("#try-result").replaceChildren();
  // the previous answer's path graph goes now, not when this answer ends
  clearGraph("try-graph");
  const clicked = performance.now();
  status.classList.remove("warn");
  // the question, model and run stay as asked until the answer is in: the verdict, the gold answer
  // and the path graph shown at the end belong to this question
  const locked = ["#try-item", "#try-model", "#run-select", "#try-compose", ...[...document.querySelectorAll("input[name=try-mode]")].map((x) => x)];
  const lock = (on) => locked.forEach((x) => { (typeof x === "string" ? $(x) : x).disabled = on; });
  lock(true);
  S.asking = true; updateAsk();
  const cancel = $("#try-cancel");
  try {
    const job = await api("/api/generate", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    status.textContent = `queued: position ${job.position}`;
    cancel.hidden = false;
    cancel.onclick = () => { cancel.disabled = true; fetch(job.cancel, { method: "DELETE" }); };
    cancel.disabled = false;
    await new Promise((resolve, reject) => {
      const es = new EventSource(job.events);
      es.addEventListener("queued", (e) => { const d = JSON.parse(e.data); status.textContent = d.position ? `queued: ${d.position} ahead of you` : "queued: next"; });
      es.addEventListener("loading", (e) => { const d = JSON.parse(e.data); status.textContent = (d.message || "loading the model") + "…"; });
      es.addEventListener("started", () => { status.textContent = "generating…"; });
      let chunks = 0;
      es.addEventListener("token", (e) => { out.textContent += JSON.parse(e.data).text; out.dataset.chunks = ++chunks; });
      es.addEventListener("done", (e) => {
        es.close(); const d = JSON.parse(e.data);
        const empty = d.empty || !(d.completion || "").trim();
        if (empty) { out.textContent = NO_TEXT; out.classList.add("no-text"); }
        // the time the user waited, model load and queue included, then what generating took
        const waited = ((performance.now() - clicked) / 1000).toFixed(1);
        const load = d.load_seconds > 0.05 ? `, ${d.load_seconds.toFixed(1)}s of it getting the model` : "";
        const cut = d.finish_reason === "length";
        status.textContent = `done in ${waited}s${load}; generating took ${d.seconds}s`
          + (cut ? ` — cut at the ${d.max_new_tokens}-token limit before an answer line ended: raise max tokens` :
             d.finish_reason === "timeout" ? " — stopped at the time limit" :
             d.finish_reason === "eos" && !empty ? " — the model stopped without an answer line" : "") + (empty ? ": no text" : "");
        status.classList.toggle("warn", cut);
        out.classList.toggle("cut", cut);
        S.tryAnswered = tryMode() === "item" ? $("#try-item").value : "compose";
        const t = tryMode() === "item" ? S.tryTasks[$("#try-item").value] : S.composed && S.composed.task;
        if (t) $("#try-question").replaceChildren(questionBox(t, true));
        showTryResult(d).then(resolve, reject);
      });
      es.addEventListener("cancelled", () => { es.close(); status.textContent = "cancelled"; resolve(); });
      es.addEventListener("error", (e) => {
        es.close();
        let msg = "The connection to the server was lost; ask again.";
        try { msg = JSON.parse(e.data).message; } catch (x) { /* a network error: no data */ }
        status.textContent = "error: " + msg; reject(new Error(msg));
      });
    });
  } finally { S.asking = false; lock(false); updateAsk(); cancel.hidden = true; }
}
async function showTryResult(d) {
  const r = d.reward || {};
  let graph = S.composed && tryMode() === "compose" ? S.composed.graph : null;
  if (!graph && tryMode() === "item") {
    const t = S.tryTasks[$("#try-item").value];
    graph = await api("/api/kg/entity?" + q({ run: S.run, id: t.start || (t.path_star && t.path_star.entities[0]), limit: 40 }))
      .then((n) => pathFromTask(t, n)).catch(() => null);
  }
  $("#try-result").replaceChildren(el("div", { "data-testid": "try-verdict" },
    d.finish_reason === "length" ? el("span", { class: "badge bad", "data-testid": "try-cut", text: `cut at ${d.max_new_tokens} tokens` }) : null,
    el("span", { class: "badge " + (r.correct ? "ok" : "bad"), text: r.format_ok === false ? "unparseable" : `answer ${r.answer ?? "—"}: ${r.correct ? "correct" : "wrong"}` }),
    el("span", { class: "badge " + (r.faithful ? "ok" : "bad"), text: r.faithful ? "faithful trace" : "unfaithful trace" }),
    ` reward ${num(r.total)} (${r.preset || ""}) · ${(r.claimed_hops || []).length} claimed hop(s), ${r.valid_hops ?? 0} true in the KG`),
    hopList(r.claimed_hops, graph));
  if (graph) drawPath("try-graph", graph, r.claimed_hops);
}
function pathFromTask(t, n) {
  // the item's own gold path over the start entity's neighbourhood
  const gold = (t.path_star && t.path_star.entities) || [];
  const nodes = new Map(n.nodes.map((x) => [x.id, { ...x }]));
  gold.forEach((g) => { if (!nodes.has(g)) nodes.set(g, { id: g, label: g }); });
  for (const x of nodes.values()) { x.gold = gold.includes(x.id); x.option = Object.values(t.option_ids || {}).includes(x.id); }
  const goldEdges = ((t.path_star && t.path_star.edges) || []).map((e) => ({ ...e, gold: true }));
  const key = (e) => `${e.src}|${e.rel}|${e.dst}`;
  const isGold = new Set(goldEdges.map(key));
  const edges = goldEdges.concat(n.edges.filter((e) => !isGold.has(key(e))).map((e) => ({ ...e, gold: false })));
  const labels = Object.fromEntries(Object.entries(t.option_ids || {}).map(([k, id]) => [id, t.options[k]]));
  for (const x of nodes.values()) if (labels[x.id] && x.label === x.id) x.label = labels[x.id];
  return { nodes: [...nodes.values()], edges, start: gold[0], answer: gold[gold.length - 1], phrases: n.phrases };
}

// --- Experiments (any grid's results.json) ------------------------------------------------------
function armsOf(results) {
  // results.json as the experiment writes it; read defensively (arms as a dict or a list)
  let arms = results && (results.arms || results.results || results.by_arm) || {};
  if (Array.isArray(arms)) arms = Object.fromEntries(arms.map((a, i) => [a.label || a.name || a.arm || `arm ${i}`, a]));
  const out = {};
  for (const [name, a] of Object.entries(arms)) {
    const m = a.metrics || a.eval || a.summary || a;
    const kl = a.drift_kl && typeof a.drift_kl === "object" ? a.drift_kl.mean : a.drift_kl;
    out[name] = { byHop: m.by_hop || a.by_hop || {}, accuracy: m.accuracy || a.accuracy, confusion: m.confusion || a.confusion,
                  faithful: m.faithful_share || a.faithful_share, kl, seeds: a.seeds_done || a.seeds };
  }
  return out;
}
const errorBars = {
  id: "errorBars",
  afterDatasetsDraw(chart) {
    const { ctx } = chart;
    chart.data.datasets.forEach((ds, i) => {
      const meta = chart.getDatasetMeta(i);
      if (meta.hidden) return;
      meta.data.forEach((bar, j) => {
        const iv = ds.intervals && ds.intervals[j];
        if (!iv || iv.low === undefined || iv.high === undefined) return;
        const y = chart.scales.y;
        ctx.save(); ctx.strokeStyle = "#1f2328"; ctx.lineWidth = 1;
        ctx.beginPath(); ctx.moveTo(bar.x, y.getPixelForValue(iv.low)); ctx.lineTo(bar.x, y.getPixelForValue(iv.high));
        ctx.moveTo(bar.x - 3, y.getPixelForValue(iv.low)); ctx.lineTo(bar.x + 3, y.getPixelForValue(iv.low));
        ctx.moveTo(bar.x - 3, y.getPixelForValue(iv.high)); ctx.lineTo(bar.x + 3, y.getPixelForValue(iv.high));
        ctx.stroke(); ctx.restore();
      });
    });
  },
};
function refRows(d, hops) {
  // the same held-out items answered by the KG oracle and by the strongest shortcut baseline
  const rows = [];
  const blank = (k) => Array.from({ length: k }, () => el("td", { text: "–" }));
  if (d.oracle) rows.push(el("tr", { class: "ref", "data-testid": "exp-oracle" }, el("td", { text: "KG oracle" }), el("td", { text: interval(d.oracle) }),
    hops.map((h) => el("td", { text: d.oracle_by_hop && d.oracle_by_hop[h] ? interval(d.oracle_by_hop[h]) : "–" })), blank(3)));
  const sc = d.strongest_shortcut;
  if (sc) rows.push(el("tr", { class: "ref", "data-testid": "exp-shortcut" }, el("td", { text: `strongest shortcut (${sc.name})` }), el("td", { text: interval(sc.accuracy) }),
    hops.map((h) => el("td", { text: sc.by_hop && sc.by_hop[h] ? interval(sc.by_hop[h]) : "–" })), blank(3)));
  return rows;
}
async function showExperiments() {
  await loadRuns();
  const sel = $("#exp-select");
  const empty = $("#exp-empty");
  const none = !S.experiments.length;
  empty.hidden = !none;
  empty.replaceChildren(...prose("No experiment in this runs folder yet. Run one, e.g. `kgreason experiment distribution --scale quick` "
    + "or `kgreason experiment reward --scale quick` (`kgreason experiment --help` lists the grids and options), then reload."));
  // nothing to choose and nothing to draw: no empty dropdown, no blank chart
  sel.closest(".toolbar").hidden = none; $("#exp-chart-box").hidden = none; $("#exp-report").hidden = none;
  if (none) { $("#exp-question").textContent = ""; $("#exp-question").hidden = true; $("#exp-table").replaceChildren(); $("#exp-2x2").replaceChildren(); $("#exp-answers").replaceChildren(); $("#exp-report").textContent = ""; return; }
  const keep = sel.value;
  sel.replaceChildren(...S.experiments.map((e) => el("option", { value: e.name, text: e.title || e.name })));
  if (keep && S.experiments.find((e) => e.name === keep)) sel.value = keep;
  const d = await api("/api/experiment?" + q({ name: sel.value }));
  const question = (d.results && d.results.question) || "";
  $("#exp-question").textContent = question; $("#exp-question").hidden = !question;
  $("#exp-answers").replaceChildren(...(d.answers || []).map((a) => el("li", { text: a })));
  const arms = armsOf(d.results);
  const names = Object.keys(arms);
  const hops = [...new Set(names.flatMap((n) => Object.keys(arms[n].byHop)))].sort((a, b) => a - b);
  if (S.charts.exp) S.charts.exp.destroy();
  S.charts.exp = new Chart($("#chart-exp"), {
    type: "bar", plugins: [errorBars],
    data: { labels: hops.map((h) => `${h} hop${h === "1" ? "" : "s"}`),
      datasets: names.map((n, i) => ({ label: n, backgroundColor: COLORS[i % COLORS.length] + "cc",
        data: hops.map((h) => P1(arms[n].byHop[h])), intervals: hops.map((h) => P(arms[n].byHop[h])) }))
        .concat(d.strongest_shortcut && d.strongest_shortcut.by_hop ? [{ type: "line", label: `strongest shortcut (${d.strongest_shortcut.name})`,
          data: hops.map((h) => P1(d.strongest_shortcut.by_hop[h])), borderColor: "#57606a", borderDash: [5, 4], pointRadius: 3, borderWidth: 1.5 }] : []) },
    options: { animation: false, maintainAspectRatio: false, scales: { y: { min: 0, max: 100, title: { display: true, text: "accuracy % (95% CI)" } } },
      plugins: { title: { display: true, text: "Accuracy by hop per arm" } } },
  });
  $("#exp-table").replaceChildren(el("thead", {}, el("tr", {}, el("th", { text: "arm" }), el("th", { text: "overall" }), hops.map((h) => el("th", { text: `${h} hops` })),
      el("th", { text: "faithful traces" }), el("th", { text: "KL drift" }), el("th", { text: "seeds" }))),
    el("tbody", {}, names.map((n) => el("tr", {}, el("td", { text: n }), el("td", { text: interval(arms[n].accuracy) }),
      hops.map((h) => el("td", { text: interval(arms[n].byHop[h]) })),
      el("td", { text: interval(arms[n].faithful) }), el("td", { text: typeof arms[n].kl === "number" ? arms[n].kl.toFixed(3) : "n/a" }),
      el("td", { text: Array.isArray(arms[n].seeds) ? arms[n].seeds.length : "" }))),
      refRows(d, hops)));
  $("#exp-2x2").replaceChildren(...names.filter((n) => arms[n].confusion).map((n) => {
    const c = arms[n].confusion;
    return el("div", { class: "card" }, el("b", { text: n }), el("table", { class: "grid", "data-testid": "table-2x2" },
      el("tr", {}, el("th", {}), el("th", { text: "trace faithful" }), el("th", { text: "trace unfaithful" })),
      el("tr", {}, el("th", { text: "answer correct" }), el("td", { text: c.correct_faithful ?? "" }), el("td", { text: c.correct_unfaithful ?? "" })),
      el("tr", {}, el("th", { text: "answer wrong" }), el("td", { text: c.wrong_faithful ?? "" }), el("td", { text: c.wrong_unfaithful ?? "" }))));
  }));
  // rendered and sanitised on the server (serve/report.py): no raw HTML, images only from this server
  if (d.report_html) $("#exp-report").innerHTML = d.report_html;
  else $("#exp-report").textContent = "(no report.md)";
}

// --- Graph ---------------------------------------------------------------------------------------
async function showGraph() {
  if (!needRun($("#kg-rels"))) return;
  const info = await api("/api/kg?" + q({ run: S.run }));
  $("#kg-info").textContent = `${info.name}: ${info.entities} entities, ${info.edges} edges, ${info.relations.length} relations (${info.relations.map((r) => r.id).join(", ")})`;
  if (!S.kgTrail.length) {
    const first = await api("/api/kg/search?" + q({ run: S.run, q: $("#kg-q").value || "a", limit: 1 })).catch(() => ({ items: [] }));
    if (first.items.length) await openEntity(first.items[0].id);
  } else await openEntity(S.kgTrail[S.kgTrail.length - 1], false);
}
async function kgSearch() {
  const v = $("#kg-q").value.trim();
  if (!v) return;
  const d = await api("/api/kg/search?" + q({ run: S.run, q: v, limit: 30 }));
  $("#kg-results").replaceChildren(el("li", { class: "muted", text: `${d.total} match(es)` }),
    ...d.items.map((e) => el("li", { onclick: () => guarded(() => openEntity(e.id)) }, `${e.label} `, el("span", { class: "muted", text: `${e.type || ""} · ${e.degree} edges` }))));
}
// The entity in the middle and its neighbours on a ring (two for many) whose circumference fits
// their labels side by side (9px labels, about 5.5px a character); labels point outward (see
// CY_STYLE). The concentric layout this replaces piled labels on top of each other around a hub.
function ringLayout(center, nodes) {
  const others = nodes.filter((n) => n.id !== center);
  const width = (n) => 5.5 * String(n.label || n.id).length + 24;
  const widest = Math.max(0, ...others.map(width));
  // many neighbours: two rings, alternating, so each ring holds half the labels and the drawing
  // stays large enough to read; the outer ring sits beyond the inner ring's longest label
  const rings = others.length > 12 ? 2 : 1;
  const need = others.reduce((a, n) => a + Math.max(40, width(n) * 0.75), 0) / rings;
  const r1 = Math.max(110, need / (2 * Math.PI), others.length > 2 ? widest * 0.9 : 0);
  const r2 = r1 + widest * 0.55 + 30;
  const pos = { [center]: { x: 0, y: 0 } }, side = {};
  others.forEach((n, i) => {
    const a = -Math.PI / 2 + (2 * Math.PI * i) / others.length;
    const r = rings === 2 && i % 2 ? r2 : r1;
    pos[n.id] = { x: r * Math.cos(a), y: r * Math.sin(a) };
    const c = Math.cos(a), s = Math.sin(a);
    side[n.id] = Math.abs(c) > 0.35 ? (c > 0 ? "lbl-right" : "lbl-left") : (s < 0 ? "lbl-top" : "");
  });
  return { pos, side };
}
// whatever the estimate above missed (fonts differ): move a neighbour outward, a step at a time,
// while its label box overlaps another's; the centre stays put
function spreadLabels(cy, center) {
  const box = (n) => n.boundingBox({ includeLabels: true, includeOverlays: false });
  const hit = (a, b) => a.x1 < b.x2 && b.x1 < a.x2 && a.y1 < b.y2 && b.y1 < a.y2;
  const nodes = cy.nodes().toArray();
  for (let pass = 0; pass < 40; pass++) {
    let moved = false;
    for (let i = 0; i < nodes.length; i++) for (let j = i + 1; j < nodes.length; j++) {
      if (!hit(box(nodes[i]), box(nodes[j]))) continue;
      const [a, b] = [nodes[i], nodes[j]].map((n) => n.position());
      const far = nodes[i].id() === center ? nodes[j] : nodes[j].id() === center ? nodes[i]
        : (Math.hypot(a.x, a.y) >= Math.hypot(b.x, b.y) ? nodes[i] : nodes[j]);
      const p = far.position(), r = Math.hypot(p.x, p.y) || 1;
      far.position({ x: p.x * (r + 16) / r, y: p.y * (r + 16) / r });
      moved = true;
    }
    if (!moved) break;
  }
  cy.fit(undefined, 30);
}
async function openEntity(id, push = true) {
  const d = await api("/api/kg/entity?" + q({ run: S.run, id, limit: 80 }));
  if (push && S.kgTrail[S.kgTrail.length - 1] !== id) S.kgTrail.push(id);
  $("#kg-trail").replaceChildren("path: ", ...S.kgTrail.slice(-6).map((t, i, arr) => el("span", {}, i ? " → " : "", el("a", { class: "follow", text: t, onclick: () => guarded(() => openEntity(t, false)) }))));
  const label = Object.fromEntries(d.nodes.map((n) => [n.id, n.label]));
  const byRel = {};
  d.edges.forEach((e) => { const out = e.src === id; const k = out ? `→ ${d.phrases[e.rel] || e.rel}` : `← ${(d.inverse || {})[e.rel] || "incoming " + e.rel}`; (byRel[k] = byRel[k] || []).push(out ? e.dst : e.src); });
  $("#kg-rels").replaceChildren(el("h3", { text: `${d.entity.label} (${d.entity.type || "untyped"})` }),
    el("div", { class: "muted", text: `${d.out} outgoing, ${d.in} incoming${d.truncated ? " (drawing truncated)" : ""}` }),
    ...Object.entries(byRel).map(([k, ids]) => el("div", {}, el("b", { text: k + ": " }),
      ...ids.map((t, i) => el("span", {}, i ? ", " : "", el("a", { class: "follow", "data-entity": t, text: label[t] || t, onclick: () => guarded(() => openEntity(t)) }))))));
  const ring = ringLayout(id, d.nodes);
  const els = d.nodes.map((n) => ({ data: { id: n.id, label: n.label }, position: ring.pos[n.id], classes: n.id === id ? "center" : ring.side[n.id] }))
    .concat(d.edges.map((e, i) => ({ data: { id: `e${i}`, source: e.src, target: e.dst, label: d.phrases[e.rel] || e.rel } })));
  if (S.cys.kg) S.cys.kg.destroy();
  S.cys.kg = cytoscape({ container: $("#kg-cy"), elements: els, style: CY_STYLE, maxZoom: 1.6, layout: { name: "preset", fit: true, padding: 30 } });
  spreadLabels(S.cys.kg, id);
  S.cys.kg.on("tap", "node", (ev) => { if (ev.target.id() !== id) guarded(() => openEntity(ev.target.id())); });
}

// --- wiring --------------------------------------------------------------------------------------
window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", async () => {
  $("#run-select").addEventListener("change", (e) => selectRun(e.target.value));
  $("#compare-btn").addEventListener("click", () => guarded(compareRuns));
  $("#train-phase").addEventListener("change", (e) => { S.train.phase = e.target.value; S.train.offset = 0; guarded(loadGroups); });
  $("#train-prev").addEventListener("click", () => { S.train.offset = Math.max(0, S.train.offset - S.train.limit); guarded(loadGroups); });
  $("#train-next").addEventListener("click", () => { S.train.offset += S.train.limit; guarded(loadGroups); });
  $("#inf-prev").addEventListener("click", () => { S.inf.offset = Math.max(0, S.inf.offset - S.inf.limit); guarded(loadInference); });
  $("#inf-next").addEventListener("click", () => { S.inf.offset += S.inf.limit; guarded(loadInference); });
  $("#inf-hop").addEventListener("change", () => { S.inf.offset = 0; guarded(loadInference); });
  document.querySelectorAll("input[name=try-mode]").forEach((r) => r.addEventListener("change", showChosenItem));
  $("#try-item").addEventListener("change", showChosenItem);
  $("#try-add-hop").addEventListener("click", addHop);
  $("#try-del-hop").addEventListener("click", () => { const c = $("#try-chain"); if (c.children.length > 1) c.lastChild.remove(); });
  $("#try-compose").addEventListener("click", () => guarded(compose));
  $("#try-start").addEventListener("input", () => guarded(searchStart));
  $("#try-ask").addEventListener("click", () => guarded(ask));
  $("#exp-select").addEventListener("change", () => guarded(showExperiments));
  $("#kg-search").addEventListener("click", () => guarded(kgSearch));
  $("#kg-q").addEventListener("keydown", (e) => { if (e.key === "Enter") guarded(kgSearch); });
  await guarded(loadRuns);
  route();
});
