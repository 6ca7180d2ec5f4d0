// The asset page: sensor charts over a chosen range, failure-probability history, the remaining
// life forecast with its interval band and the replacement threshold, consumables, work orders
// and the signals that drove the latest score. Charts are drawn by the vendored uPlot.
import { api, el, healthClass, hours, mark, num, pct, perf, when } from "./common.js";

const box = document.getElementById("asset");
const ASSET = box.dataset.asset;
const REPLACE_H = Number(box.dataset.replaceWithinH);
const PATH = `/assets/${encodeURIComponent(ASSET)}`;
const COLOURS = ["#1c5d99", "#d9480f", "#2b8a3e", "#862e9c", "#e67700", "#0b7285", "#c2255c", "#5c940d"];
const MAX_SIGNALS = 12;
const charts = [];

const secs = (iso) => Date.parse(iso) / 1000;

function facts(detail) {
  const r = detail.record;
  const s = detail.summary;
  document.getElementById("subtitle").textContent = `${r.model} · ${r.site} · ${r.customer}`;
  const pairs = [
    ["Health", el("span", { class: healthClass(s.health) }, num(s.health))],
    ["Worst probability", `${pct(s.worst_probability)} ${s.worst_target ? `(${s.worst_target})` : ""}`],
    ["Shortest remaining life", hours(s.shortest_rul)],
    ["Open alerts", s.open_alerts], ["Open work orders", s.open_work_orders],
    ["Scored", when(s.scored_at)], ["Tier", r.tier], ["Criticality", r.criticality],
    ["Class / team", `${r.asset_class} / ${r.team}`], ["Firmware", `${r.firmware} (${r.profile})`],
    ["Serial", r.serial], ["Commissioned", r.commissioned],
    ["Warranty until", r.warranty_end || "none"], ["Operating hours", r.operating_hours ?? "–"],
  ];
  document.getElementById("facts").replaceChildren(
    ...pairs.map(([k, v]) => el("div", {}, el("dt", {}, k), el("dd", {}, v))));
}

// One uPlot chart in `parent`; `data` is [x seconds, ...series values].
function draw(parent, title, data, series, { bands, yLabel, span } = {}) {
  const holder = el("div", { class: "chart", dataset: { title } }, el("h3", {}, title));
  parent.append(holder);
  const points = data.slice(1).reduce((n, ys) => n + ys.filter((v) => v !== null && v !== undefined).length, 0);
  holder.dataset.points = String(points);
  if (!points || !window.uPlot) {
    holder.append(el("p", { class: "note" }, points ? "Chart library missing." : "No data in this range."));
    return;
  }
  const width = Math.max(320, holder.clientWidth - 4);
  const plot = new window.uPlot({
    width,
    height: 220,
    scales: span ? { x: { time: true, range: () => span } } : undefined,
    series: [{}, ...series.map((s, i) => ({ stroke: COLOURS[i % COLOURS.length], width: 2, spanGaps: true, ...s }))],
    axes: [{}, { label: yLabel, size: 60 }],
    bands,
    legend: { live: true },
  }, data, holder);
  charts.push(plot);
  holder.dataset.drawn = "true";
}

function range() {
  const from = document.getElementById("from").value;
  const to = document.getElementById("to").value;
  if (from && to) return { from: new Date(from).toISOString(), to: new Date(to).toISOString() };
  const h = Number(document.querySelector("input[name=range]:checked").value);
  const end = new Date();
  return { from: new Date(end - h * 3600e3).toISOString(), to: end.toISOString() };
}

function spanOf(r) {
  return [Date.parse(r.start) / 1000, Date.parse(r.end) / 1000];
}

function sensorCharts(tel) {
  const parent = document.getElementById("sensor-charts");
  parent.replaceChildren();
  if (!tel.signals.length) {
    parent.append(el("p", { class: "note" }, "No numeric telemetry."));
    return;
  }
  const xs = tel.times.map(secs);
  for (const signal of tel.signals.slice(0, MAX_SIGNALS)) {
    draw(parent, `${signal} (${tel.aggregate} per ${tel.every})`, [xs, tel.values[signal]], [{ label: signal }], { span: spanOf(tel) });
  }
}

// Series of the score history on one shared time axis (points of different targets differ).
function align(seriesList, field) {
  const times = [...new Set(seriesList.flatMap((s) => s.points.map((p) => secs(p.time))))].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const columns = seriesList.map((s) => {
    const col = new Array(times.length).fill(null);
    for (const p of s.points) col[index.get(secs(p.time))] = p[field];
    return col;
  });
  return [times, columns];
}

function scoreCharts(history) {
  const probParent = document.getElementById("probability-chart");
  const rulParent = document.getElementById("rul-charts");
  probParent.replaceChildren();
  rulParent.replaceChildren();
  const withProb = history.series.filter((s) => s.points.some((p) => p.probability !== null));
  const [pt, pcols] = align(withProb, "probability");
  draw(probParent, "Failure probability by target", [pt, ...pcols],
    withProb.map((s) => ({ label: `${s.target} (${s.model_name} v${s.model_version})`, value: (u, v) => pct(v) })),
    { yLabel: "probability", span: spanOf(history) });
  const withRul = history.series.filter((s) => s.points.some((p) => p.rul !== null));
  if (!withRul.length) rulParent.append(el("p", { class: "note" }, "No remaining-life forecast in this range."));
  for (const s of withRul) {
    const pts = s.points.filter((p) => p.rul !== null);
    const xs = pts.map((p) => secs(p.time));
    draw(rulParent, `${s.target} (${s.model_name} v${s.model_version}): remaining life, hours`, [
      xs, pts.map((p) => p.rul), pts.map((p) => p.rul_lo), pts.map((p) => p.rul_hi), xs.map(() => REPLACE_H),
    ], [
      { label: "forecast" },
      { label: "interval low", stroke: "#6c8fb3", width: 1 },
      { label: "interval high", stroke: "#6c8fb3", width: 1 },
      { label: "replacement threshold", stroke: "#a61b1b", width: 1.5, dash: [6, 4] },
    ], { bands: [{ series: [3, 2], fill: "rgba(28,93,153,0.18)" }], yLabel: "hours", span: spanOf(history) });
  }
}

function driversTable(drivers) {
  const parent = document.getElementById("drivers");
  parent.replaceChildren();
  // The scorer explains only scores at or above the watch level (explain: at_risk): the table is
  // the latest explained score's, and says so when a later score was not explained.
  const has = (t) => (t.explanation.contributions || []).length;
  const explained = drivers.targets.filter(has);
  const below = "not explained: below the watch level";
  for (const t of drivers.targets.filter((t) => !has(t))) {
    parent.append(el("p", { class: "note unexplained", dataset: { target: t.target } },
      `${t.target} (${t.model_name} v${t.model_version}, ${when(t.latest || t.time)}): ${below}.`));
  }
  if (!drivers.targets.length) {
    parent.append(el("p", { class: "note" }, "No explanation stored with the latest scores."));
    return;
  }
  for (const t of explained) {
    const rows = t.explanation.contributions;
    const biggest = Math.max(...rows.map((c) => Math.abs(c.contribution || 0)), 1e-9);
    const later = t.latest && Date.parse(t.latest) > Date.parse(t.time);
    parent.append(el("h3", {}, `${t.target} (${t.model_name} v${t.model_version}, ${when(t.time)})`),
      ...(later ? [el("p", { class: "note unexplained", dataset: { target: t.target } },
        `Latest score (${when(t.latest)}) ${below}; these drivers are from ${when(t.time)}.`)] : []),
      el("table", { class: "grid drivers", dataset: { target: t.target } },
        el("thead", {}, el("tr", {}, el("th", {}, "Signal"), el("th", { class: "num" }, "Value"),
          el("th", { class: "num" }, "Typical"), el("th", {}, "Contribution"))),
        el("tbody", {}, rows.map((c) => el("tr", {},
          el("td", {}, c.feature), el("td", { class: "num" }, num(c.value, 2)),
          el("td", { class: "num" }, num(c.reference, 2)),
          el("td", {}, el("span", { class: `bar ${c.contribution < 0 ? "neg" : ""}`,
            style: `width:${(120 * Math.abs(c.contribution || 0)) / biggest}px` }), ` ${num(c.contribution, 3)}`))))));
  }
}

function consumables(detail) {
  const byTarget = new Map(detail.targets.map((t) => [t.target, t]));
  const names = [...new Set([...Object.keys(detail.record.consumables || {}),
    ...detail.targets.filter((t) => t.model_name.includes("consumable")).map((t) => t.target)])].sort();
  const body = document.querySelector("#consumables tbody");
  body.replaceChildren(...names.map((name) => {
    const rec = detail.record.consumables?.[name] || {};
    const score = byTarget.get(name) || {};
    return el("tr", {}, el("td", {}, name), el("td", {}, rec.replaced_on || "–"),
      el("td", { class: "num" }, rec.replaced_at_hours ?? "–"),
      el("td", { class: `num ${healthClass(score.health)}` }, num(score.health)),
      el("td", { class: "num" }, hours(score.rul)));
  }));
  if (!names.length) body.append(el("tr", {}, el("td", { colspan: "5", class: "note" }, "No consumables recorded.")));
}

function workOrders(page) {
  const body = document.querySelector("#workorders tbody");
  body.replaceChildren(...page.items.map((w) => el("tr", {},
    el("td", {}, w.key), el("td", {}, w.priority), el("td", {}, w.state), el("td", {}, w.target),
    el("td", {}, w.title), el("td", {}, when(w.created_at)), el("td", {}, when(w.due_by)))));
  if (!page.items.length) body.append(el("tr", {}, el("td", { colspan: "7", class: "note" }, "No work orders.")));
}

async function loadRange() {
  const t0 = performance.now();
  const r = range();
  const [tel, history] = await Promise.all([
    api(`${PATH}/telemetry`, { params: { ...r, points: 400 } }),
    api(`${PATH}/scores`, { params: r }),
  ]);
  for (const c of charts.splice(0)) c.destroy();
  sensorCharts(tel);
  scoreCharts(history);
  mark("chartsMs", t0);
}

async function start() {
  const t0 = performance.now();
  const [detail, drivers, orders] = await Promise.all([
    api(PATH), api(`${PATH}/drivers`), api("/workorders", { params: { asset: ASSET, limit: 100 } }),
  ]);
  facts(detail);
  driversTable(drivers);
  consumables(detail);
  workOrders(orders);
  await loadRange();
  perf.assetRenderMs = performance.now() - t0;
  document.body.dataset.ready = "true";
  document.getElementById("apply-range").addEventListener("click", loadRange);
  for (const radio of document.querySelectorAll("input[name=range]")) {
    radio.addEventListener("change", () => {
      document.getElementById("from").value = "";
      document.getElementById("to").value = "";
      loadRange();
    });
  }
}

start();
