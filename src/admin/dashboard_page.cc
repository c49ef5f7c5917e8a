#include "admin/dashboard_page.h"

namespace attache {
namespace {

// Everything the page inserts that comes from outside (service, source and
// node names, error and NACK messages) goes in as text (textContent, text
// nodes), never as HTML.
constexpr std::string_view kPage = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>attache dashboard</title>
<link rel="icon" href="data:,">
<style>
  :root { --ok: #d7f0dc; --warn: #fbe6b0; --bad: #f6c7c7; --none: #f2f2f2;
          --line: #d9d9d9; --muted: #666; }
  body { font: 14px/1.4 system-ui, sans-serif; margin: 16px; color: #222; }
  header { display: flex; gap: 24px; align-items: baseline; flex-wrap: wrap; }
  h1 { font-size: 20px; margin: 0; }
  h2 { font-size: 16px; margin: 24px 0 6px; }
  p { margin: 0 0 8px; }
  table { border-collapse: collapse; margin-top: 6px; }
  th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left;
           vertical-align: top; white-space: nowrap; }
  td.message { white-space: normal; min-width: 12em; max-width: 48em; }
  thead th { background: #f7f7f7; }
  tbody th { font-weight: 600; }
  .num { text-align: right; }
  .cell { text-align: right; min-width: 4em; }
  .detail, .muted { color: var(--muted); font-size: 12px; }
  .cell .detail, th .detail { display: block; font-weight: normal; }
  code { font: 12px ui-monospace, monospace; }
  .ok { background: var(--ok); }
  .warn { background: var(--warn); }
  .bad { background: var(--bad); }
  .none { background: var(--none); color: var(--muted); text-align: center; }
  #status { padding: 0 8px; border-radius: 4px; }
</style>
</head>
<body>
<header>
  <h1>attache</h1>
  <span>catalog generation <b id="generation">-</b></span>
  <span>last updated <b id="updated">never</b></span>
  <span id="status" class="muted">connecting...</span>
</header>

<h2>Services &times; sources <span id="services-count" class="muted"></span></h2>
<p class="muted">Endpoints per service and source. Green: all healthy;
amber: some draining or unhealthy; red: none healthy.
<input id="filter" type="search" placeholder="filter services"></p>
<table id="matrix"></table>

<h2>Sources <span id="sources-count" class="muted"></span></h2>
<table id="sources"></table>

<h2>Clients <span id="clients-count" class="muted"></span></h2>
<table id="clients"></table>

<script>
"use strict";
const PERIOD_MS = 1000;
const $ = (id) => document.getElementById(id);

// el("td", {className: "num", data: {source: "east"}}, "text", node, ...).
// Strings become text nodes: data from attache is never parsed as HTML.
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  const { data, ...rest } = props || {};
  Object.assign(node, rest);
  Object.assign(node.dataset, data || {});
  node.append(...children.map((c) => (c === null || c === undefined ? "" : c)));
  return node;
}
const row = (cells, props) => el("tr", props, ...cells);
const heads = (...names) => el("thead", {}, row(names.map((n) => el("th", {}, n))));
const emptyBody = (span, text) =>
  el("tbody", {}, row([el("td", { colSpan: span, className: "muted" }, text)]));

function healthClass(c) {
  if (!c || c.endpoints === 0) return "none";
  if (c.healthy === c.endpoints) return "ok";
  return c.healthy === 0 ? "bad" : "warn";
}

function countsCell(counts, data) {
  const cls = healthClass(counts);
  if (cls === "none") {
    return el("td", { className: "cell none", data: { ...data, health: cls } }, "-");
  }
  const parts = ["draining", "unhealthy"].filter((h) => counts[h] > 0)
    .map((h) => `${counts[h]} ${h}`);
  return el("td", {
    className: `cell ${cls}`, data: { ...data, health: cls },
    title: `${counts.endpoints} endpoints: ${counts.healthy} healthy, ` +
           `${counts.draining} draining, ${counts.unhealthy} unhealthy`,
  }, el("span", { className: "count" }, String(counts.endpoints)),
     parts.length ? el("span", { className: "detail" }, parts.join(", ")) : "");
}

function renderMatrix(catalog) {
  const services = Object.entries(catalog.services || {});
  const sources = [...(catalog.sources || [])];
  for (const [, service] of services) {
    for (const name of Object.keys(service.by_source || {})) {
      if (!sources.includes(name)) sources.push(name);
    }
  }
  const filter = $("filter").value.trim().toLowerCase();
  const rows = services.filter(([name]) => name.toLowerCase().includes(filter))
    .map(([name, service]) => {
      const total = { endpoints: 0, healthy: 0, draining: 0, unhealthy: 0 };
      for (const counts of Object.values(service.by_source || {})) {
        for (const key of Object.keys(total)) total[key] += counts[key] || 0;
      }
      const totalCell = total.endpoints
        ? countsCell(total, { total: "" })
        : el("td", { className: "cell bad", data: { total: "", health: "bad" } }, "0");
      return row([el("th", {}, name), totalCell,
                  ...sources.map((s) => countsCell(service.by_source[s], { source: s }))],
                 { data: { service: name } });
    });
  $("matrix").replaceChildren(heads("service", "total", ...sources),
    rows.length ? el("tbody", {}, ...rows)
                : emptyBody(sources.length + 2, filter ? "no service matches" : "no services"));
}

function seconds(s) {
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${(s / 3600).toFixed(1)} h`;
}

function renderSources(sources) {
  const stateClass = { synced: "ok", starting: "warn", stale: "bad" };
  const rows = sources.map((s) => row([
    el("th", {}, s.name),
    el("td", { className: `state ${stateClass[s.state] || "warn"}` },
       s.state + (s.expired ? " (expired: endpoints withdrawn)" : "")),
    el("td", {}, s.last_sync || "never"),
    el("td", {}, s.stale_seconds === undefined ? "-" : seconds(s.stale_seconds)),
    el("td", { className: "num" }, String(s.updates)),
    el("td", { className: "num" }, String(s.errors)),
    el("td", { className: `message ${s.state === "stale" ? "" : "muted"}` }, s.last_error || "-"),
  ], { data: { source: s.name } }));
  $("sources").replaceChildren(
    heads("source", "state", "last sync (UTC)", "stale for", "updates", "errors", "last error"),
    rows.length ? el("tbody", {}, ...rows) : emptyBody(7, "no sources"));
}

const SHORT_TYPES = { Cluster: "CDS", ClusterLoadAssignment: "EDS", Listener: "LDS",
                      RouteConfiguration: "RDS" };
function shortType(url) {
  const name = url.split(".").pop();
  return SHORT_TYPES[name] || name;
}
function version(v) {
  if (!v) return el("span", { className: "muted" }, "none");
  return el("code", { title: v }, v.length > 16 ? `${v.slice(0, 16)}...` : v);
}
function syncState(t) {
  if (t.awaiting_ack) return ["awaiting ACK", "warn"];
  if (!t.sent_version) return ["nothing sent", "none"];
  if (t.sent_version === t.acked_version) return ["in sync", "ok"];
  return t.nack_count > 0 ? ["NACKed", "bad"] : ["not acked", "warn"];
}

function renderClients(clients) {
  const rows = [];
  for (const c of clients) {
    const types = Object.entries(c.types || {});
    const span = Math.max(types.length, 1);
    const zone = [c.locality?.region, c.locality?.zone].filter(Boolean).join("/");
    const client = [
      el("th", { rowSpan: span }, c.node_id || "(no node id)",
         el("span", { className: "detail" },
            [c.user_agent, c.protocol, zone].filter(Boolean).join(", "))),
      el("td", { rowSpan: span }, c.connected_at || ""),
    ];
    if (!types.length) {
      rows.push(row([...client, el("td", { colSpan: 7, className: "muted" }, "no subscription yet")],
                    { data: { node: c.node_id } }));
    }
    types.forEach(([url, t], i) => {
      const [state, cls] = syncState(t);
      const nack = t.last_nack;
      rows.push(row([
        ...(i === 0 ? client : []),
        el("td", { title: url }, shortType(url)),
        el("td", { className: "num" }, t.wildcard ? "all" : String((t.subscribed || []).length)),
        el("td", {}, version(t.sent_version)),
        el("td", {}, version(t.acked_version)),
        el("td", { className: `sync ${cls}` }, state),
        el("td", { className: `num nacks ${t.nack_count ? "bad" : ""}` }, String(t.nack_count)),
        el("td", { className: "message nack" }, nack ? nack.message : "-"),
      ], { data: { node: c.node_id, type: shortType(url) } }));
    });
  }
  $("clients").replaceChildren(
    heads("client", "connected (UTC)", "type", "subscribed", "sent version", "acked version",
          "status", "NACKs", "last NACK"),
    rows.length ? el("tbody", {}, ...rows) : emptyBody(9, "no clients connected"));
}

async function getJson(path) {
  const response = await fetch(path, { cache: "no-store", signal: AbortSignal.timeout(5000) });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

function setStatus(text, cls) {
  $("status").textContent = text;
  $("status").className = cls;
}

let last = null;
let lastText = "";
async function refresh() {
  try {
    const [catalog, sources, clients] = await Promise.all(
      ["debug/catalog", "debug/sources", "debug/clients"].map(getJson));
    last = { catalog, sources, clients };
    const text = JSON.stringify(last);
    if (text !== lastText) render();  // unchanged: keep the DOM (and any selection)
    lastText = text;
    $("updated").textContent = new Date().toLocaleTimeString();
    setStatus("live", "ok");
  } catch (error) {
    setStatus(`cannot reach attache (${error.message}); showing the last data`, "bad");
  } finally {
    setTimeout(refresh, PERIOD_MS);
  }
}
function render() {
  if (!last) return;
  $("generation").textContent = String(last.catalog.generation);
  renderMatrix(last.catalog);
  renderSources(last.sources);
  const clients = Array.isArray(last.clients) ? last.clients : last.clients.clients || [];
  renderClients(clients);
  const plural = (n, what) => `(${n} ${what}${n === 1 ? "" : "s"})`;
  $("services-count").textContent =
    plural(Object.keys(last.catalog.services || {}).length, "service");
  $("sources-count").textContent = plural(last.sources.length, "source");
  $("clients-count").textContent = plural(clients.length, "client");
}
$("filter").addEventListener("input", render);
refresh();
</script>
</body>
</html>
)html";

}  // namespace

std::string_view DashboardPage() { return kPage; }

}  // namespace attache
