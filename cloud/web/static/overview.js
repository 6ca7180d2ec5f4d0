// The fleet overview: sites, and the assets table sorted, filtered and paged by the API
// (GET /assets does the work for 10,000 assets; the page never holds more than one page of rows).
import {
  api, el, every, healthClass, hours, mark, num, pct, perf, probabilityClass, root, stamp,
} from "./common.js";

const PAGE = 100;
const state = { sort: "asset_id", q: "", site: "", criticality: "", tier: "", offset: 0 };
let seq = 0;
let total = 0;

function assetRow(a) {
  return el("tr", { dataset: { asset: a.asset_id } },
    el("td", {}, el("a", { href: `${root}/assets/${encodeURIComponent(a.asset_id)}` }, a.asset_id)),
    el("td", {}, a.site),
    el("td", {}, a.customer),
    el("td", {}, a.criticality),
    el("td", { class: `num ${healthClass(a.health)}` }, num(a.health)),
    el("td", { class: `num ${probabilityClass(a.worst_probability)}` }, pct(a.worst_probability)),
    el("td", {}, a.worst_target || "–"),
    el("td", { class: "num" }, hours(a.shortest_rul)),
    el("td", { class: `num ${a.open_alerts ? "bad" : ""}` }, a.open_alerts),
  );
}

function siteRow(s) {
  return el("tr", { dataset: { site: s.site }, onclick: () => pickSite(s.site) },
    el("td", {}, s.site),
    el("td", { class: "num" }, s.assets),
    el("td", { class: "num" }, s.scored),
    el("td", { class: `num ${s.open_alerts ? "bad" : ""}` }, s.open_alerts),
    el("td", { class: "num" }, s.assets_with_alerts),
    el("td", { class: `num ${healthClass(s.min_health)}` }, num(s.min_health)),
    el("td", { class: `num ${probabilityClass(s.max_probability)}` }, pct(s.max_probability)),
    el("td", { class: "num" }, hours(s.min_rul)),
  );
}

async function loadAssets() {
  const mine = ++seq;
  const page = await api("/assets", {
    params: {
      sort: state.sort, q: state.q, site: state.site, criticality: state.criticality,
      tier: state.tier, limit: PAGE, offset: state.offset,
    },
  });
  if (mine !== seq) return false; // a newer request is on its way
  total = page.total;
  document.querySelector("#assets tbody").replaceChildren(...page.items.map(assetRow));
  const last = Math.min(page.offset + page.items.length, total);
  document.getElementById("range").textContent =
    total ? `${page.offset + 1}–${last} of ${total.toLocaleString()}` : "no assets match";
  document.getElementById("prev").disabled = state.offset === 0;
  document.getElementById("next").disabled = last >= total;
  document.getElementById("assets").dataset.total = String(total);
  stamp("updated");
  return true;
}

async function loadSites() {
  const sites = await api("/fleet/sites");
  document.querySelector("#sites tbody").replaceChildren(...sites.map(siteRow));
  const select = document.getElementById("site");
  if (select.options.length === 1) {
    select.append(...sites.map((s) => el("option", { value: s.site }, s.site)));
    select.value = state.site;
  }
}

// Reload after a user action and record how long it took until the rows were in the page.
async function timed(name, startedAt) {
  if (await loadAssets()) {
    const ms = mark(name, startedAt);
    document.getElementById("assets").dataset[name] = ms.toFixed(1);
  }
}

function pickSite(site) {
  const t0 = performance.now();
  state.site = site;
  state.offset = 0;
  document.getElementById("site").value = site;
  timed("filterMs", t0);
}

function setSortHeader() {
  for (const th of document.querySelectorAll("#assets th[data-sort]")) {
    const key = th.dataset.sort;
    if (state.sort === key) th.setAttribute("aria-sort", "ascending");
    else if (state.sort === `-${key}`) th.setAttribute("aria-sort", "descending");
    else th.removeAttribute("aria-sort");
  }
}

function wire() {
  for (const th of document.querySelectorAll("#assets th[data-sort]")) {
    th.querySelector("button").addEventListener("click", () => {
      const t0 = performance.now();
      const key = th.dataset.sort;
      state.sort = state.sort === key ? `-${key}` : key;
      state.offset = 0;
      setSortHeader();
      timed("sortMs", t0);
    });
  }
  let debounce;
  document.getElementById("q").addEventListener("input", (event) => {
    const t0 = performance.now();
    clearTimeout(debounce);
    debounce = setTimeout(() => {
      state.q = event.target.value.trim();
      state.offset = 0;
      timed("searchMs", t0);
    }, 200);
  });
  for (const id of ["site", "criticality", "tier"]) {
    document.getElementById(id).addEventListener("change", (event) => {
      const t0 = performance.now();
      state[id] = event.target.value;
      state.offset = 0;
      timed("filterMs", t0);
    });
  }
  document.getElementById("filters").addEventListener("submit", (e) => e.preventDefault());
  document.getElementById("prev").addEventListener("click", () => {
    const t0 = performance.now();
    state.offset = Math.max(0, state.offset - PAGE);
    timed("pageMs", t0);
  });
  document.getElementById("next").addEventListener("click", () => {
    const t0 = performance.now();
    state.offset += PAGE;
    timed("pageMs", t0);
  });
}

async function start() {
  wire();
  setSortHeader();
  await Promise.all([loadAssets(), loadSites()]);
  // Since navigation start: HTML, scripts, both API calls and the first rows in the page.
  perf.firstRenderMs = performance.now();
  document.getElementById("assets").dataset.firstRenderMs = perf.firstRenderMs.toFixed(1);
  document.body.dataset.ready = "true";
  every(15, () => Promise.all([loadAssets(), loadSites()]));
}

start();
