// Walsearch web console: reads the API's JSON endpoints every refresh and
// renders them. Plain JavaScript, no dependencies; every value from the
// server is inserted as text, never as HTML.
"use strict";

const REFRESH_MS = 1500;
const KEY_STORE = "walsearch.apiKey";

const state = {
  key: sessionStorage.getItem(KEY_STORE) || "",
  needKey: false,
  // Previous samples, for rates: by index {docs, rows, t}, and the sink.
  samples: {},
  sink: null,
  rates: {},
  sinkRate: null,
  fieldsOf: {},
  lastSearch: null,
};

const $ = (id) => document.getElementById(id);

function el(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === "class") e.className = v;
    else if (k === "dataset") Object.assign(e.dataset, v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e[k] = v;
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

// api calls path on this server with the key, if any. It resolves to the
// decoded JSON body; a 401 asks for the key.
async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (state.key) headers["Authorization"] = "Bearer " + state.key;
  const res = await fetch(path, Object.assign({}, options, { headers, cache: "no-store" }));
  let body = null;
  const text = await res.text();
  try { body = text ? JSON.parse(text) : null; } catch (_) { body = null; }
  if (res.status === 401) {
    askForKey(state.key ? "The API key was refused: " + message(body, res) : "");
    throw new ApiError(res.status, message(body, res));
  }
  if (!res.ok && !(path === "/health" && res.status === 503)) {
    throw new ApiError(res.status, message(body, res));
  }
  return body;
}

class ApiError extends Error {
  constructor(status, msg) { super(msg); this.status = status; }
}

function message(body, res) {
  if (body && body.error && body.error.message) return body.error.message;
  return "HTTP " + res.status;
}

function askForKey(why) {
  state.needKey = true;
  $("key-panel").hidden = false;
  $("key-error").textContent = why || "";
  $("key-input").focus();
}

// Formatting.
const nf = new Intl.NumberFormat("en");
function num(n) { return n === null || n === undefined || n < 0 ? "—" : nf.format(n); }
function bytes(n) {
  if (n === null || n === undefined || n < 0) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
}
function secs(s) {
  if (s === null || s === undefined || !isFinite(s)) return "—";
  if (s < 1) return s.toFixed(2) + " s";
  if (s < 90) return Math.round(s) + " s";
  if (s < 5400) return Math.round(s / 60) + " min";
  return (s / 3600).toFixed(1) + " h";
}
function rate(r) { return r === null || r === undefined ? "—" : nf.format(Math.round(r)) + "/s"; }

// smooth blends a new rate into the previous one so the figure holds still.
function smooth(prev, next) { return prev === null || prev === undefined ? next : prev * 0.5 + next * 0.5; }

function badge(node, text, kind) {
  node.textContent = text;
  node.className = "badge " + (kind || "");
}

function fill(tbody, rows) { tbody.replaceChildren(...rows); }

// Rendering.

function renderPipeline(st, now) {
  const facts = [];
  const fact = (name, value) => facts.push(el("div", {}, el("dt", {}, name), el("dd", { dataset: { fact: name } }, value)));
  fact("Capture", st.capture.phase + (st.capture.slot ? " (slot " + st.capture.slot + ")" : ""));
  fact("Slot retains", bytes(st.slot_lag_bytes));
  fact("Lag", bytes(st.lag_bytes) + " · " + secs(st.lag_seconds) + " commit → indexed");
  fact("Applied LSN", st.applied_lsn || "—");
  if (st.sink) {
    const s = st.sink;
    if (state.sink && now > state.sink.t) {
      const r = (s.documents_indexed + s.documents_deleted - state.sink.n) / ((now - state.sink.t) / 1000);
      state.sinkRate = smooth(state.sinkRate, Math.max(0, r));
    }
    state.sink = { n: s.documents_indexed + s.documents_deleted, t: now };
    fact("Throughput", rate(state.sinkRate));
    fact("Documents indexed", num(s.documents_indexed));
    fact("Documents deleted", num(s.documents_deleted));
    fact("Batch size · in flight", num(s.batch_size) + " · " + num(s.bulk_requests_in_flight));
    fact("Retries", num(s.retries));
    if (s.last_error) fact("Last sink error", s.last_error);
  }
  if (st.bus_backlog) {
    for (const [consumer, n] of Object.entries(st.bus_backlog).sort()) fact("Backlog: " + consumer, num(n));
  }
  fact("Dead letters", num(st.dlq_count));
  $("pipeline").replaceChildren(...facts);
}

function renderTables(st, now) {
  const rows = st.tables.map((t) => {
    const docs = t.documents;
    const read = t.snapshot_rows;
    const prev = state.samples[t.index];
    const r = state.rates[t.index] || {};
    if (prev && now > prev.t) {
      const dt = (now - prev.t) / 1000;
      if (docs >= 0 && prev.docs >= 0) r.docs = smooth(r.docs, Math.max(0, (docs - prev.docs) / dt));
      r.rows = smooth(r.rows, Math.max(0, (read - prev.rows) / dt));
    }
    state.samples[t.index] = { docs, rows: read, t: now };
    state.rates[t.index] = r;

    let pct = null;
    if (read > 0 && docs >= 0) pct = Math.min(100, Math.floor((docs / read) * 1000) / 10);
    else if (t.snapshot === "done" && read === 0) pct = 100;
    let eta = "—";
    if (t.snapshot === "running") {
      eta = "reading";
    } else if (pct !== null && pct < 100 && r.docs > 0) {
      eta = secs((read - docs) / r.docs);
    } else if (pct === 100) {
      eta = "done";
    }
    const bar = pct === null ? "—" : el("span", {},
      el("progress", { max: 100, value: pct }),
      el("span", { class: "pct", dataset: { progress: t.index } }, pct + "%"));
    const shown = t.snapshot === "running" ? rate(r.rows) + " read · " + rate(r.docs) + " indexed" : rate(r.docs);
    return el("tr", { dataset: { index: t.index } },
      el("td", {}, t.table ? t.schema + "." + t.table : "—"),
      el("td", {}, t.index),
      el("td", {}, el("span", { class: "badge " + snapshotKind(t.snapshot), dataset: { snapshot: t.index } }, t.snapshot)),
      el("td", { class: "num" }, num(read)),
      el("td", { class: "num", dataset: { documents: t.index } }, num(docs)),
      el("td", {}, bar),
      el("td", { class: "num" }, shown),
      el("td", {}, eta),
      el("td", {}, bytes(t.lag_bytes) + " · " + secs(t.lag_seconds)),
      el("td", { class: "num", dataset: { dlq: t.index } }, num(t.dlq_count)));
  });
  fill($("tables").tBodies[0], rows);
}

function snapshotKind(s) {
  if (s === "done") return "ok";
  if (s === "running" || s === "pending" || s === "indexing") return "warn";
  if (s === "skipped" || s === "unknown") return "";
  return "bad";
}

function renderHealth(h) {
  const kind = h.status === "ok" ? "ok" : h.serving ? "warn" : "bad";
  badge($("health"), "health: " + h.status + (h.serving ? "" : " (not serving)") + (h.fallback ? " · fallback " + h.fallback : ""), kind);
  const rows = Object.entries(h.components).sort().map(([name, c]) =>
    el("tr", { dataset: { component: name } },
      el("td", {}, name),
      el("td", {}, el("span", { class: "badge " + (c.status === "ok" ? "ok" : c.status === "degraded" ? "warn" : "bad") }, c.status)),
      el("td", {}, c.error || "")));
  fill($("components").tBodies[0], rows);
}

function renderEngine(e) {
  const b = e.breaker;
  badge($("breaker"), b.open ? "circuit breaker: open" : "circuit breaker: closed", b.open ? "bad" : "ok");
  $("breaker").title = b.last_error || "";
  const rows = e.indices.map((i) => el("tr", { dataset: { engineIndex: i.name } },
    el("td", {}, i.name),
    el("td", {}, i.index || "—"),
    el("td", { class: "num" }, num(i.documents))));
  fill($("indices").tBodies[0], rows);
}

function renderDLQ(d, total) {
  const rows = d.dead_letters.map((dl) => {
    const table = dl.table ? dl.schema + "." + dl.table : "—";
    const detail = el("details", {}, el("summary", {}, dl.error));
    if (dl.stack) detail.append(el("pre", {}, dl.stack));
    if (dl.event) detail.append(el("pre", {}, JSON.stringify(dl.event, null, 2)));
    const button = el("button", { type: "button", class: "secondary", dataset: { replay: String(dl.seq) } }, "Replay");
    button.addEventListener("click", () => replay(dl.seq, button));
    return el("tr", { dataset: { seq: String(dl.seq) } },
      el("td", { class: "num" }, dl.seq),
      el("td", {}, new Date(dl.time).toLocaleString()),
      el("td", {}, table),
      el("td", {}, dl.stage),
      el("td", {}, detail),
      el("td", {}, button));
  });
  // Keep open details open across refreshes.
  const open = new Set([...$("dlq").querySelectorAll("tr[data-seq] details[open]")].map((x) => x.closest("tr").dataset.seq));
  fill($("dlq").tBodies[0], rows);
  for (const tr of $("dlq").tBodies[0].rows) if (open.has(tr.dataset.seq)) tr.querySelector("details").open = true;
  $("dlq-empty").hidden = rows.length > 0;
  $("dlq-more").hidden = !d.truncated;
  badge($("dlq-count"), num(total === undefined ? rows.length : total), rows.length ? "warn" : "ok");
}

async function replay(seq, button) {
  button.disabled = true;
  button.textContent = "Replaying…";
  try {
    await api("/dlq/" + encodeURIComponent(seq) + "/replay", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: "{}",
    });
    button.textContent = "Replayed";
    refresh();
  } catch (err) {
    button.disabled = false;
    button.textContent = "Replay";
    showError("Replay of " + seq + ": " + err.message);
  }
}

function showError(msg) {
  $("error").hidden = !msg;
  $("error").textContent = msg || "";
}

// refresh reads every endpoint the console shows once.
let timer = null;
async function refresh() {
  clearTimeout(timer);
  const now = Date.now();
  const results = await Promise.allSettled([api("/status"), api("/health"), api("/engine"), api("/dlq?limit=100")]);
  const [st, h, e, d] = results;
  const failures = results.filter((r) => r.status === "rejected" && r.reason.status !== 401).map((r) => r.reason.message);
  if (st.status === "fulfilled") { renderPipeline(st.value, now); renderTables(st.value, now); }
  if (h.status === "fulfilled") renderHealth(h.value);
  if (e.status === "fulfilled") renderEngine(e.value);
  if (d.status === "fulfilled") renderDLQ(d.value, st.status === "fulfilled" ? st.value.dlq_count : undefined);
  showError(failures.length ? [...new Set(failures)].join(" · ") : "");
  if (results.every((r) => r.status === "fulfilled")) {
    $("updated").textContent = "updated " + new Date(now).toLocaleTimeString();
    $("updated").dataset.ok = "1";
    if (!$("s-index").options.length) loadIndices();
  }
  // A refresh started meanwhile (by a replay or a new key) set a timer too:
  // keep one, so the refreshes never multiply.
  clearTimeout(timer);
  if (!state.needKey) timer = setTimeout(refresh, REFRESH_MS);
}

// Search playground.

async function loadIndices() {
  let list;
  try { list = await api("/indices"); } catch (_) { return; }
  const sel = $("s-index");
  const current = sel.value;
  sel.replaceChildren(...list.indices.map((i) => el("option", { value: i.name }, i.name)));
  if (current) sel.value = current;
  if (sel.value) loadFields(sel.value);
}

async function loadFields(index) {
  let f = state.fieldsOf[index];
  if (!f) {
    try { f = await api("/indices/" + encodeURIComponent(index) + "/fields"); } catch (_) { return; }
    state.fieldsOf[index] = f;
  }
  const sort = $("s-sort");
  const current = sort.value;
  const sortable = f.fields.filter((n) => f.field_types[n] !== "text");
  sort.replaceChildren(el("option", { value: "" }, "relevance"), ...sortable.map((n) => el("option", { value: n }, n)));
  if (sortable.includes(current)) sort.value = current;
  $("s-known").textContent = "Fields: " + f.fields.map((n) => n + " (" + f.field_types[n] + ")").join(", ");
}

// searchRequest builds the POST /search body from the form.
function searchRequest() {
  const body = { index: $("s-index").value };
  const q = $("s-q").value.trim();
  if (q) body.q = q;
  const fields = $("s-fields").value.split(",").map((s) => s.trim()).filter(Boolean);
  if (fields.length) body.fields = fields;
  const filters = $("s-filters").value.trim();
  if (filters) {
    try { body.query_fields = JSON.parse(filters); } catch (err) { throw new Error("Filters: not JSON (" + err.message + ")"); }
  }
  if ($("s-sort").value) body.sort_by = { [$("s-sort").value]: $("s-order").value };
  body.page_size = Number($("s-size").value) || 10;
  body.page = Number($("s-page").value) || 1;
  return body;
}

function curl(body) {
  const json = JSON.stringify(body);
  const auth = state.key ? " \\\n  -H \"Authorization: Bearer $WALSEARCH_API_KEY\"" : "";
  return "curl -sS " + shellQuote(location.origin + "/search") + auth +
    " \\\n  -H 'Content-Type: application/json' \\\n  -d " + shellQuote(json);
}

function shellQuote(s) { return "'" + s.replace(/'/g, "'\\''") + "'"; }

async function runSearch() {
  $("s-error").hidden = true;
  let body;
  try { body = searchRequest(); } catch (err) { $("s-error").hidden = false; $("s-error").textContent = err.message; return; }
  $("s-curl").textContent = curl(body);
  let res;
  try {
    res = await api("/search", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  } catch (err) {
    $("s-error").hidden = false;
    $("s-error").textContent = err.message;
    return;
  }
  const m = res.meta;
  $("s-meta").textContent = num(m.total_records) + " results · page " + m.current_page + " of " + num(m.total_pages);
  $("s-meta").dataset.total = String(m.total_records);
  $("s-prev").disabled = !m.has_previous;
  $("s-next").disabled = !m.has_next;
  const cols = m.selected_fields && m.selected_fields.length ? m.selected_fields : [...new Set(res.data.flatMap((d) => Object.keys(d)))];
  const table = $("s-results");
  table.tHead.replaceChildren(el("tr", {}, ...cols.map((c) => el("th", {}, c))));
  fill(table.tBodies[0], res.data.map((d) => el("tr", {}, ...cols.map((c) => el("td", {}, cell(d[c]))))));
}

function cell(v) {
  if (v === undefined || v === null) return "";
  return typeof v === "object" ? JSON.stringify(v) : String(v);
}

function init() {
  $("key-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    state.key = $("key-input").value.trim();
    if (state.key) sessionStorage.setItem(KEY_STORE, state.key);
    else sessionStorage.removeItem(KEY_STORE);
    $("key-input").value = "";
    $("key-panel").hidden = true;
    state.needKey = false;
    state.fieldsOf = {};
    refresh();
    loadIndices();
  });
  $("key-change").addEventListener("click", () => askForKey(""));
  $("s-index").addEventListener("change", () => { $("s-page").value = 1; loadFields($("s-index").value); });
  $("search-form").addEventListener("submit", (ev) => { ev.preventDefault(); runSearch(); });
  $("s-prev").addEventListener("click", () => { $("s-page").value = Math.max(1, Number($("s-page").value) - 1); runSearch(); });
  $("s-next").addEventListener("click", () => { $("s-page").value = Number($("s-page").value) + 1; runSearch(); });
  refresh();
}

document.addEventListener("DOMContentLoaded", init);
