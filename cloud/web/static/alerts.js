// The alert feed: newest first, severity, asset, evidence, and the planner's actions
// (acknowledge, snooze, approve the proposed work order, dismiss with a reason).
import { api, ApiError, canAct, el, every, mark, pct, perf, root, say, stamp, when } from "./common.js";

const PAGE = 50;
const ACTIVE = ["open", "acknowledged", "snoozed", "suppressed"];
const state = { offset: 0 };
let seq = 0;

function severity(peak) {
  if (peak >= 0.9) return ["critical", "Critical"];
  if (peak >= 0.7) return ["high", "High"];
  if (peak >= 0.5) return ["medium", "Medium"];
  return ["low", "Low"];
}

function params() {
  const chosen = document.getElementById("state").value;
  return {
    state: chosen === "active" ? ACTIVE : chosen,
    site: document.getElementById("site").value.trim(),
    min_peak: document.getElementById("min_peak").value,
    limit: PAGE,
    offset: state.offset,
  };
}

async function act(alert, action, body, button) {
  button.disabled = true;
  try {
    const result = await api(`/alerts/${alert.alert_id}/${action}`, { method: "POST", body });
    say(`${alert.alert_id}: ${action} done (now ${result.alert.state})`);
    await load();
  } catch (err) {
    if (err instanceof ApiError) say(`${alert.alert_id}: ${err.message}`, { error: true });
    button.disabled = false;
  }
}

async function showEvidence(alert, box) {
  if (box.dataset.loaded) return;
  box.dataset.loaded = "true";
  try {
    const drivers = await api(`/assets/${encodeURIComponent(alert.asset)}/drivers`, {
      params: { target: alert.target },
    });
    const rows = drivers.targets.flatMap((t) => t.explanation.contributions || []).slice(0, 5);
    if (!rows.length) {
      box.append(el("p", { class: "note" }, "No explanation stored with the latest score."));
      return;
    }
    const biggest = Math.max(...rows.map((c) => Math.abs(c.contribution || 0)), 1e-9);
    box.append(el("table", { class: "grid" },
      el("thead", {}, el("tr", {}, el("th", {}, "Signal"), el("th", {}, "Value"),
        el("th", {}, "Typical"), el("th", {}, "Contribution"))),
      el("tbody", {}, rows.map((c) => el("tr", {},
        el("td", {}, c.feature), el("td", { class: "num" }, fmt(c.value)),
        el("td", { class: "num" }, fmt(c.reference)),
        el("td", {}, el("span", {
          class: `bar ${c.contribution < 0 ? "neg" : ""}`,
          style: `width:${(60 * Math.abs(c.contribution || 0)) / biggest}px`,
        }), ` ${fmt(c.contribution)}`))))));
  } catch (err) {
    box.append(el("p", { class: "bad" }, `Evidence unavailable: ${err.message}`));
  }
}

function fmt(v) {
  return typeof v === "number" ? (Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3)) : (v ?? "–");
}

function actions(alert) {
  const allowed = new Set(alert.allowed);
  const wo = alert.work_order;
  const off = (event) => !canAct || !allowed.has(event);
  const ack = el("button", { type: "button", class: "ack", disabled: off("acknowledge"),
    onclick: () => act(alert, "acknowledge", {}, ack) }, "Acknowledge");
  const snoozeFor = el("select", { class: "snooze-for", "aria-label": "Snooze for", disabled: off("snooze") },
    el("option", { value: "4" }, "4 h"), el("option", { value: "24" }, "1 day"),
    el("option", { value: "168" }, "1 week"));
  const snooze = el("button", { type: "button", class: "snooze", disabled: off("snooze"),
    onclick: () => {
      const until = new Date(Date.now() + Number(snoozeFor.value) * 3600e3).toISOString();
      act(alert, "snooze", { until }, snooze);
    } }, "Snooze");
  const approve = el("button", { type: "button", class: "approve",
    disabled: !canAct || !wo || wo.state !== "proposed",
    title: wo ? `work order ${wo.key} is ${wo.state}` : "no work order",
    onclick: () => act(alert, "approve", {}, approve) }, "Approve work order");
  const reason = el("input", { type: "text", class: "reason", placeholder: "reason to dismiss",
    maxlength: "500", disabled: off("close"), "aria-label": "Reason to dismiss" });
  const dismiss = el("button", { type: "button", class: "dismiss", disabled: off("close"),
    onclick: () => {
      if (!reason.value.trim()) { say("Dismissing needs a reason", { error: true }); reason.focus(); return; }
      act(alert, "dismiss", { reason: reason.value.trim() }, dismiss);
    } }, "Dismiss");
  return el("div", { class: "actions" }, ack, snoozeFor, snooze, approve, reason, dismiss);
}

function item(alert) {
  const [cls, label] = severity(alert.peak);
  const wo = alert.work_order;
  const evidence = el("div", { class: "evidence" });
  const details = el("details", { ontoggle: () => details.open && showEvidence(alert, evidence) },
    el("summary", {}, "Evidence"), evidence);
  return el("li", { class: `sev-${cls}`, dataset: { alert: alert.alert_id, state: alert.state } },
    el("div", { class: "head" },
      el("span", { class: "sev" }, `${label} ${pct(alert.peak)}`),
      el("a", { href: `${root}/assets/${encodeURIComponent(alert.asset)}`, class: "asset" }, alert.asset),
      el("span", {}, alert.target),
      el("span", { class: "state" }, alert.state),
      el("span", { class: "meta" }, `${alert.site || "?"} · ${alert.customer || ""} ${alert.tier ? `(${alert.tier})` : ""}`),
      el("span", { class: "meta" }, `opened ${when(alert.opened_at)}`),
    ),
    el("div", { class: "meta" },
      `latest score ${pct(alert.last_score)} at ${when(alert.last_score_at)}`,
      alert.snoozed_until ? ` · snoozed until ${when(alert.snoozed_until)}` : "",
      wo ? ` · work order ${wo.key} (${wo.priority}, ${wo.state})` : " · no work order",
      alert.reason ? ` · ${alert.reason}` : ""),
    details,
    actions(alert));
}

async function load() {
  const mine = ++seq;
  const page = await api("/alerts", { params: params() });
  if (mine !== seq) return;
  const feed = document.getElementById("feed");
  feed.replaceChildren(...page.items.map(item));
  feed.dataset.total = String(page.total);
  const last = Math.min(page.offset + page.items.length, page.total);
  document.getElementById("range").textContent =
    page.total ? `${page.offset + 1}–${last} of ${page.total.toLocaleString()}` : "no alerts";
  document.getElementById("prev").disabled = state.offset === 0;
  document.getElementById("next").disabled = last >= page.total;
  stamp("updated");
}

function wire() {
  for (const id of ["state", "min_peak"]) {
    document.getElementById(id).addEventListener("change", () => { state.offset = 0; load(); });
  }
  let debounce;
  document.getElementById("site").addEventListener("input", () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => { state.offset = 0; load(); }, 250);
  });
  document.getElementById("filters").addEventListener("submit", (e) => e.preventDefault());
  document.getElementById("prev").addEventListener("click", () => {
    state.offset = Math.max(0, state.offset - PAGE); load();
  });
  document.getElementById("next").addEventListener("click", () => { state.offset += PAGE; load(); });
}

async function start() {
  wire();
  await load();
  perf.feedFirstRenderMs = performance.now();
  mark("feedRenderMs", 0);
  document.body.dataset.ready = "true";
  every(15, load);
}

start();
