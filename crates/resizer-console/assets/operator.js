// The operator console: tenants and their keys, usage across tenants, audit,
// the fleet, and feature flags, through the admin API with the admin token.
import { $, api, chart, fmtBytes, fmtNum, fmtTime, fromInput, h, session, showError, table, tabs, toInput } from "./common.js";

const TOKEN = "resizer.console.admin";
const state = { token: null, tenants: [], fleetTimer: null, lastFleet: null };

const call = (path, options = {}) => api(path, { ...options, token: state.token });

async function signIn(token) {
  const { tenants } = await api("/admin/v1/tenants", { token });
  state.token = token;
  state.tenants = tenants;
  session.set(TOKEN, token);
  $("signin").hidden = true;
  $("tabs").hidden = false;
  $("signout").hidden = false;
  $("who").textContent = "Operator";
  show("tenants");
}

function signOut() {
  session.forget(TOKEN);
  state.token = null;
  location.reload();
}

function nameOf(id) {
  return state.tenants.find((t) => t.id === id)?.name ?? id;
}

// ---- Tenants ----

async function loadTenants() {
  showError($("tenants-error"));
  try {
    state.tenants = (await call("/admin/v1/tenants")).tenants;
    renderTenants();
  } catch (e) {
    showError($("tenants-error"), e);
  }
}

function renderTenants() {
  const needle = $("tenant-search").value.trim().toLowerCase();
  const rows = state.tenants.filter((t) => !needle || t.name.toLowerCase().includes(needle) || t.id.includes(needle));
  $("tenants-table").replaceChildren(table([
    { label: "name", cell: (t) => h("button", { type: "button", class: "link", onclick: () => openTenant(t.id) }, t.name) },
    { label: "id", cell: (t) => h("code", {}, t.id) },
    { label: "rate / burst", cell: (t) => `${fmtNum(t.rate_limit_rps)} / ${fmtNum(t.burst)}`, class: "n" },
    { label: "state", cell: (t) => h("span", { class: t.suspended ? "bad" : "ok" }, t.suspended ? "suspended" : "active") },
    { label: "created (UTC)", cell: (t) => fmtTime(t.created_at) },
  ], rows, { id: "tenants-rows", empty: needle ? "No tenant matches." : "No tenants yet." }));
}

async function createTenant(event) {
  event.preventDefault();
  showError($("tenants-error"));
  const body = { name: $("new-name").value, rate_limit_rps: Number($("new-rps").value) };
  if ($("new-burst").value) body.burst = Number($("new-burst").value);
  try {
    const tenant = await call("/admin/v1/tenants", { method: "POST", json: body });
    $("new-name").value = "";
    await loadTenants();
    await openTenant(tenant.id);
  } catch (e) {
    showError($("tenants-error"), e);
  }
}

async function patchTenant(id, patch) {
  showError($("tenants-error"));
  try {
    await call(`/admin/v1/tenants/${id}`, { method: "PATCH", json: patch });
    await loadTenants();
    await openTenant(id);
  } catch (e) {
    showError($("tenants-error"), e);
  }
}

async function openTenant(id) {
  const t = state.tenants.find((x) => x.id === id);
  if (!t) return;
  const detail = $("tenant-detail");
  detail.hidden = false;
  const rps = h("input", { type: "number", min: 1, max: 1000000, value: t.rate_limit_rps, id: "edit-rps" });
  const burst = h("input", { type: "number", min: 1, max: 1000000, value: t.burst, id: "edit-burst" });
  const keysBox = h("div", { id: "tenant-keys" });
  const secretBox = h("div", { class: "secret", id: "tenant-new-key", hidden: true });
  detail.replaceChildren(
    h("h3", { id: "tenant-title" }, t.name),
    h("p", {}, h("code", {}, t.id), t.suspended ? h("span", { class: "bad" }, " suspended") : ""),
    h("div", { class: "row" },
      h("label", {}, "Rate (req/s) ", rps),
      h("label", {}, "Burst ", burst),
      h("button", { type: "button", onclick: () => patchTenant(id, { rate_limit_rps: Number(rps.value), burst: Number(burst.value) }) }, "Save limits"),
      h("button", { type: "button", class: t.suspended ? "" : "danger", id: "tenant-suspend", onclick: () => patchTenant(id, { suspended: !t.suspended }) },
        t.suspended ? "Resume" : "Suspend")),
    h("h4", {}, "Keys"),
    h("button", { type: "button", id: "tenant-issue-key", onclick: () => issueKey(id, secretBox, keysBox) }, "Issue a key"),
    secretBox,
    keysBox);
  await loadKeys(id, keysBox);
}

async function loadKeys(id, box) {
  try {
    const { keys } = await call(`/admin/v1/tenants/${id}/keys`);
    box.replaceChildren(table([
      { label: "key", cell: (k) => h("code", {}, k.key_id) },
      { label: "created (UTC)", cell: (k) => fmtTime(k.created_at) },
      { label: "state", cell: (k) => (k.revoked_at ? `revoked ${fmtTime(k.revoked_at)}` : "live") },
      { label: "", cell: (k) => (k.revoked_at ? "" : h("button", { type: "button", class: "danger", "data-key": k.key_id, onclick: () => revokeKey(id, k.key_id, box) }, "Revoke")) },
    ], keys, { empty: "No keys.", id: "tenant-keys-rows" }));
  } catch (e) {
    showError($("tenants-error"), e);
  }
}

async function issueKey(id, secretBox, keysBox) {
  try {
    const issued = await call(`/admin/v1/tenants/${id}/keys`, { method: "POST" });
    secretBox.hidden = false;
    secretBox.replaceChildren(h("p", {}, "New key; the secret is shown this once:"), h("code", { id: "tenant-key-secret" }, issued.secret));
    await loadKeys(id, keysBox);
  } catch (e) {
    showError($("tenants-error"), e);
  }
}

async function revokeKey(id, keyId, box) {
  try {
    await call(`/admin/v1/keys/${encodeURIComponent(keyId)}`, { method: "DELETE" });
    await loadKeys(id, box);
  } catch (e) {
    showError($("tenants-error"), e);
  }
}

// ---- Usage across tenants ----

function range(prefix) {
  return { from: fromInput($(`${prefix}-from`).value), to: fromInput($(`${prefix}-to`).value) };
}

async function loadTop() {
  showError($("usage-error"));
  const q = new URLSearchParams({ ...range("usage"), by: $("usage-by").value, limit: "20" });
  try {
    const top = await call(`/admin/v1/usage/top?${q}`);
    $("usage-top").replaceChildren(table([
      { label: "tenant", cell: (t) => h("button", { type: "button", class: "link", onclick: () => tenantChart(t.tenant) }, t.name) },
      { label: "requests", cell: (t) => fmtNum(t.requests), class: "n" },
      { label: "failed", cell: (t) => fmtNum(t.failed), class: "n" },
      { label: "bytes in", cell: (t) => fmtBytes(t.bytes_in), class: "n" },
      { label: "bytes out", cell: (t) => fmtBytes(t.bytes_out), class: "n" },
      { label: "CPU ms", cell: (t) => fmtNum(t.cpu_ms), class: "n" },
    ], top.tenants, { empty: "No usage in this range.", id: "usage-top-rows" }));
  } catch (e) {
    showError($("usage-error"), e);
  }
}

async function tenantChart(id) {
  const q = new URLSearchParams({ ...range("usage"), tenant: id, bucket: "hour" });
  try {
    const report = await call(`/admin/v1/usage?${q}`);
    $("usage-tenant-title").textContent = `${nameOf(id)} by hour`;
    chart($("usage-chart"), report.buckets, [
      { label: "succeeded", value: (b) => b.succeeded },
      { label: "failed", value: (b) => b.failed },
      { label: "CPU ms", value: (b) => b.cpu_ms },
    ], { range: [q.get("from"), q.get("to")] });
  } catch (e) {
    showError($("usage-error"), e);
  }
}

// ---- Audit ----

async function loadAudit(event) {
  event?.preventDefault();
  showError($("audit-error"));
  const tenant = $("audit-tenant").value;
  if (!tenant) return;
  const q = new URLSearchParams({ ...range("audit"), tenant, limit: "2000" });
  try {
    const { records } = await call(`/admin/v1/audit?${q}`);
    const status = $("audit-status").value;
    const rows = records.reverse().filter((r) => !status || String(r.status).startsWith(status)).slice(0, 200);
    $("audit-table").replaceChildren(table([
      { label: "received (UTC)", cell: (r) => fmtTime(r.received_unix_ms) },
      { label: "status", cell: (r) => h("span", { class: r.status < 300 ? "ok" : "bad" }, r.status), class: "n" },
      { label: "route", cell: (r) => r.route },
      { label: "parameters", cell: (r) => h("code", {}, r.params) },
      { label: "key", cell: (r) => h("code", {}, r.key_id) },
      { label: "node", cell: (r) => r.api_node ?? "" },
      { label: "ms", cell: (r) => fmtNum(r.total_ms), class: "n" },
    ], rows, { empty: "No records in this range.", id: "audit-rows" }));
  } catch (e) {
    showError($("audit-error"), e);
  }
}

function fillTenantSelect() {
  const select = $("audit-tenant");
  const chosen = select.value;
  select.replaceChildren(...state.tenants.map((t) => h("option", { value: t.id }, `${t.name} (${t.id.slice(0, 12)}…)`)));
  if (chosen) select.value = chosen;
}

// ---- Fleet ----

async function pollFleet() {
  try {
    const now = performance.now();
    const { nodes } = await call("/admin/v1/fleet");
    const last = state.lastFleet;
    const rate = (node, field) => {
      const before = last?.nodes.find((n) => n.name === node.name)?.metrics;
      if (!before || !node.metrics) return null;
      return (node.metrics[field] - before[field]) / ((now - last.at) / 1000);
    };
    $("fleet-table").replaceChildren(table([
      { label: "node", cell: (n) => n.name },
      { label: "state", cell: (n) => h("span", { class: n.up && n.ready !== false ? "ok" : "bad" }, !n.up ? `down: ${n.error ?? ""}` : n.ready === false ? "not ready" : "up") },
      { label: "req/s", cell: (n) => fmt(rate(n, "requests_total"), 1), class: "n" },
      { label: "errors", cell: (n) => errorRatio(rate(n, "errors_total"), rate(n, "requests_total")), class: "n" },
      { label: "p50 / p99 ms", cell: (n) => (n.metrics?.p50_ms == null ? "" : `${fmt(n.metrics.p50_ms, 1)} / ${fmt(n.metrics.p99_ms, 1)}`), class: "n" },
      { label: "queue", cell: (n) => fmt(n.metrics?.queue_depth, 0), class: "n" },
      { label: "refusals/s", cell: (n) => fmt(rate(n, "refusals_total"), 1), class: "n" },
      { label: "imaging busy", cell: (n) => fmt(n.metrics?.imaging_busy, 0), class: "n" },
      { label: "auth cache age s", cell: (n) => fmt(n.metrics?.auth_cache_age_seconds, 1), class: "n" },
      { label: "aggregator lease", cell: (n) => (n.metrics?.aggregator_active === 1 ? "held" : "") },
    ], nodes, { id: "fleet-rows" }));
    state.lastFleet = { at: now, nodes };
    showError($("fleet-error"));
  } catch (e) {
    showError($("fleet-error"), e);
  }
}

function fmt(value, digits) {
  return value == null || Number.isNaN(value) ? "" : Number(value).toFixed(digits);
}

function errorRatio(errors, requests) {
  if (errors == null || !requests) return "";
  return `${((100 * errors) / requests).toFixed(1)} %`;
}

// ---- Flags ----

async function loadFlags() {
  showError($("flags-error"));
  try {
    const { flags, known } = await call("/admin/v1/flags");
    const names = [...new Set([...known.map((k) => k.name), ...flags.map((f) => f.name)])];
    $("flags-list").replaceChildren(...names.map((name) =>
      flagCard(name, flags.find((f) => f.name === name), known.find((k) => k.name === name))));
  } catch (e) {
    showError($("flags-error"), e);
  }
}

function flagCard(name, flag, known) {
  const id = (what) => `flag-${name}-${what}`;
  const def = h("input", { type: "checkbox", id: id("default"), checked: flag?.default });
  const pct = h("input", { type: "number", min: 0, max: 100, value: flag?.rollout_percent ?? 0, id: id("percent") });
  const overrides = h("textarea", { id: id("overrides"), rows: 3, spellcheck: "false", placeholder: "tenant_id=on (one per line)" });
  overrides.value = Object.entries(flag?.overrides ?? {}).map(([t, on]) => `${t}=${on ? "on" : "off"}`).join("\n");
  const save = async () => {
    showError($("flags-error"));
    try {
      await call(`/admin/v1/flags/${name}`, {
        method: "PUT",
        json: {
          description: flag?.description || known?.effect || "",
          default: def.checked,
          rollout_percent: Number(pct.value),
          overrides: parseOverrides(overrides.value),
        },
      });
      await loadFlags();
    } catch (e) {
      showError($("flags-error"), e);
    }
  };
  const remove = async () => {
    try {
      await call(`/admin/v1/flags/${name}`, { method: "DELETE" });
      await loadFlags();
    } catch (e) {
      showError($("flags-error"), e);
    }
  };
  return h("div", { class: "flag", id: id("card") },
    h("h3", {}, name, flag ? "" : h("small", {}, " (not defined: off)")),
    h("p", {}, known?.effect ?? flag?.description ?? ""),
    h("div", { class: "row" },
      h("label", {}, def, " on by default"),
      h("label", {}, "Rollout % ", pct),
      h("label", { class: "wide" }, "Overrides ", overrides),
      h("button", { type: "button", id: id("save"), onclick: save }, flag ? "Save" : "Define"),
      flag ? h("button", { type: "button", class: "danger", onclick: remove }, "Delete") : ""),
    flag ? h("p", { class: "summary" }, `Updated ${fmtTime(flag.updated_at * 1000)}; ${Object.keys(flag.overrides).length} override(s).`) : "");
}

/** `tenant=on|off` lines (a tenant's name works too) → {tenant_id: bool}. */
function parseOverrides(text) {
  const out = {};
  for (const line of text.split("\n").map((l) => l.trim()).filter(Boolean)) {
    const [who, value] = line.split("=").map((s) => s.trim());
    const tenant = state.tenants.find((t) => t.id === who || t.name === who)?.id ?? who;
    out[tenant] = /^(on|true|1|yes)$/i.test(value ?? "on");
  }
  return out;
}

// ---- Wiring ----

const show = tabs($("tabs"), (name) => {
  clearInterval(state.fleetTimer);
  if (name === "tenants") loadTenants();
  if (name === "usage") loadTop();
  if (name === "audit") { fillTenantSelect(); loadAudit(); }
  if (name === "flags") loadFlags();
  if (name === "fleet") {
    pollFleet();
    state.fleetTimer = setInterval(pollFleet, 2000);
  }
});

function init() {
  const hour = 3600 * 1000;
  const end = new Date(Math.ceil(Date.now() / hour) * hour);
  for (const p of ["usage", "audit"]) {
    $(`${p}-from`).value = toInput(new Date(end - 24 * hour));
    $(`${p}-to`).value = toInput(new Date(end.getTime() + hour));
  }
  $("signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    showError($("signin-error"));
    try {
      await signIn($("token").value.trim());
      $("token").value = "";
    } catch (e) {
      showError($("signin-error"), e.status === 401 ? { message: "That is not the admin token." } : e);
    }
  });
  $("signout").addEventListener("click", signOut);
  $("tenant-create").addEventListener("submit", createTenant);
  $("tenant-search").addEventListener("input", renderTenants);
  $("usage-form").addEventListener("submit", (e) => { e.preventDefault(); loadTop(); });
  $("audit-form").addEventListener("submit", loadAudit);
  const saved = session.get(TOKEN);
  if (saved) signIn(saved).catch(() => session.forget(TOKEN));
}

init();
