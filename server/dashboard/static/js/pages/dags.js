// DAGs (task graphs) of every schema, and a DAG's tasks and run history with links to the jobs its tasks ran.

import { allSchemas, api, enc } from "../api.js";
import { badge, fill, frame, h, kv, section, table } from "../dom.js";
import * as fmt from "../format.js";
import { jobHref } from "./jobs.js";

function scheduleText(schedule) {
  if (!schedule) return "manual";
  if (schedule.cron) return `cron ${schedule.cron}${schedule.timezone ? ` (${schedule.timezone})` : ""}`;
  if (schedule.interval_s) return `every ${fmt.duration(schedule.interval_s)}`;
  return "manual";
}

function dagHref(d) {
  return `#/dags/${enc(d.database_name)}/${enc(d.schema_name)}/${enc(d.name)}`;
}

export function list() {
  const page = frame({ title: "DAGs", subtitle: "Task graphs and their schedules" });
  return {
    title: "DAGs",
    nav: "dags",
    element: page.element,
    interval: 5000,
    showError: page.showError,
    async refresh() {
      const schemas = await allSchemas();
      const lists = await Promise.all(schemas.map((s) => api(`/databases/${enc(s.database_name)}/schemas/${enc(s.name)}/dags`)));
      const dags = lists.flat();
      page.clearError();
      page.subtitleNode.textContent = `${dags.length} DAG${dags.length === 1 ? "" : "s"}`;
      fill(page.body,
        table(
          [
            { label: "DAG", cell: (d) => h("div", null, h("a", { class: "strong", href: dagHref(d) }, d.name), h("div", { class: "muted small" }, `${d.database_name}.${d.schema_name}`)) },
            { label: "State", cell: (d) => badge(d.state.toUpperCase()) },
            { label: "Schedule", cell: (d) => scheduleText(d.schedule) },
            { label: "Next run", cell: (d) => (d.next_scheduled_time ? fmt.time(d.next_scheduled_time) : "–") },
            { label: "Tasks", class: "num", cell: (d) => String(d.tasks.length) },
            { label: "Owner", cell: (d) => d.owner },
            { label: "Created", cell: (d) => fmt.time(d.created_on) },
          ],
          dags,
          { empty: "No DAGs yet: DAG.deploy() adds one." },
        ),
      );
    },
  };
}

export function detail(database, schema, name) {
  const base = `/databases/${enc(database)}/schemas/${enc(schema)}/dags/${enc(name)}`;
  const page = frame({ title: name, subtitle: `${database}.${schema}`, crumbs: [["DAGs", "#/dags"], [`${database}.${schema}`, null], [name, null]] });
  return {
    title: name,
    nav: "dags",
    element: page.element,
    interval: 2000,
    showError: page.showError,
    async refresh() {
      const [dag, runs] = await Promise.all([api(base), api(`${base}/runs?limit=50`)]);
      page.clearError();
      fill(page.body,
        section(
          "DAG",
          kv([
            ["State", badge(dag.state.toUpperCase())],
            ["Schedule", scheduleText(dag.schedule)],
            ["Next run", dag.next_scheduled_time ? fmt.time(dag.next_scheduled_time) : null],
            ["Owner", dag.owner],
            ["Comment", dag.comment],
            ["Suspended because", dag.last_suspended_reason],
          ]),
        ),
        section(
          "Tasks",
          table(
            [
              { label: "Task", cell: (t) => h("strong", null, t.name) },
              { label: "Kind", cell: (t) => t.kind + (t.is_finalizer ? " (finalizer)" : "") },
              { label: "After", cell: (t) => t.predecessors.join(", ") || "–" },
              { label: "SQL", cell: (t) => (t.sql ? h("code", { class: "wrap" }, t.sql) : "") },
            ],
            dag.tasks,
          ),
        ),
        section(
          "Runs",
          table(
            [
              { label: "Scheduled", cell: (r) => fmt.time(r.scheduled_time) },
              { label: "State", cell: (r) => badge(r.state) },
              { label: "Trigger", cell: (r) => r.trigger },
              { label: "Duration", class: "num", cell: (r) => (r.query_start_time ? fmt.duration(((fmt.parseTime(r.completed_time) || Date.now()) - fmt.parseTime(r.query_start_time)) / 1000) : "–") },
              {
                label: "Jobs",
                cell: (r) =>
                  r.tasks.flatMap((t) => t.job_ids).map((id) => {
                    const [db, sc, job] = id.split(".");
                    return h("a", { class: "chip", href: jobHref(db, sc, job) }, job);
                  }),
              },
              { label: "Error", cell: (r) => (r.first_error_message ? h("span", { class: "message text-danger" }, `${r.first_error_task_name}: ${r.first_error_message}`) : "") },
            ],
            runs,
            { empty: "No runs yet." },
          ),
        ),
      );
    },
  };
}
