// hopbench monitor page: polls the server's JSON, redraws; figures reload only when new data arrived.
"use strict";
const QUERY = new URLSearchParams(location.search);
const POLL_MS = Math.max(100, Number(QUERY.get("poll")) || 1000);  // ?poll=<ms> (default 1 s)
const RUNS_EVERY = 5;   // the folder list is refreshed every 5th poll
const $ = (id) => document.getElementById(id);
let current = QUERY.get("run");
let polls = 0;
let figureVersion = { learned: null, accuracy: null };

function hms(s) {
  if (s === null || s === undefined) return "-:--:--";
  s = Math.max(0, Math.round(s));
  const h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, r = s % 60;
  return `${h}:${String(m).padStart(2, "0")}:${String(r).padStart(2, "0")}`;
}
function pct(x) { return x === null || x === undefined ? "—" : `${(100 * x).toFixed(1)} %`; }
function cell(row, text) { const td = document.createElement("td"); td.textContent = text; row.appendChild(td); return td; }
function kv(table, rows) {
  table.replaceChildren();
  for (const [k, v] of rows) { const tr = table.insertRow(); cell(tr, k); cell(tr, v); }
}

async function getJSON(url) {
  const r = await fetch(url, { cache: "no-store" });
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.json();
}

function renderRuns(data) {
  $("folder").textContent = data.folder;
  if (!current) current = data.default;
  const body = $("runs").tBodies[0];
  body.replaceChildren();
  for (const r of data.runs) {
    const tr = body.insertRow();
    tr.dataset.name = r.name;
    if (r.name === current) tr.className = "selected";
    cell(tr, r.name); cell(tr, r.status || ""); cell(tr, r.protocol || "");
    cell(tr, (r.start_time || "").slice(0, 19)); cell(tr, r.operations ?? "");
    tr.onclick = () => {
      current = r.name;
      history.replaceState(null, "", `?run=${encodeURIComponent(r.name)}`);
      figureVersion = { learned: null, accuracy: null };
      poll(true);
    };
  }
}

function setFigure(which, version, show) {
  const img = $(which);
  if (!show) { img.hidden = true; figureVersion[which] = null; return; }
  if (figureVersion[which] !== version) {
    figureVersion[which] = version;
    img.src = `/api/run/${encodeURIComponent(current)}/${which}.png?v=${encodeURIComponent(version)}`;
  }
  img.hidden = false;
}

function renderRun(s) {
  $("run-title").textContent = s.name;
  const st = $("status");
  st.textContent = s.status;
  st.className = `badge ${s.status}`;
  $("error").textContent = s.error || "";
  if (s.status === "unreadable") return;
  $("run-meta").textContent = `${s.protocol} · run ${s.run_id} · bench ${s.bench}${s.simulated ? " (simulated twin)" : ""}` +
    ` · host ${s.host} · started ${(s.start_time || "").slice(0, 19)}` + (s.end_time ? ` · ended ${s.end_time.slice(0, 19)}` : "");
  const p = s.progress || {};
  $("ops-done").textContent = p.ops_done ?? 0;
  $("ops-total").textContent = p.ops_total ? ` of ${p.ops_total}` : "";
  $("progress").value = p.fraction ?? (s.status === "complete" ? 1 : 0);
  let text = [];
  if (p.fraction !== undefined) text.push(`${pct(p.fraction)} of the plan's estimated bench time`);
  if (s.status === "running") {
    if (p.wall_eta_s !== undefined && p.wall_eta_s !== null) text.push(`ETA ${hms(p.wall_eta_s)} wall clock (finishes about ${p.finish_at})`);
    else if (p.estimating) text.push("estimating the plan…");
    if (s.commit_age_s !== null && s.commit_age_s > 30) text.push(`no new rows for ${hms(s.commit_age_s)}`);
  }
  text.push(`bench time ${hms(p.bench_elapsed_s)}` + (p.bench_total_s ? ` of ${hms(p.bench_total_s)}` : ""));
  if (p.note) text.push(p.note);
  if (p.estimate_error) text.push(`no plan estimate: ${p.estimate_error}`);
  $("progress-text").textContent = text.join(" · ");
  const c = s.current;
  $("current").textContent = c ? `#${c.index} ${c.kind}: ${c.text} (archived ${c.clock})` +
    (s.status === "running" && c.next_estimated_bench_s ? `; next ≈ ${c.next_estimated_bench_s.toPrecision(3)} s of bench time` : "") : "—";

  const L = s.learned || {};
  $("learned-caption").textContent = L.reads ? `${L.what}: ${L.label}` : "learned change";
  $("learned-none").hidden = !!L.reads;
  setFigure("learned", `${s.run_id}-${L.reads}`, !!L.reads);

  const A = s.accuracy || { rows: [] };
  setFigure("accuracy", `${s.run_id}-${A.rows.length}-${s.status}`, A.rows.some((r) => r.epoch !== null));
  $("accuracy-source").textContent = A.rows.length ? A.source : "no recall scored yet";
  const at = $("accuracy-table");
  at.replaceChildren();
  if (A.rows.length) {
    const keys = Object.keys(A.rows[0]);
    const head = at.insertRow();
    for (const k of keys) cell(head, k).style.fontWeight = "bold";
    for (const r of A.rows) {
      const tr = at.insertRow();
      for (const k of keys) cell(tr, k === "epoch" || k === "record" ? (r[k] ?? "") : pct(r[k]));
    }
  }

  const I = s.instrument || {};
  $("instrument-state").textContent = I.state || "";
  const rows = [];
  if (I.drive) {
    rows.push([`last drive (#${I.drive.index} ${I.drive.kind}, ${I.drive.clock})`,
      I.drive.levels.map((g) => `${g.V.toPrecision(4)} V: ${g.lines.join(" ")}`).join("; ") || "all lines at 0 V"]);
    if (I.drive.floating.length) rows.push(["floating lines", I.drive.floating.join(" ")]);
    const cur = Object.entries(I.drive.bus_currents_A || {});
    if (cur.length) rows.push(["bus currents at level", cur.map(([b, a]) => `${b} ${(a * 1e3).toPrecision(4)} mA`).join(", ")]);
  }
  if (I.read) rows.push([`last read (#${I.read.index} ${I.read.kind})`, `v_read ${I.read.v_read_V} V, ${I.read.scheme || ""}, nplc ${I.read.nplc}`]);
  if (I.relays_closed_now) rows.push(["closed relays now", "none"]);
  else if (I.relays_closed) rows.push([`closed relays after #${I.relays_after}`, `${I.relays_closed.length}: ${I.relays_closed.join(" ")}`]);
  kv($("instrument"), rows);

  $("log").textContent = (s.log || []).join("\n");
}

async function poll(once) {
  try {
    if (polls % RUNS_EVERY === 0 || !current || once) renderRuns(await getJSON("/api/runs"));
    if (current) renderRun(await getJSON(`/api/run/${encodeURIComponent(current)}`));
    $("connection").textContent = `updated ${new Date().toLocaleTimeString()}`;
    $("connection").className = "conn";
  } catch (e) {
    $("connection").textContent = `server not reachable (${e.message}); the page shows the last state it received`;
    $("connection").className = "conn lost";
  }
  if (!once) { polls += 1; setTimeout(poll, POLL_MS); }
}
poll(false);
