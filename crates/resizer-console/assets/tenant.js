// The tenant console: usage, recent requests, a resize to try, and keys,
// all through the public API with the key the tenant typed.
import { $, api, chart, fmtBytes, fmtNum, fmtTime, fromInput, h, session, showError, table, tabs, toInput } from "./common.js";

const KEY = "resizer.console.key";
const state = { key: null, tenant: null, flags: {}, records: [], page: 0 };
const PAGE = 20;

async function signIn(key) {
  const me = await api("/v1/flags", { token: key });
  state.key = key;
  state.tenant = me.tenant;
  state.flags = me.flags;
  session.set(KEY, key);
  $("signin").hidden = true;
  $("tabs").hidden = false;
  $("signout").hidden = false;
  $("who").textContent = `Tenant ${me.tenant}`;
  if (me.flags.format_jxl) $("try-format").append(h("option", {}, "jxl"));
  show("usage");
}

function signOut() {
  session.forget(KEY);
  state.key = null;
  location.reload();
}

/** A call with the signed-in key; a refusal (a revoked key: 401) is shown where it happened. */
function call(path, options = {}) {
  return api(path, { ...options, token: state.key });
}

const SERIES = {
  requests: [
    { label: "requests", value: (b) => b.requests },
    { label: "succeeded", value: (b) => b.succeeded },
    { label: "failed", value: (b) => b.failed },
  ],
  bytes: [
    { label: "bytes in", value: (b) => b.bytes_in },
    { label: "bytes out", value: (b) => b.bytes_out },
  ],
  pixels: [
    { label: "pixels in", value: (b) => b.pixels_in },
    { label: "pixels out", value: (b) => b.pixels_out },
  ],
  cpu: [{ label: "CPU ms", value: (b) => b.cpu_ms }],
};

async function loadUsage() {
  showError($("usage-error"));
  const q = new URLSearchParams({
    from: fromInput($("usage-from").value),
    to: fromInput($("usage-to").value),
    bucket: $("usage-bucket").value,
  });
  try {
    const report = await call(`/v1/usage?${q}`);
    const b = report.buckets;
    const sum = (f) => b.reduce((n, x) => n + x[f], 0);
    $("usage-total").textContent =
      `${fmtNum(sum("requests"))} requests (${fmtNum(sum("succeeded"))} succeeded, ${fmtNum(sum("failed"))} failed), ` +
      `${fmtBytes(sum("bytes_in"))} in, ${fmtBytes(sum("bytes_out"))} out, ${fmtNum(sum("cpu_ms"))} CPU ms`;
    $("usage-total").dataset.requests = sum("requests");
    chart($("usage-chart"), b, SERIES[$("usage-metric").value], { range: [q.get("from"), q.get("to")] });
    $("usage-table").replaceChildren(table([
      { label: "start (UTC)", cell: (x) => fmtTime(x.start) },
      { label: "requests", cell: (x) => fmtNum(x.requests), class: "n" },
      { label: "succeeded", cell: (x) => fmtNum(x.succeeded), class: "n" },
      { label: "failed", cell: (x) => fmtNum(x.failed), class: "n" },
      { label: "bytes in", cell: (x) => fmtBytes(x.bytes_in), class: "n" },
      { label: "bytes out", cell: (x) => fmtBytes(x.bytes_out), class: "n" },
      { label: "pixels out", cell: (x) => fmtNum(x.pixels_out), class: "n" },
      { label: "CPU ms", cell: (x) => fmtNum(x.cpu_ms), class: "n" },
      { label: "stored", cell: (x) => fmtBytes(x.stored_bytes), class: "n" },
    ], [...b].reverse()));
  } catch (e) {
    showError($("usage-error"), e);
  }
}

async function loadAudit() {
  showError($("audit-error"));
  const q = new URLSearchParams({
    from: fromInput($("audit-from").value),
    to: fromInput($("audit-to").value),
    limit: "2000",
  });
  try {
    const report = await call(`/v1/audit?${q}`);
    state.records = report.records.reverse();
    state.page = 0;
    renderAudit();
  } catch (e) {
    showError($("audit-error"), e);
  }
}

function renderAudit() {
  const status = $("audit-status").value;
  const rows = state.records.filter((r) => !status || String(r.status).startsWith(status));
  const pages = Math.max(1, Math.ceil(rows.length / PAGE));
  state.page = Math.min(state.page, pages - 1);
  const slice = rows.slice(state.page * PAGE, (state.page + 1) * PAGE);
  $("audit-page").textContent = `page ${state.page + 1} of ${pages} (${fmtNum(rows.length)} requests)`;
  $("audit-prev").disabled = state.page === 0;
  $("audit-next").disabled = state.page >= pages - 1;
  $("audit-table").replaceChildren(auditTable(slice));
}

/** One row per request; every field the tenant sent is shown as text. */
export function auditTable(records) {
  return table([
    { label: "received (UTC)", cell: (r) => fmtTime(r.received_unix_ms) },
    { label: "status", cell: (r) => h("span", { class: r.status < 300 ? "ok" : "bad" }, r.status), class: "n" },
    { label: "route", cell: (r) => r.route },
    { label: "parameters", cell: (r) => h("code", {}, r.params) },
    { label: "in", cell: (r) => `${r.input_format ?? "?"} ${fmtBytes(r.input_bytes)}` },
    { label: "out", cell: (r) => (r.output_format ? `${r.output_format} ${r.output_width}×${r.output_height} ${fmtBytes(r.output_bytes)}` : "") },
    { label: "ms", cell: (r) => fmtNum(r.total_ms), class: "n" },
    { label: "request id", cell: (r) => h("code", {}, r.request_id) },
  ], records, { empty: "No requests in this range.", id: "audit-rows" });
}

function tryQuery() {
  const q = new URLSearchParams();
  for (const name of ["width", "height", "fit", "format", "quality"]) {
    const value = $(`try-${name}`).value;
    if (value) q.set(name, value);
  }
  return q;
}

async function runTry(event) {
  event.preventDefault();
  showError($("try-error"));
  const file = $("try-file").files[0];
  if (!file) return;
  const q = tryQuery();
  $("try-curl").textContent =
    `curl -X POST -H "Authorization: Bearer $RESIZER_KEY" --data-binary @${JSON.stringify(file.name)} \\\n` +
    `  "${location.origin}/v1/resize?${q}" -o result`;
  $("try-original").src = URL.createObjectURL(file);
  $("try-original-caption").textContent = `Original: ${fmtBytes(file.size)}`;
  const started = performance.now();
  try {
    const response = await call(`/v1/resize?${q}`, { method: "POST", body: file, raw: true });
    const blob = await response.blob();
    const ms = performance.now() - started;
    const result = $("try-result");
    result.src = URL.createObjectURL(blob);
    const type = response.headers.get("content-type");
    $("try-result-caption").textContent = `Result: ${type}, ${fmtBytes(blob.size)}`;
    $("try-stats").textContent = `${fmtBytes(file.size)} → ${fmtBytes(blob.size)} ` +
      `(${((100 * blob.size) / file.size).toFixed(1)} %) in ${ms.toFixed(0)} ms; request ${response.headers.get("x-request-id")}`;
    result.onload = () => {
      $("try-stats").dataset.size = `${result.naturalWidth}x${result.naturalHeight}`;
      $("try-result-caption").textContent += `, ${result.naturalWidth}×${result.naturalHeight}`;
    };
  } catch (e) {
    showError($("try-error"), e);
  }
}

async function loadKeys() {
  showError($("keys-error"));
  try {
    const { keys } = await call("/v1/keys");
    $("keys-table").replaceChildren(table([
      { label: "key", cell: (k) => h("code", {}, k.key_id) },
      { label: "created (UTC)", cell: (k) => fmtTime(k.created_at) },
      { label: "state", cell: (k) => (k.revoked_at ? `revoked ${fmtTime(k.revoked_at)}` : k.current ? "live (this session)" : "live") },
      { label: "", cell: (k) => (k.revoked_at || k.current ? "" : h("button", { type: "button", class: "danger", "data-key": k.key_id, onclick: () => revoke(k.key_id) }, "Revoke")) },
    ], keys, { id: "keys-rows" }));
  } catch (e) {
    showError($("keys-error"), e);
  }
}

async function createKey() {
  showError($("keys-error"));
  try {
    const issued = await call("/v1/keys", { method: "POST" });
    const box = $("keys-new");
    box.hidden = false;
    box.replaceChildren(
      h("p", {}, "New key. Copy the secret now: it is not shown again."),
      h("code", { id: "keys-secret" }, issued.secret));
    await loadKeys();
  } catch (e) {
    showError($("keys-error"), e);
  }
}

async function revoke(keyId) {
  showError($("keys-error"));
  try {
    await call(`/v1/keys/${encodeURIComponent(keyId)}`, { method: "DELETE" });
    await loadKeys();
  } catch (e) {
    showError($("keys-error"), e);
  }
}

const show = tabs($("tabs"), (name) => {
  if (name === "usage") loadUsage();
  if (name === "audit") loadAudit();
  if (name === "keys") loadKeys();
});

function init() {
  const now = new Date();
  const hour = 3600 * 1000;
  const end = new Date(Math.ceil(now / hour) * hour);
  $("usage-from").value = toInput(new Date(end - 24 * hour));
  $("usage-to").value = toInput(end);
  $("audit-from").value = toInput(new Date(end - 24 * hour));
  $("audit-to").value = toInput(new Date(end.getTime() + hour));
  $("signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    showError($("signin-error"));
    try {
      await signIn($("key").value.trim());
      $("key").value = "";
    } catch (e) {
      showError($("signin-error"), e.status === 401 ? { message: "That key is not valid (unknown or revoked)." } : e);
    }
  });
  $("signout").addEventListener("click", signOut);
  $("usage-form").addEventListener("submit", (e) => { e.preventDefault(); loadUsage(); });
  $("audit-form").addEventListener("submit", (e) => { e.preventDefault(); loadAudit(); });
  $("audit-status").addEventListener("change", () => { state.page = 0; renderAudit(); });
  $("audit-prev").addEventListener("click", () => { state.page--; renderAudit(); });
  $("audit-next").addEventListener("click", () => { state.page++; renderAudit(); });
  $("try-form").addEventListener("submit", runTry);
  $("keys-create").addEventListener("click", createKey);
  const drop = $("try-drop");
  drop.addEventListener("dragover", (e) => e.preventDefault());
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    $("try-file").files = e.dataTransfer.files;
  });
  const saved = session.get(KEY);
  if (saved) signIn(saved).catch(() => session.forget(KEY));
}

init();
