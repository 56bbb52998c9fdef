// The job list and a job's page. Both poll the API every second while the tab is visible.

import uPlot from "../../vendor/uPlot.esm.js";
import { api, download, enc, isMissingRoute } from "../api.js";
import { badge, confirmDialog, fill, frame, h, kv, progressBar, section, table } from "../dom.js";
import * as fmt from "../format.js";

const STATUSES = ["PENDING", "RUNNING", "CANCELLING", "DONE", "FAILED", "CANCELLED", "INTERNAL_ERROR"];
const TERMINAL = new Set(["DONE", "FAILED", "CANCELLED", "INTERNAL_ERROR", "DELETED"]);
const WINDOW_MS = 10_000; // rows/s over the last ten seconds of samples

export function jobPath(job) {
  return `/databases/${enc(job.database_name)}/schemas/${enc(job.schema_name)}/jobs/${enc(job.name)}`;
}

// "@DB.SCHEMA.STAGE/path/" into its parts; names may be double-quoted (with "" for a quote inside).
export function parseStageLocation(location) {
  const text = location.replace(/^@/, "");
  const names = [];
  let current = "";
  let quoted = false;
  let i = 0;
  for (; i < text.length; i += 1) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        current += '"';
        i += 1;
      } else if (ch === '"') quoted = false;
      else current += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ".") {
      names.push(current);
      current = "";
    } else if (ch === "/") break;
    else current += ch;
  }
  names.push(current);
  const [database, schema, stage] = names;
  return { database, schema, stage, path: text.slice(i + 1).replace(/\/+$/, "") };
}

export function jobHref(database, schema, name) {
  return `#/jobs/${enc(database)}/${enc(schema)}/${enc(name)}`;
}

// Rows per second of one job: from samples the page took while it watched, else the average since it started.
class Throughput {
  constructor() {
    this.samples = [];
  }

  add(job, now) {
    const last = this.samples[this.samples.length - 1];
    if (!last || last.rows !== job.rows_done || now - last.t > 900) this.samples.push({ t: now, rows: job.rows_done });
    while (this.samples.length > 2 && now - this.samples[1].t > WINDOW_MS) this.samples.shift();
  }

  rate(job, now) {
    const started = fmt.parseTime(job.started_at);
    if (TERMINAL.has(job.status)) {
      const finished = fmt.parseTime(job.finished_at);
      return started && finished && finished > started ? job.rows_done / ((finished - started) / 1000) : null;
    }
    if (job.status !== "RUNNING" || !started) return null;
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (first && last && last.t - first.t >= 2000) return Math.max(0, (last.rows - first.rows) / ((last.t - first.t) / 1000));
    return now > started ? job.rows_done / ((now - started) / 1000) : null;
  }
}

function eta(job, perSecond) {
  if (job.status !== "RUNNING" || !job.rows_total || !perSecond) return "–";
  return fmt.duration((job.rows_total - job.rows_done - job.rows_failed) / perSecond);
}

function progressCell(job) {
  const total = job.rows_total;
  return h(
    "div",
    { class: "progress-cell", "data-rows-done": job.rows_done, "data-rows-total": total ?? "" },
    progressBar(job.rows_done, total || 0, { failed: job.rows_failed }),
    h(
      "div",
      { class: "progress-text" },
      h("span", null, `${fmt.int(job.rows_done)} / ${total === null ? "?" : fmt.int(total)} rows`),
      h("span", { class: "muted" }, `${job.shards_done}/${job.shards_total} shards`),
    ),
  );
}

export function list() {
  const trackers = new Map();
  const status = h(
    "select",
    { "aria-label": "Status", "data-testid": "status-filter", onchange: () => self.refresh() },
    h("option", { value: "" }, "All statuses"),
    STATUSES.map((s) => h("option", { value: s }, s)),
  );
  const search = h("input", { type: "search", placeholder: "Search by name", "aria-label": "Search by name", "data-testid": "search", oninput: () => self.refresh() });
  const page = frame({ title: "Jobs", subtitle: "Batch inference jobs, newest first", actions: [status, search] });
  const self = {
    title: "Jobs",
    nav: "jobs",
    element: page.element,
    interval: 1000,
    showError: page.showError,
    async refresh() {
      // The newest 100 matches each second; the API searches names (case-insensitive substring) over all jobs.
      const needle = search.value.trim();
      const query = new URLSearchParams({ limit: "100" });
      if (status.value) query.set("status", status.value);
      if (needle) query.set("search", needle);
      const answer = await api(`/jobs?${query}`);
      page.clearError();
      const now = Date.now();
      const jobs = answer.data;
      for (const job of answer.data) {
        if (!trackers.has(job.uuid)) trackers.set(job.uuid, new Throughput());
        trackers.get(job.uuid).add(job, now);
      }
      page.subtitleNode.textContent = `${fmt.int(jobs.length)} of ${fmt.int(answer.count)} jobs${status.value ? ` with status ${status.value}` : ""}`;
      fill(page.body,
        table(
          [
            { label: "Job", cell: (j) => h("div", null, h("a", { href: jobHref(j.database_name, j.schema_name, j.name), class: "strong break" }, j.name), h("div", { class: "muted small" }, `${j.database_name}.${j.schema_name} · ${j.model_name.split(".").pop()} ${j.version_name}`)) },
            { label: "Status", cell: (j) => badge(j.status) },
            { label: "Progress", class: "col-progress", cell: progressCell },
            { label: "Rows/s", class: "num", cell: (j) => fmt.rate(trackers.get(j.uuid).rate(j, now)) },
            { label: "ETA", class: "num", cell: (j) => eta(j, trackers.get(j.uuid).rate(j, now)) },
            { label: "Pool", cell: (j) => j.compute_pool },
            { label: "Owner", cell: (j) => j.owner },
            { label: "Age", class: "num", cell: (j) => h("span", { title: fmt.time(j.created_at) }, fmt.age(j.created_at, now)) },
          ],
          jobs,
          { empty: needle || status.value ? "No job matches these filters." : "No jobs yet: run_batch starts one.", rowProps: (j) => ({ "data-job": j.id }) },
        ),
      );
    },
  };
  return self;
}

function signatureText(specs) {
  return (specs || []).map((s) => `${s.name}: ${s.type || "GROUP"}${s.shape ? `[${s.shape.join(",")}]` : ""}`).join(", ");
}

export { signatureText };

// Rows/s over time: from samples while watching; for a job that ended before the page opened, from its
// shards' start and end (each shard's rows spread evenly over its run).
function shardSeries(shards) {
  const spans = shards
    .map((s) => ({ a: fmt.parseTime(s.started_at), b: fmt.parseTime(s.finished_at), rows: s.rows_done }))
    .filter((s) => s.a && s.b && s.b > s.a);
  if (!spans.length) return null;
  const start = Math.min(...spans.map((s) => s.a));
  const end = Math.max(...spans.map((s) => s.b));
  const steps = 60;
  const xs = [];
  const ys = [];
  for (let i = 0; i <= steps; i += 1) {
    const t = start + ((end - start) * i) / steps;
    xs.push(t / 1000);
    ys.push(spans.filter((s) => s.a <= t && t <= s.b).reduce((sum, s) => sum + s.rows / ((s.b - s.a) / 1000), 0));
  }
  return [xs, ys];
}

function chartOptions(width) {
  const css = getComputedStyle(document.documentElement);
  const accent = css.getPropertyValue("--accent").trim() || "#2f6fed";
  const grid = css.getPropertyValue("--border").trim() || "#e3e6ea";
  const text = css.getPropertyValue("--muted").trim() || "#667085";
  const axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
  return {
    width,
    height: 220,
    legend: { show: false },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.15)] } },
    axes: [
      { ...axis, space: 70, values: (u, vals) => vals.map((v) => fmt.clock(v * 1000)) },
      { ...axis, size: 60, values: (u, vals) => vals.map((v) => fmt.rate(v)) },
    ],
    series: [{}, { label: "rows/s", stroke: accent, width: 2, fill: `${accent}22`, points: { show: false } }],
  };
}

export function detail(database, schema, name) {
  const path = `/databases/${enc(database)}/schemas/${enc(schema)}/jobs/${enc(name)}`;
  const tracker = new Throughput();
  const live = [[], []]; // seconds, rows/s
  let previous = null;
  let plot = null;
  let specShown = false;
  let outputShownFor = null;

  const cancel = h("button", { class: "btn btn-danger", type: "button", "data-testid": "cancel-job", hidden: true, onclick: onCancel });
  cancel.textContent = "Cancel job";
  const page = frame({
    title: name,
    subtitle: `${database}.${schema}`,
    actions: [cancel],
    crumbs: [["Jobs", "#/jobs"], [`${database}.${schema}`, null], [name, null]],
  });
  const statusNode = h("span");
  page.titleNode.append(" ", statusNode);

  const stats = h("div", { class: "stats" });
  const info = h("div");
  const chartBox = h("div", { class: "chart", "data-testid": "throughput-chart" });
  const chartNote = h("div", { class: "muted small" });
  const shardsBox = h("div");
  const logBox = h("pre", { class: "log", "data-testid": "log-tail", tabindex: 0 });
  const outputBox = h("div", { "data-testid": "output" }, h("div", { class: "muted" }, "Loading…"));
  const specBox = h("pre", { class: "code" });

  page.body.append(
    stats,
    h("div", { class: "grid-2" }, section("Details", info), section("Throughput", chartBox, chartNote)),
    section("Shards", shardsBox),
    section("Log", logBox),
    section("Output", outputBox),
    h("section", { class: "card" }, h("details", null, h("summary", null, h("h2", { class: "inline" }, "Spec")), specBox)),
  );

  async function onCancel() {
    const yes = await confirmDialog({
      title: `Cancel job ${name}?`,
      message: "Pending shards stop now and running shards at their next heartbeat. Output written so far is not committed.",
      confirm: "Cancel job",
      cancel: "Keep running",
    });
    if (!yes) return;
    cancel.disabled = true;
    try {
      await api(`${path}/cancel`, { method: "POST" });
      await self.refresh();
    } catch (err) {
      page.showError(err);
      cancel.disabled = false;
    }
  }

  function stat(label, value, extra) {
    return h("div", { class: "stat" }, h("div", { class: "stat-label" }, label), h("div", { class: "stat-value" }, value), extra ? h("div", { class: "stat-extra" }, extra) : null);
  }

  function drawChart(job, shards) {
    let data = live;
    let note = "Sampled every second while this page is open.";
    if (live[0].length < 2) {
      const fromShards = TERMINAL.has(job.status) ? shardSeries(shards) : null;
      if (fromShards) {
        data = fromShards;
        note = "Reconstructed from each shard's start, end and rows.";
      } else {
        note = job.status === "RUNNING" ? "Collecting samples…" : "No throughput yet.";
      }
    }
    chartNote.textContent = note;
    const width = Math.max(320, chartBox.clientWidth || 520);
    if (!plot) {
      plot = new uPlot(chartOptions(width), data, chartBox);
    } else {
      plot.setData(data);
      if (Math.abs(plot.width - width) > 4) plot.setSize({ width, height: 220 });
    }
  }

  async function refreshOutput(job) {
    // The folder changes only when a job ends: read it once then, and while the job runs every so often.
    const key = `${job.status}:${job.shards_done}`;
    if (outputShownFor === key) return;
    outputShownFor = key;
    let out;
    try {
      out = await api(`${path}/outputs`);
    } catch (err) {
      fill(outputBox, h("div", { class: "muted" }, isMissingRoute(err) ? "This server does not list job outputs." : err.message));
      return;
    }
    const stage = parseStageLocation(out.location);
    const inStage = (p) => (stage.path ? `${stage.path}/${p}` : p);
    const files = out.files.filter((f) => !f.path.startsWith("_errors/"));
    const errors = out.files.some((f) => f.path.startsWith("_errors/")) ? await api(`${path}/errors?limit=20`) : null;
    fill(
      outputBox,
      h(
        "div",
        { class: "output-head" },
        h("code", null, out.location),
        out.success ? h("span", { class: "badge badge-done", "data-testid": "success-marker" }, "_SUCCESS") : h("span", { class: "badge badge-pending" }, "no _SUCCESS yet"),
        h("span", { class: "muted" }, fmt.bytes(out.total_bytes)),
        h("a", { href: `#/stages/${enc(stage.database)}/${enc(stage.schema)}/${enc(stage.stage)}/${stage.path ? `${stage.path.split("/").map(enc).join("/")}/` : ""}` }, "Browse stage"),
      ),
      table(
        [
          { label: "File", cell: (f) => h("code", null, f.path) },
          { label: "Size", class: "num", cell: (f) => fmt.bytes(f.size) },
          { label: "Modified", cell: (f) => fmt.time(f.last_modified) },
          { label: "", class: "num", cell: (f) => h("button", { class: "btn btn-small", type: "button", onclick: () => download(stage.database, stage.schema, stage.stage, inStage(f.path)).catch(page.showError) }, "Download") },
        ],
        files,
        { empty: TERMINAL.has(job.status) ? "The job wrote no output files." : "Output appears when the job finishes." },
      ),
      errors
        ? h(
            "div",
            { class: "errors", "data-testid": "error-rows" },
            h("h3", null, `Error rows (${errors.truncated ? `first ${errors.data.length}` : `all ${errors.data.length}`}; ${errors.files} file${errors.files === 1 ? "" : "s"} under _errors/)`),
            table(
              errors.columns.map((c) => ({ label: c, cell: (r) => (r[c] === null || r[c] === undefined ? h("span", { class: "muted" }, "null") : typeof r[c] === "object" ? JSON.stringify(r[c]) : String(r[c])) })),
              errors.data,
            ),
          )
        : null,
    );
  }

  const self = {
    title: name,
    nav: "jobs",
    element: page.element,
    interval: 1000,
    showError: page.showError,
    async refresh() {
      const [job, shards, logs] = await Promise.all([api(path), api(`${path}/shards`), api(`${path}/logs?limit=200`)]);
      page.clearError();
      const now = Date.now();
      tracker.add(job, now);
      const perSecond = tracker.rate(job, now);
      if (job.status === "RUNNING" && previous && now > previous.t) {
        live[0].push(now / 1000);
        live[1].push(Math.max(0, (job.rows_done - previous.rows) / ((now - previous.t) / 1000)));
      }
      previous = { t: now, rows: job.rows_done };

      fill(statusNode, badge(job.status));
      cancel.hidden = TERMINAL.has(job.status) || job.status === "CANCELLING";
      const started = fmt.parseTime(job.started_at);
      const ended = fmt.parseTime(job.finished_at);
      fill(stats,
        stat("Rows", `${fmt.int(job.rows_done)} / ${job.rows_total === null ? "?" : fmt.int(job.rows_total)}`, h("div", { class: "progress-cell", "data-rows-done": job.rows_done }, progressBar(job.rows_done, job.rows_total || 0, { failed: job.rows_failed }))),
        stat("Progress", fmt.percent(job.rows_done, job.rows_total), `${job.shards_done}/${job.shards_total} shards done${job.shards_failed ? `, ${job.shards_failed} failed` : ""}`),
        stat("Rows/s", fmt.rate(perSecond), TERMINAL.has(job.status) ? "average over the run" : "last 10 s"),
        stat("ETA", eta(job, perSecond), job.status === "RUNNING" ? "at the current rate" : job.phase),
        stat("Failed rows", fmt.int(job.rows_failed), job.rows_failed ? "see error rows below" : "none"),
        stat("Duration", started ? fmt.duration(((ended || now) - started) / 1000) : "–", started ? `since ${fmt.clock(started)}` : "not started"),
      );
      fill(info,
        kv([
          ["Job", job.id],
          ["Status", h("span", null, badge(job.status), job.phase !== job.status ? h("span", { class: "muted" }, ` ${job.phase}`) : null)],
          ["Message", job.message ? h("span", { class: "message" }, job.message) : null],
          ["Model", h("a", { href: `#/models/${job.model_name.split(".").map(enc).join("/")}` }, `${job.model_name} ${job.version_name}`)],
          ["Function", job.function_name],
          ["Compute pool", job.compute_pool],
          ["Replicas", String(job.replicas)],
          ["Owner", job.owner],
          ["Input", h("code", null, job.input_location)],
          ["Output", h("code", null, job.output_location)],
          ["Created", fmt.time(job.created_at)],
          ["Finished", job.finished_at ? fmt.time(job.finished_at) : null],
        ]),
      );
      if (!specShown) {
        specBox.textContent = JSON.stringify(job.spec, null, 2);
        specShown = true;
      }
      drawChart(job, shards);
      fill(shardsBox,
        table(
          [
            { label: "#", class: "num", cell: (s) => String(s.index) },
            { label: "State", cell: (s) => badge(s.state) },
            { label: "Progress", class: "col-progress", cell: (s) => h("div", { class: "progress-cell" }, progressBar(s.rows_done, s.rows_total, { failed: s.rows_failed }), h("div", { class: "progress-text" }, h("span", null, `${fmt.int(s.rows_done)} / ${fmt.int(s.rows_total)}`), s.rows_failed ? h("span", { class: "text-danger" }, `${fmt.int(s.rows_failed)} failed`) : null)) },
            { label: "Attempt", class: "num", cell: (s) => `${s.attempt}/${s.max_attempts}` },
            { label: "Worker", cell: (s) => s.worker || h("span", { class: "muted" }, "–") },
            { label: "Duration", class: "num", cell: (s) => (s.started_at ? fmt.duration(((fmt.parseTime(s.finished_at) || now) - fmt.parseTime(s.started_at)) / 1000) : "–") },
            { label: "Heartbeat", class: "num", cell: (s) => (s.heartbeat_at && !s.finished_at ? fmt.age(s.heartbeat_at, now) : "–") },
            { label: "Message", cell: (s) => (s.message ? h("span", { class: "message" }, s.message) : "") },
          ],
          shards,
          { empty: "No shards yet: they are planned once the input is ready." },
        ),
      );
      const atBottom = logBox.scrollHeight - logBox.scrollTop - logBox.clientHeight < 24;
      logBox.textContent = logs.data.length ? logs.data.map((l) => `${fmt.time(l.logged_at)} [${l.instance_id}.${l.attempt}] ${l.line}`).join("\n") : "No log lines yet.";
      if (atBottom) logBox.scrollTop = logBox.scrollHeight;
      await refreshOutput(job);
    },
    dispose() {
      if (plot) plot.destroy();
    },
  };
  return self;
}
