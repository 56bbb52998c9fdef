// The model page's Monitors card: a model's monitors, and for the selected one its drift, performance and
// prediction count per aggregation window, charted from the monitor's metric series.

import uPlot from "../../vendor/uPlot.esm.js";
import { ApiError, api, enc } from "../api.js";
import { badge, fill, h, table } from "../dom.js";
import * as fmt from "../format.js";

// The metric each task's performance chart plots: accuracy reads the same for any class balance.
const MAIN_METRIC = {
  TABULAR_BINARY_CLASSIFICATION: "CLASSIFICATION_ACCURACY",
  TABULAR_MULTI_CLASSIFICATION: "CLASSIFICATION_ACCURACY",
  TABULAR_REGRESSION: "RMSE",
};
const DRIFT_METRIC = "JENSEN_SHANNON";
const PALETTE = ["#2f6fed", "#e8590c", "#157f3b", "#ae3ec9", "#0c8599", "#c4320a", "#5c940d", "#d6336c"];

function colors() {
  const css = getComputedStyle(document.documentElement);
  const read = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
  return { accent: read("--accent", "#2f6fed"), grid: read("--border", "#e3e6ea"), text: read("--muted", "#667085") };
}

function padded(times, min, max) {
  const half = times.length > 1 ? (max - min) / (times.length - 1) / 2 : 43_200;
  return [min - half, max + half];
}

function chartOptions(width, series, { legend = false, yRange } = {}) {
  const { grid, text } = colors();
  const axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
  return {
    width,
    height: 200,
    legend: { show: legend },
    cursor: { drag: { x: false, y: false } },
    // Half a window of room each side, so the first and last window (a bar, a point) are drawn whole.
    scales: { x: { time: true, range: (u, min, max) => padded(u.data[0], min, max) }, y: yRange ? { range: yRange } : {} },
    axes: [
      { ...axis, space: 80 },
      { ...axis, size: 60 },
    ],
    series: [{}, ...series],
  };
}

function line(label, stroke) {
  return { label, stroke, width: 2, points: { show: true, size: 5, fill: stroke }, spanGaps: false };
}

// One chart: a box the plot draws into, its caption, and how many windows it plots (for tests and readers).
function chartPanel(title, testid) {
  const box = h("div", { class: "chart monitor-chart" });
  const caption = h("div", { class: "muted small" });
  const element = h("div", { class: "monitor-panel", "data-testid": testid }, h("h3", null, title), box, caption);
  let plot = null;
  return {
    element,
    caption,
    draw(data, options) {
      if (plot) plot.destroy();
      box.replaceChildren();
      element.dataset.points = String(data[0].length);
      const width = Math.max(280, box.clientWidth || element.clientWidth || 420);
      plot = new uPlot(options(width), data, box);
    },
    clear(note) {
      if (plot) plot.destroy();
      plot = null;
      box.replaceChildren(h("div", { class: "muted chart-empty" }, note));
      element.dataset.points = "0";
      caption.textContent = "";
    },
    dispose() {
      if (plot) plot.destroy();
      plot = null;
    },
  };
}

const seconds = (point) => fmt.parseTime(point.event_timestamp) / 1000;

// Series of one monitor share their windows, but a window may lack one metric: align them on time.
function align(seriesList) {
  const times = [...new Set(seriesList.flatMap((s) => s.points.map(seconds)))].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const columns = seriesList.map((s) => {
    const values = new Array(times.length).fill(null);
    for (const p of s.points) values[index.get(seconds(p))] = p.metric_value;
    return values;
  });
  return [times, ...columns];
}

export function monitorsCard(database, schema, model) {
  const base = `/databases/${enc(database)}/schemas/${enc(schema)}/monitors`;
  const listBox = h("div");
  const detailBox = h("div", { class: "monitor-detail" });
  const element = h("section", { class: "card", "data-testid": "monitors" }, h("h2", null, "Monitors"), listBox, detailBox);
  const drift = chartPanel(`Drift (${DRIFT_METRIC} per feature against the baseline)`, "monitor-drift");
  const performance = chartPanel("Performance", "monitor-performance");
  const count = chartPanel("Predictions per window", "monitor-count");
  let selected = null; // a monitor's name
  let shownFor = null; // what the charts show: monitor, its last refresh, its state
  let forbidden = false;

  function select(name) {
    selected = name;
    shownFor = null;
    return refresh();
  }

  async function drawCharts(m) {
    const series = (kind, metric, column) => {
      const query = new URLSearchParams({ kind, metric });
      if (column) query.set("column", column);
      return api(`${base}/${enc(m.name)}/metrics?${query}`);
    };
    fill(
      detailBox,
      h("h3", { class: "monitor-title" }, `${m.name} · ${m.model_task} · every ${m.aggregation_window}`),
      m.last_error ? h("div", { class: "alert", "data-testid": "monitor-error" }, `Last refresh failed: ${m.last_error}`) : null,
      h("div", { class: "grid-2" }, drift.element, performance.element),
      h("div", { class: "grid-2" }, count.element, h("div")),
    );
    const features = m.feature_columns;
    const predicted = m.prediction_class_columns[0] || m.prediction_score_columns[0];
    const hasActual = m.actual_class_columns.length + m.actual_score_columns.length > 0;
    const metric = MAIN_METRIC[m.model_task];
    const [driftSeries, perfSeries, countSeries] = await Promise.all([
      m.baseline && features.length ? Promise.all(features.map((f) => series("DRIFT", DRIFT_METRIC, f))) : null,
      metric && hasActual ? series("PERFORMANCE", metric) : null,
      predicted ? series("STAT", "COUNT", predicted) : null,
    ]);
    const { accent } = colors();

    if (!driftSeries) drift.clear(m.baseline ? "No feature columns to compare." : "No baseline: drift compares each window with one.");
    else if (!driftSeries[0].points.length) drift.clear("No windows yet: the first refresh computes them.");
    else {
      drift.draw(align(driftSeries), (w) => chartOptions(w, features.map((f, i) => line(f, PALETTE[i % PALETTE.length])), { legend: true, yRange: (u, min, max) => [0, Math.max(1, max)] }));
      drift.caption.textContent = "0: the window matches the baseline; 1: no overlap.";
    }

    performance.element.querySelector("h3").textContent = metric ? `Performance (${metric})` : "Performance";
    if (!perfSeries) performance.clear(hasActual ? `No performance metric for ${m.model_task}.` : "No actual columns: performance needs the true values.");
    else if (!perfSeries.points.length) performance.clear("No windows yet: the first refresh computes them.");
    else {
      const bounded = metric !== "RMSE";
      performance.draw(align([perfSeries]), (w) => chartOptions(w, [line(metric, accent)], bounded ? { yRange: () => [0, 1] } : {}));
      const last = perfSeries.points[perfSeries.points.length - 1];
      performance.caption.textContent = `Latest window: ${last.metric_value === null ? "–" : Number(last.metric_value.toPrecision(4))}`;
    }

    if (!countSeries) count.clear("No prediction column.");
    else if (!countSeries.points.length) count.clear("No windows yet: the first refresh computes them.");
    else {
      const total = countSeries.points.reduce((sum, p) => sum + (p.metric_value || 0), 0);
      const bars = { label: "predictions", stroke: accent, fill: `${accent}55`, width: 1, paths: uPlot.paths.bars({ size: [0.6, 60] }), points: { show: false } };
      count.draw(align([countSeries]), (w) => chartOptions(w, [bars], { yRange: (u, min, max) => [0, Math.max(1, max * 1.15)] }));
      count.caption.textContent = `${fmt.int(total)} predictions in ${countSeries.points.length} window${countSeries.points.length === 1 ? "" : "s"} (${predicted} not null)`;
    }
  }

  async function refresh() {
    if (forbidden) return;
    let monitors;
    try {
      monitors = (await api(base)).filter((m) => m.model_database === database && m.model_schema === schema && m.model_name === model);
    } catch (err) {
      // Monitors read tables, which have no grants yet: their routes are ACCOUNTADMIN's. Not an error here.
      if (err instanceof ApiError && err.status === 403) {
        forbidden = true;
        fill(listBox, h("div", { class: "muted", "data-testid": "monitors-forbidden" }, "Monitors need ACCOUNTADMIN: sign in as an administrator to see them."));
        fill(detailBox);
        return;
      }
      throw err;
    }
    if (!monitors.some((m) => m.name === selected)) {
      selected = monitors.length ? monitors[0].name : null;
      shownFor = null;
    }
    fill(
      listBox,
      table(
        [
          {
            label: "Monitor",
            cell: (m) =>
              m.name === selected
                ? h("strong", null, m.name)
                : h("button", { class: "btn btn-small", type: "button", onclick: () => select(m.name).catch((err) => fill(detailBox, h("div", { class: "alert" }, err.message))) }, m.name),
          },
          { label: "Version", cell: (m) => m.version_name },
          { label: "Status", cell: (m) => badge(m.monitor_state) },
          { label: "Window", cell: (m) => m.aggregation_window },
          { label: "Refresh", cell: (m) => `every ${m.refresh_interval}` },
          { label: "Last refresh", cell: (m) => (m.last_refreshed_on ? fmt.time(m.last_refreshed_on) : "never") },
        ],
        monitors,
        {
          empty: "No monitors watch this model: Registry.add_monitor adds one.",
          rowProps: (m) => ({ "data-monitor": m.name, class: m.name === selected ? "selected" : null }),
        },
      ),
    );
    const current = monitors.find((m) => m.name === selected);
    if (!current) {
      fill(detailBox);
      shownFor = null;
      return;
    }
    const key = `${current.name}:${current.last_refreshed_on}:${current.monitor_state}`;
    if (key === shownFor) return;
    shownFor = key;
    try {
      await drawCharts(current);
    } catch (err) {
      shownFor = null; // try again on the next poll
      fill(detailBox, h("div", { class: "alert" }, `${current.name}: ${err.message}`));
    }
  }

  return {
    element,
    refresh,
    dispose() {
      drift.dispose();
      performance.dispose();
      count.dispose();
    },
  };
}
