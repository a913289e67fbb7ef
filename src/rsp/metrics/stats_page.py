"""The live stats page: one self-contained HTML document (inline CSS and JS, no external asset).

In the spirit of HAProxy's stats page: per pool a table of its backends with their state in colour (UP green,
DOWN red, DRAIN amber), sessions, requests, errors, last health check, weight; the listeners; the request
rate with a graph of the last minutes; workers, reloads, last reload. The page fetches `stats.json` every
`refresh` seconds and redraws.

Decisions:
- The graph's history lives in the page (a ring of the last `HISTORY_SECONDS` of polls), not on the server:
  the server keeps no state per viewer and no timer, and a scrape-only deployment pays nothing for the page.
  The price is that the graph starts empty when the page is opened.
- XSS: the server puts no name into the HTML. Every pool, backend and listener name (they come from the
  config) reaches the page as JSON and is written with `textContent` / `setAttribute`, never as markup, so a
  name like `<img onerror=...>` shows as text. The one value substituted into the document is the refresh
  interval, a number formatted by Python.
- Phones: a viewport meta, and below 700 px every table row becomes a card of "label: value" lines, so the
  page never scrolls sideways.
"""

from __future__ import annotations

from typing import Final

# How much request-rate history the page keeps and draws (HAProxy's page has none; "the last minutes").
HISTORY_SECONDS: Final = 600

_PAGE: Final = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>rsp stats</title>
<link rel="icon" href="data:,">
<style>
:root { --up: #2e9e44; --down: #d64541; --drain: #e0a100; --ink: #1d2330; --mute: #687080; --line: #d9dde5; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink);
       background: #f4f6f9; }
header { background: var(--ink); color: #fff; padding: 10px 16px; display: flex; flex-wrap: wrap; gap: 6px 18px;
         align-items: baseline; }
header h1 { font-size: 18px; margin: 0 12px 0 0; }
header span { color: #c8cedb; }
header b { color: #fff; font-weight: 600; }
main { padding: 12px 16px; max-width: 1400px; margin: 0 auto; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; margin: 0 0 14px; padding: 10px 12px; }
h2 { font-size: 16px; margin: 0 0 8px; word-break: break-all; }
h2 small { font-weight: normal; color: var(--mute); margin-left: 8px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: right; padding: 4px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { background: #eef1f6; font-weight: 600; font-size: 12px; color: #444c5c; }
th:first-child, td:first-child, td.txt { text-align: left; }
td.name { font-weight: 600; word-break: break-all; white-space: normal; }
td.state { font-weight: 700; color: #fff; text-align: center; border-radius: 3px; }
tr.st-up td.state { background: var(--up); }
tr.st-down td.state { background: var(--down); }
tr.st-drain td.state { background: var(--drain); color: #222; }
tr.st-down td { background-color: #fdeceb; }
tr.st-drain td { background-color: #fff6dc; }
.err { color: var(--down); font-weight: 600; }
#graph { width: 100%; height: 90px; display: block; }
#rate { font-size: 22px; font-weight: 700; }
#status { color: var(--mute); font-size: 12px; }
#status.bad { color: var(--down); font-weight: 600; }
@media (max-width: 700px) {
  main { padding: 8px; }
  table, thead, tbody, tr, td { display: block; width: 100%; }
  thead { display: none; }
  tr { border: 1px solid var(--line); border-radius: 5px; margin: 0 0 8px; padding: 4px 6px; }
  td { border: 0; text-align: right; padding: 2px 4px; white-space: normal; word-break: break-all; }
  td::before { content: attr(data-label); float: left; color: var(--mute); font-weight: 400; padding-right: 8px; }
  td.name, td.txt { text-align: right; }
  td.state { text-align: right; }
}
</style>
</head>
<body>
<header>
  <h1>rsp stats</h1>
  <span>up <b id="uptime">-</b></span>
  <span>workers <b id="workers">-</b></span>
  <span>reloads <b id="reloads">-</b></span>
  <span>last reload <b id="last-reload">never</b></span>
  <span>worker restarts <b id="restarts">-</b></span>
</header>
<main>
  <section>
    <h2>Request rate <small id="status">loading…</small></h2>
    <div><span id="rate">-</span> requests/s</div>
    <svg id="graph" viewBox="0 0 600 90" preserveAspectRatio="none" role="img" aria-label="request rate">
      <polyline id="line" fill="none" stroke="#3768c8" stroke-width="2" vector-effect="non-scaling-stroke"
        points=""></polyline>
    </svg>
  </section>
  <section>
    <h2>Listeners</h2>
    <table id="listeners"><thead><tr><th>Listener</th><th>Mode</th><th>Pool</th><th>Active</th><th>Idle</th>
      <th>Accepted</th><th>HTTP/2</th><th>H2 streams</th><th>Bytes in</th><th>Bytes out</th><th>2xx</th><th>4xx</th>
      <th>5xx</th></tr></thead>
      <tbody></tbody></table>
  </section>
  <div id="pools"></div>
</main>
<script>
"use strict";
const REFRESH = __REFRESH__;
const HISTORY = Math.max(2, Math.ceil(__HISTORY__ / REFRESH));
const history = [];
let previous = null;

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = String(text);
  return node;
}
function cell(row, label, value, cls) {
  const td = el("td", cls || "", value);
  td.setAttribute("data-label", label);
  row.appendChild(td);
  return td;
}
function total(codes) {
  let n = 0;
  for (const k in codes) n += codes[k];
  return n;
}
function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(n)) + " " + units[i];
}
function ago(seconds) {
  if (seconds < 60) return Math.round(seconds) + " s";
  if (seconds < 3600) return Math.round(seconds / 60) + " min";
  if (seconds < 86400) return (seconds / 3600).toFixed(1) + " h";
  return (seconds / 86400).toFixed(1) + " d";
}
function key(pool, backend) { return pool + "\u0000" + backend; }

function drawGraph() {
  const line = document.getElementById("line");
  if (history.length < 2) { line.setAttribute("points", ""); return; }
  const max = Math.max(1, ...history.map(p => p.rate));
  const step = 600 / (HISTORY - 1);
  const start = 600 - step * (history.length - 1);
  line.setAttribute("points", history.map((p, i) =>
    (start + i * step).toFixed(1) + "," + (88 - 84 * p.rate / max).toFixed(1)).join(" "));
}

function renderListeners(listeners) {
  const body = document.querySelector("#listeners tbody");
  body.replaceChildren();
  for (const l of listeners) {
    const row = el("tr");
    cell(row, "Listener", l.name, "name");
    cell(row, "Mode", l.mode, "txt");
    cell(row, "Pool", l.pool, "txt");
    cell(row, "Active", l.active);
    cell(row, "Idle", l.idle);
    cell(row, "Accepted", l.accepted);
    cell(row, "HTTP/2", l.http2_connections || 0);
    cell(row, "H2 streams", l.http2_streams || 0);
    cell(row, "Bytes in", bytes(l.bytes_received));
    cell(row, "Bytes out", bytes(l.bytes_sent));
    cell(row, "2xx", l.responses["2xx"]);
    cell(row, "4xx", l.responses["4xx"]);
    cell(row, "5xx", l.responses["5xx"], l.responses["5xx"] ? "err" : "");
    body.appendChild(row);
  }
}

const BACKEND_COLUMNS = ["Backend", "Address", "State", "Weight", "Sessions", "Idle", "Total", "Requests",
  "Req/s", "5xx", "Conn fail", "Ejections", "Last check", "Checks ok/fail"];

function renderPools(pools, now, dt) {
  const box = document.getElementById("pools");
  box.replaceChildren();
  for (const pool of pools) {
    const section = el("section");
    section.setAttribute("data-pool", pool.name);
    const title = el("h2", "", pool.name);
    title.appendChild(el("small", "", pool.algorithm + " · retries " + pool.retries +
      " · unserved " + total(pool.unserved)));
    section.appendChild(title);
    const table = el("table");
    const head = el("tr");
    for (const name of BACKEND_COLUMNS) head.appendChild(el("th", "", name));
    table.appendChild(el("thead")).appendChild(head);
    const body = el("tbody");
    for (const b of pool.backends) {
      const row = el("tr", "st-" + b.state);
      row.setAttribute("data-backend", b.name);
      const requests = total(b.responses);
      let rate = "-";
      if (previous && dt > 0) {
        const before = previous.get(key(pool.name, b.name));
        if (before !== undefined) rate = (Math.max(0, requests - before) / dt).toFixed(1);
      }
      cell(row, "Backend", b.name + (b.backup ? " (backup)" : ""), "name");
      cell(row, "Address", b.address, "txt");
      cell(row, "State", b.state.toUpperCase(), "state");
      cell(row, "Weight", b.weight);
      cell(row, "Sessions", b.active);
      cell(row, "Idle", b.idle);
      cell(row, "Total", b.connections);
      cell(row, "Requests", requests);
      cell(row, "Req/s", rate);
      cell(row, "5xx", b.responses["5xx"], b.responses["5xx"] ? "err" : "");
      cell(row, "Conn fail", b.connect_failures, b.connect_failures ? "err" : "");
      cell(row, "Ejections", b.ejections);
      let check = b.health_check === "none" ? "no check" : "-";
      if (b.last_check_time) check = b.last_check + " (" + ago(Math.max(0, now - b.last_check_time)) + " ago)";
      cell(row, "Last check", check, "txt");
      cell(row, "Checks ok/fail", b.checks_ok + " / " + b.checks_fail);
      body.appendChild(row);
    }
    table.appendChild(body);
    section.appendChild(table);
    box.appendChild(section);
  }
}

function render(data) {
  const m = data.machine, s = data.stats, now = data.time;
  document.getElementById("uptime").textContent = ago(Math.max(0, now - m.started));
  document.getElementById("workers").textContent = String(m.workers.length);
  document.getElementById("reloads").textContent = String(m.reloads);
  document.getElementById("restarts").textContent = String(m.worker_restarts);
  document.getElementById("last-reload").textContent =
    m.last_reload ? ago(Math.max(0, now - m.last_reload)) + " ago" : "never";
  let requests = 0;
  for (const l of s.listeners) requests += l.mode === "http" ? total(l.responses) : l.accepted;
  const dt = previous ? now - previous.time : 0;
  if (previous && dt > 0) {
    const rate = Math.max(0, requests - previous.requests) / dt;
    history.push({ time: now, rate: rate });
    while (history.length > HISTORY) history.shift();
    document.getElementById("rate").textContent = rate.toFixed(1);
  }
  renderListeners(s.listeners);
  renderPools(s.pools, now, dt);
  drawGraph();
  const seen = new Map();
  for (const pool of s.pools) for (const b of pool.backends) seen.set(key(pool.name, b.name), total(b.responses));
  seen.time = now;
  seen.requests = requests;
  previous = seen;
  const status = document.getElementById("status");
  status.className = "";
  status.textContent = "updated " + new Date(now * 1000).toLocaleTimeString() + ", every " + REFRESH + " s";
}

async function poll() {
  try {
    const response = await fetch("stats.json", { cache: "no-store" });
    if (!response.ok) throw new Error("HTTP " + response.status);
    render(await response.json());
  } catch (error) {
    const status = document.getElementById("status");
    status.className = "bad";
    status.textContent = "update failed: " + error.message;
  }
  setTimeout(poll, REFRESH * 1000);
}
poll();
</script>
</body>
</html>
"""


def page(refresh: float) -> bytes:
    """The page's bytes, polling every `refresh` seconds. Nothing from the config but this number is in it."""
    return (_PAGE.replace("__REFRESH__", repr(float(refresh)))
            .replace("__HISTORY__", str(HISTORY_SECONDS)).encode("utf-8"))
