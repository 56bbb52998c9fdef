// Compute pools with their live workers and the shards running on them now.

import { api, isMissingRoute } from "../api.js";
import { badge, fill, frame, h, kv, progressBar, table } from "../dom.js";
import * as fmt from "../format.js";
import { jobHref } from "./jobs.js";

export function list() {
  const page = frame({ title: "Compute pools", subtitle: "Workers serving each pool and the shards they run" });
  return {
    title: "Compute pools",
    nav: "pools",
    element: page.element,
    interval: 1000,
    showError: page.showError,
    async refresh() {
      const [pools, running] = await Promise.all([
        api("/compute-pools"),
        // Every job's shards are ACCOUNTADMIN's to see; other users see pools and workers only.
        api("/dashboard/running-shards").catch((err) => {
          if (isMissingRoute(err) || err.status === 403) return null;
          throw err;
        }),
      ]);
      page.clearError();
      const now = Date.now();
      fill(page.body,
        pools.length
          ? pools.map((pool) => {
              const shards = (running || []).filter((s) => s.compute_pool === pool.name);
              const slots = pool.workers.reduce((n, w) => n + w.slots, 0);
              return h(
                "section",
                { class: "card", "data-pool": pool.name },
                h("h2", null, pool.name, " ", badge(pool.state)),
                h(
                  "div",
                  { class: "grid-2" },
                  kv([
                    ["Instance family", pool.instance_family],
                    ["Nodes", `${pool.min_nodes}–${pool.max_nodes}`],
                    ["Owner", pool.owner],
                    ["Comment", pool.comment],
                  ]),
                  kv([
                    ["Workers", String(pool.workers.length)],
                    ["Slots", String(slots)],
                    ["Running shards", String(pool.running_shards)],
                    ["Created", fmt.time(pool.created_on)],
                  ]),
                ),
                h("h3", null, "Workers"),
                table(
                  [
                    { label: "Worker", cell: (w) => h("code", null, w.name) },
                    { label: "Executor", cell: (w) => w.executor },
                    { label: "Slots", class: "num", cell: (w) => String(w.slots) },
                    { label: "CPUs", class: "num", cell: (w) => String(w.cpus) },
                    { label: "Memory", class: "num", cell: (w) => fmt.bytes(w.memory_bytes) },
                    { label: "GPUs", class: "num", cell: (w) => String(w.gpus) },
                    { label: "Pools", cell: (w) => w.pools.join(", ") },
                    { label: "Up", class: "num", cell: (w) => fmt.duration((now - fmt.parseTime(w.started_at)) / 1000) },
                    { label: "Heartbeat", class: "num", cell: (w) => fmt.age(w.heartbeat_at, now) },
                  ],
                  pool.workers,
                  { empty: "No live worker serves this pool: its jobs wait until one starts." },
                ),
                h("h3", null, "Running shards"),
                table(
                  [
                    { label: "Job", cell: (s) => h("a", { class: "break", href: jobHref(s.database_name, s.schema_name, s.job_name) }, s.job_id) },
                    { label: "Shard", class: "num", cell: (s) => String(s.index) },
                    { label: "Attempt", class: "num", cell: (s) => String(s.attempt) },
                    { label: "Worker", cell: (s) => h("code", null, s.worker || "–") },
                    { label: "Progress", class: "col-progress", cell: (s) => h("div", { class: "progress-cell" }, progressBar(s.rows_done, s.rows_total, { failed: s.rows_failed }), h("div", { class: "progress-text" }, `${fmt.int(s.rows_done)} / ${fmt.int(s.rows_total)}`)) },
                    { label: "Running for", class: "num", cell: (s) => (s.started_at ? fmt.duration((now - fmt.parseTime(s.started_at)) / 1000) : "–") },
                  ],
                  shards,
                  { empty: running ? "No shard is running on this pool." : "Only ACCOUNTADMIN sees every job's running shards." },
                ),
              );
            })
          : h("div", { class: "card muted" }, "No compute pools."),
      );
    },
  };
}
