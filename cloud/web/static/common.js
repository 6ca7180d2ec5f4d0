// Shared helpers of the planners' page: the API client, DOM building, formatting.
// Data is put into the page with textContent only (never innerHTML), so nothing from the API can
// inject markup.

export const root = document.body.dataset.root || "";
export const canAct = document.body.dataset.canAct === "true";
export const API = `${root}/api/v1`;

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.message || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

// Call the JSON API with the session cookie. State changes carry the CSRF header the server asks
// for; a 401 (session gone) goes back to the login page.
export async function api(path, { method = "GET", body, params } = {}) {
  const url = new URL(`${API}${path}`, location.origin);
  for (const [key, value] of Object.entries(params || {})) {
    for (const v of Array.isArray(value) ? value : [value]) {
      if (v !== undefined && v !== null && v !== "") url.searchParams.append(key, v);
    }
  }
  const headers = { Accept: "application/json" };
  if (method !== "GET") {
    headers["X-Prognos-Request"] = "1";
    headers["Content-Type"] = "application/json";
  }
  const response = await fetch(url, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) {
    location.assign(`${root}/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    throw new ApiError(401, null);
  }
  const data = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// el("td", {class: "num"}, "12") -> <td class="num">12</td>; children are nodes or text.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function pct(value) {
  return value === null || value === undefined ? "–" : `${(100 * value).toFixed(0)} %`;
}

export function num(value, digits = 0) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
}

export function hours(value) {
  if (value === null || value === undefined) return "–";
  return value >= 72 ? `${(value / 24).toFixed(1)} d` : `${value.toFixed(0)} h`;
}

export function when(iso) {
  if (!iso) return "–";
  return new Date(iso).toLocaleString(undefined, { dateStyle: "short", timeStyle: "short" });
}

export function healthClass(health) {
  if (health === null || health === undefined) return "";
  return health < 40 ? "bad" : health < 70 ? "warn" : "ok";
}

export function probabilityClass(p) {
  if (p === null || p === undefined) return "";
  return p >= 0.7 ? "bad" : p >= 0.4 ? "warn" : "";
}

let statusTimer;
export function say(text, { error = false } = {}) {
  const box = document.getElementById("status");
  box.textContent = text;
  box.className = `show${error ? " error" : ""}`;
  clearTimeout(statusTimer);
  statusTimer = setTimeout(() => { box.className = ""; }, error ? 8000 : 3000);
}

// Call `refresh` every `seconds` while the tab is visible (cheap polling; no work when hidden).
export function every(seconds, refresh) {
  let running = false;
  const tick = async () => {
    if (document.hidden || running) return;
    running = true;
    try { await refresh(); } catch (err) { if (!(err instanceof ApiError && err.status === 401)) console.warn(err); }
    finally { running = false; }
  };
  setInterval(tick, seconds * 1000);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) tick(); });
}

// Timings the browser test reads (performance.now() in milliseconds).
export const perf = (window.__prognosPerf = window.__prognosPerf || { marks: [] });
export function mark(name, startedAt) {
  const ms = performance.now() - startedAt;
  perf[name] = ms;
  perf.marks.push({ name, ms });
  return ms;
}

export function stamp(id) {
  const node = document.getElementById(id);
  if (node) node.textContent = `updated ${new Date().toLocaleTimeString()}`;
}
