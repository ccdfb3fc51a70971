// The ops console page: polls the console's own /api (the session cookie rides along) and
// renders with DOM calls only (textContent, never innerHTML of data): the values come from
// sidecars and logs, which an attacker may influence.
"use strict";

const $ = (sel) => document.querySelector(sel);
const errors = new Map();

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

function showErrors() {
  const banner = $("[data-testid=error-banner]");
  banner.textContent = Array.from(errors.values()).join(" · ");
  banner.hidden = errors.size === 0;
}

async function api(path) {
  const response = await fetch(path, { credentials: "same-origin", headers: { accept: "application/json" } });
  if (response.status === 401) {
    window.location.assign("/auth/login");
    throw new Error("not signed in");
  }
  const body = await response.json();
  if (!response.ok) {
    throw new Error(body.detail || body.title || ("HTTP " + response.status));
  }
  return body;
}

async function load(key, path, render) {
  try {
    render(await api(path));
    errors.delete(key);
  } catch (exc) {
    errors.set(key, key + ": " + exc.message);
  }
  showErrors();
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.abs(Math.round(seconds));
  const sign = seconds < 0 ? "-" : "";
  if (s < 120) return sign + s + "s";
  if (s < 7200) return sign + Math.round(s / 60) + "m";
  if (s < 172800) return sign + Math.round(s / 3600) + "h";
  return sign + Math.round(s / 86400) + "d";
}

function health(ok) {
  if (ok === null || ok === undefined) return el("span", { class: "muted", text: "–" });
  return el("span", { class: ok ? "ok" : "bad", text: ok ? "healthy" : "down" });
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

// ------------------------------------------------------------------ applications
let selectedApp = null;

function renderApps(body) {
  $("[data-testid=profile]").textContent = "profile " + body.profile;
  const rows = body.apps.map((app) => {
    const procs = app.processes || {};
    const sidecarProc = procs.sidecar || null;
    const appProc = procs.app || null;
    const deployment = procs.deployment || null;
    const pid = deployment
      ? deployment.ready + "/" + deployment.replicas + " ready"
      : [appProc ? "app " + appProc.pid : null, sidecarProc ? "daprd " + sidecarProc.pid : null]
          .filter(Boolean).join(" · ") || "–";
    const uptime = sidecarProc ? duration(sidecarProc.uptime_seconds) : "–";
    const restarts = [appProc, sidecarProc].filter(Boolean)
      .reduce((n, p) => n + (p.restarts || 0), 0);
    const p = app.ports || {};
    const meta = app.sidecar;
    const row = el("tr", { "data-app-id": app.app_id, class: "clickable" },
      el("td", { text: app.app_id }),
      el("td", {}, app.ports.app ? health(app.health.app) : el("span", { class: "muted", text: "no app" })),
      el("td", {}, health(app.health.sidecar)),
      el("td", { text: pid }),
      el("td", { text: [p.app || "–", p.http || "–", p.grpc || "–", p.metrics || "–"].join(" · ") }),
      el("td", { text: uptime }),
      el("td", { text: String(restarts) }),
      el("td", { text: meta ? meta.runtime_version : (app.sidecar_error || "–") }),
      el("td", { text: meta ? meta.components.map((c) => c.name).join(", ") : "–" }),
      el("td", { text: meta ? String(meta.subscriptions.length) : "–" }));
    row.addEventListener("click", () => { selectedApp = app.app_id; loadDetail(); });
    return row;
  });
  fill($("[data-testid=apps] tbody"), rows);
}

function table(headers, rows) {
  return el("table", {},
    el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", { text: h })))),
    el("tbody", {}, ...rows.map((r) => el("tr", {}, ...r.map((c) => el("td", {}, c instanceof Node ? c : String(c)))))));
}

function traceLink(traceId) {
  if (!traceId) return "–";
  const a = el("a", { href: "#traces", text: traceId.slice(0, 16) + "…" });
  a.addEventListener("click", () => { $("[data-testid=trace-query]").value = traceId; showTrace(traceId); });
  return a;
}

function renderDetail(app) {
  const box = $("[data-testid=app-detail]");
  const meta = app.sidecar || { components: [], subscriptions: [], actors: [], workflows: {}, http_endpoints: [], enabled_features: [] };
  const config = app.configuration || { acl: [], mtls: {} };
  box.replaceChildren(
    el("h3", { text: app.app_id + " — sidecar metadata" }),
    el("p", { text: "daprd " + (meta.runtime_version || "?") + " · features: " + (meta.enabled_features.join(", ") || "none")
      + " · HTTP endpoints: " + (meta.http_endpoints.join(", ") || "none") }),
    el("h4", { text: "Components" }),
    table(["name", "type", "version"], meta.components.map((c) => [c.name, c.type, c.version])),
    el("h4", { text: "Subscriptions" }),
    table(["pubsub", "topic", "routes", "dead-letter topic"], meta.subscriptions.map((s) => [s.pubsub, s.topic, s.routes.join(", "), s.dead_letter_topic || "–"])),
    el("h4", { text: "Actors and workflows" }),
    el("p", { text: "actors: " + (meta.actors.map((a) => a.type + " (" + a.count + ")").join(", ") || "none")
      + " · workflow workers connected: " + ((meta.workflows || {}).connected_workers || 0) }),
    el("h4", { text: "Configuration: mTLS " + (config.mtls.enabled ? "on" : "off") + ", workload cert TTL " + (config.mtls.workload_cert_ttl || "–")
      + ", tracing sampling " + (config.sampling_rate || "–") + ", default " + (config.default_action || "–") }),
    table(["caller", "operation", "verbs", "action"], config.acl.map((r) => [r.caller, r.operation, r.verbs.join(","), r.action])),
    el("h4", { text: "Resiliency" }),
    el("pre", { text: JSON.stringify(app.resiliency, null, 2) }),
    el("h4", { text: "Last errors" }),
    table(["time", "level", "message", "trace"], app.last_errors.map((e) => [e.time, e.level, e.message, traceLink(e.trace_id)])));
  box.hidden = false;
}

function loadDetail() {
  if (selectedApp) load("app " + selectedApp, "/api/apps/" + encodeURIComponent(selectedApp), renderDetail);
}

// ----------------------------------------------------------------- control plane
function renderControlPlane(body) {
  fill($("[data-testid=control-plane] tbody"), body.services.map((s) => el("tr", { "data-service": s.name },
    el("td", { text: s.name }), el("td", {}, health(s.healthy)), el("td", { text: s.version || "–" }),
    el("td", { text: s.process ? String(s.process.pid) : (s.replicas !== undefined ? s.replicas + " replicas" : "–") }),
    el("td", { text: s.process ? duration(s.process.uptime_seconds) : "–" }))));
  fill($("[data-testid=certificates] tbody"), body.certificates.map((c) => el("tr", { "data-cert": c.what },
    el("td", { text: c.what }),
    el("td", { text: c.error || (c.spiffe_ids && c.spiffe_ids.length ? c.spiffe_ids.join(", ") : c.subject) }),
    el("td", { text: c.not_after || "–" }),
    el("td", { text: c.error ? "–" : duration(c.expires_in_seconds) }))));
}

// --------------------------------------------------- components, configurations
function yamlBlock(summary, text) {
  return el("details", {}, el("summary", { text: summary }), el("pre", { text: text }));
}

function renderComponents(body) {
  $("[data-testid=components-profile]").textContent = "(profile " + body.profile + ")";
  fill($("[data-testid=components] tbody"), body.components.map((c) => el("tr", { "data-component": c.name },
    el("td", { text: c.name }), el("td", { text: c.type }), el("td", { text: c.version }),
    el("td", { text: c.scopes.length ? c.scopes.join(", ") : "all apps" }),
    el("td", {}, yamlBlock(c.file, c.yaml)))));
}

function renderConfigurations(body) {
  $("[data-testid=configurations]").replaceChildren(...body.configurations.map((c) =>
    el("div", { "data-configuration": c.name },
      yamlBlock((c.kind || "Configuration") + " " + c.name + " — " + c.file
        + (c.acl ? " (" + c.acl.length + " ACL rules, default " + c.default_action + ", sampling " + c.sampling_rate + ")" : ""), c.yaml))));
}

// ---------------------------------------------------------------------- traffic
function chart(service, series) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 300 80");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("data-testid", "chart-" + service);
  const points = series.filter((p) => Number.isFinite(p[1]));
  svg.setAttribute("data-points", String(points.filter((p) => p[1] > 0).length));
  if (points.length > 1) {
    const t0 = points[0][0], t1 = points[points.length - 1][0];
    const max = Math.max(...points.map((p) => p[1]), 1e-9);
    const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    line.setAttribute("points", points.map((p) =>
      (300 * (p[0] - t0) / Math.max(1, t1 - t0)).toFixed(1) + "," + (78 - 74 * p[1] / max).toFixed(1)).join(" "));
    svg.append(line);
  }
  return svg;
}

function num(value, digits) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
}

function renderTraffic(body) {
  if (body.error) throw new Error(body.error);
  $("[data-testid=traffic]").replaceChildren(...body.apps.map((a) => el("div", { class: "chart", "data-service": a.service },
    el("h4", { text: a.service }),
    el("div", { class: "muted", text: num(a.request_rate, 2) + " req/s · errors " + num(a.error_rate, 2) + "/s · p99 "
      + (a.p99_seconds === null || a.p99_seconds === undefined ? "–" : (a.p99_seconds * 1000).toFixed(0) + " ms") }),
    chart(a.service, a.series))));
  fill($("[data-testid=subscriptions] tbody"), body.subscriptions.map((s) => el("tr", {},
    el("td", { text: s.service }), el("td", { text: s.topic }), el("td", { text: num(s.events_per_second, 2) }),
    el("td", { text: s.delay_p99_seconds === null || s.delay_p99_seconds === undefined ? "–" : (s.delay_p99_seconds * 1000).toFixed(0) + " ms" }),
    el("td", { text: num(s.dropped_total, 0) }))));
  fill($("[data-testid=dead-letters] tbody"), Object.entries(body.dead_letters).map(([topic, count]) =>
    el("tr", {}, el("td", { text: topic }), el("td", { text: String(count) }))));
}

function renderPending(body) {
  if (body.error) throw new Error(body.error);
  fill($("[data-testid=pending] tbody"), body.transactions.map((t) => el("tr", { "data-transaction": t.id },
    el("td", { text: t.id }), el("td", { text: t.created_at }), el("td", { text: duration(t.age_seconds) }))));
}

// ----------------------------------------------------------------------- traces
async function showTrace(query) {
  const status = $("[data-testid=trace-status]");
  const box = $("[data-testid=waterfall]");
  status.textContent = "searching…";
  box.replaceChildren();
  box.removeAttribute("data-trace-id");
  try {
    const trace = await api("/api/traces?q=" + encodeURIComponent(query));
    status.textContent = "trace " + trace.trace_id + " · " + trace.spans.length + " spans · "
      + (trace.duration_us / 1000).toFixed(1) + " ms · " + trace.services.join(", ");
    box.replaceChildren(...trace.spans.map((s) => {
      const name = el("div", { class: "span-name", text: s.service + ": " + s.operation });
      name.style.paddingLeft = (s.depth * 12) + "px";
      const bar = el("div", { class: "span-bar" + (s.error ? " error" : "") });
      bar.style.left = s.offset_pct + "%";
      bar.style.width = s.width_pct + "%";
      return el("div", { class: "span-row", "data-span-id": s.span_id, "data-service": s.service },
        name, el("div", { class: "span-track" }, bar), el("div", { text: (s.duration_us / 1000).toFixed(1) + " ms" }));
    }));
    box.setAttribute("data-trace-id", trace.trace_id);
  } catch (exc) {
    status.textContent = exc.message;
  }
}

// ------------------------------------------------------------------------ start
function refreshFast() {
  load("apps", "/api/apps", renderApps);
  load("traffic", "/api/traffic", renderTraffic);
  load("non-final transactions", "/api/transactions/pending", renderPending);
  loadDetail();
}

function refreshSlow() {
  load("control plane", "/api/control-plane", renderControlPlane);
  load("components", "/api/components", renderComponents);
  load("configurations", "/api/configurations", renderConfigurations);
}

document.addEventListener("DOMContentLoaded", () => {
  load("session", "/api/whoami", (who) => { $("[data-testid=whoami]").textContent = "signed in: " + who.subject; });
  $("[data-testid=trace-search]").addEventListener("submit", (event) => {
    event.preventDefault();
    showTrace($("[data-testid=trace-query]").value.trim());
  });
  refreshFast();
  refreshSlow();
  setInterval(refreshFast, 5000);
  setInterval(refreshSlow, 30000);
});
