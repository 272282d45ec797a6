// What both consoles share: building the DOM safely, calling the API,
// keeping the secret for this tab only, tables and charts.
//
// Every string a user or tenant supplied reaches the page through
// textContent (h() below), never as markup: names, parameters and error
// messages are shown as the text they are.

/** Builds an element: h("td", {class: "n"}, "text", childNode, ...). */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "value") el.value = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export const $ = (id) => document.getElementById(id);

/** The secret of this console, for this tab only (gone when the tab closes or on sign-out). */
export const session = {
  get: (name) => sessionStorage.getItem(name),
  set: (name, value) => sessionStorage.setItem(name, value),
  forget: (name) => sessionStorage.removeItem(name),
};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Calls the API with `token`; JSON in and out unless `body` is a Blob or `raw` is set. */
export async function api(path, { token, method = "GET", json, body, raw = false } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  const response = await fetch(path, { method, headers, body, credentials: "omit", cache: "no-store" });
  if (!response.ok) {
    let code = "http_" + response.status;
    let message = response.statusText || "request failed";
    try {
      const err = (await response.json()).error;
      if (err) ({ code, message } = err);
    } catch (_) { /* not JSON */ }
    throw new ApiError(response.status, code, message);
  }
  if (raw) return response;
  if (response.status === 204) return null;
  return response.json();
}

/** Shows `error` (or clears) in `el`, as text. */
export function showError(el, error) {
  el.textContent = error ? `${error.code ? error.code + ": " : ""}${error.message}` : "";
}

export function fmtNum(n) {
  return Number(n ?? 0).toLocaleString("en-US");
}

export function fmtBytes(n) {
  n = Number(n ?? 0);
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

export function fmtTime(value) {
  const d = typeof value === "number" ? new Date(value) : new Date(value);
  return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

/** `<input type=datetime-local>` value of `date` in UTC (the API's buckets are UTC). */
export function toInput(date) {
  return date.toISOString().slice(0, 16);
}

/** RFC 3339 from a datetime-local value read as UTC. */
export function fromInput(value) {
  return new Date(value + ":00Z").toISOString().replace(/\.\d+Z$/, "Z");
}

/** A table of `rows`; each column is {label, cell: row => text or Node, class}. */
export function table(columns, rows, { empty = "Nothing yet.", id } = {}) {
  if (!rows.length) return h("p", { class: "empty", id }, empty);
  return h("table", { id },
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { class: c.class }, c.label)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, columns.map((c) => h("td", { class: c.class }, c.cell(row)))))));
}

const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c"];

/** A time-series chart of `buckets` (with `start`) for `series` [{label, value: b => n}],
 *  over `range` ([from, to] RFC 3339: the range asked, not just the buckets found). */
export function chart(el, buckets, series, { height = 260, range } = {}) {
  el.replaceChildren();
  if (!buckets.length) {
    el.append(h("p", { class: "empty" }, "No usage in this range."));
    return;
  }
  const xs = buckets.map((b) => Date.parse(b.start) / 1000);
  const data = [xs, ...series.map((s) => buckets.map(s.value))];
  const width = Math.max(320, el.clientWidth || 720);
  const opts = {
    width, height,
    scales: { x: { time: true, ...(range ? { range: () => range.map((t) => Date.parse(t) / 1000) } : {}) } },
    series: [{}, ...series.map((s, i) => ({ label: s.label, stroke: PALETTE[i % PALETTE.length], width: 2, points: { show: true } }))],
    axes: [{}, { size: 70 }],
  };
  new window.uPlot(opts, data, el);
}

/** Shows the section of the clicked tab button (`data-tab`), hides the others. */
export function tabs(nav, onShow) {
  const buttons = [...nav.querySelectorAll("button[data-tab]")];
  const show = (name) => {
    for (const b of buttons) {
      const on = b.dataset.tab === name;
      b.classList.toggle("active", on);
      $(b.dataset.tab).hidden = !on;
    }
    onShow(name);
  };
  for (const b of buttons) b.addEventListener("click", () => show(b.dataset.tab));
  return show;
}
