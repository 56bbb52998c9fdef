// The model registry: models of every schema, then a model's versions with their functions and metrics.

import { ApiError, allSchemas, api, enc, isMissingRoute } from "../api.js";
import { fill, frame, h, kv, section, table } from "../dom.js";
import * as fmt from "../format.js";
import { signatureText } from "./jobs.js";
import { monitorsCard } from "./monitors.js";

const SYSTEM_ALIASES = new Set(["DEFAULT", "FIRST", "LAST"]); // every model has them

export function list() {
  const page = frame({ title: "Models", subtitle: "The model registry of every database and schema" });
  return {
    title: "Models",
    nav: "models",
    element: page.element,
    interval: 5000,
    showError: page.showError,
    async refresh() {
      const schemas = await allSchemas();
      const lists = await Promise.all(schemas.map((s) => api(`/databases/${enc(s.database_name)}/schemas/${enc(s.name)}/models`)));
      const models = lists.flat();
      page.clearError();
      page.subtitleNode.textContent = `${models.length} model${models.length === 1 ? "" : "s"} in ${schemas.length} schema${schemas.length === 1 ? "" : "s"}`;
      fill(page.body,
        table(
          [
            { label: "Model", cell: (m) => h("div", null, h("a", { class: "strong", href: `#/models/${enc(m.database_name)}/${enc(m.schema_name)}/${enc(m.name)}` }, m.name), h("div", { class: "muted small" }, `${m.database_name}.${m.schema_name}`)) },
            { label: "Type", cell: (m) => m.model_type || "–" },
            { label: "Default version", cell: (m) => m.default_version_name || "–" },
            { label: "Versions", class: "num", cell: (m) => String(m.versions.length) },
            { label: "Aliases", cell: (m) => Object.entries(m.aliases).map(([a, v]) => h("span", { class: "chip" }, `${a} → ${v}`)) },
            { label: "Tags", cell: (m) => Object.entries(m.tags).map(([k, v]) => h("span", { class: "chip" }, `${k}=${v}`)) },
            { label: "Owner", cell: (m) => m.owner },
            { label: "Created", cell: (m) => fmt.time(m.created_on) },
          ],
          models,
          { empty: "No models yet: Registry.log_model adds one.", rowProps: (m) => ({ "data-model": `${m.database_name}.${m.schema_name}.${m.name}` }) },
        ),
      );
    },
  };
}

function metricValue(value) {
  return typeof value === "number" ? String(Number.isInteger(value) ? value : Number(value.toPrecision(6))) : JSON.stringify(value);
}

function versionCard(v) {
  const metrics = Object.entries(v.metrics || {});
  return h(
    "section",
    { class: "card", "data-version": v.name },
    h("h2", null, v.name, " ", v.is_default_version ? h("span", { class: "badge badge-done" }, "DEFAULT") : null, v.aliases.filter((a) => !SYSTEM_ALIASES.has(a)).map((a) => h("span", { class: "chip" }, a))),
    v.comment ? h("p", { class: "muted" }, v.comment) : null,
    h(
      "div",
      { class: "grid-2" },
      kv([
        ["Type", v.model_type],
        ["Owner", v.owner],
        ["Created", fmt.time(v.created_on)],
        ["Python", v.spec?.env?.python_version || null],
      ]),
      h(
        "div",
        null,
        h("h3", null, "Metrics"),
        metrics.length
          ? table([{ label: "Metric", cell: ([k]) => k }, { label: "Value", class: "num", cell: ([, val]) => h("code", null, metricValue(val)) }], metrics)
          : h("div", { class: "muted" }, "No metrics."),
      ),
    ),
    h("h3", null, "Functions"),
    table(
      [
        { label: "Function", cell: (f) => h("div", null, h("strong", null, f.name), f.is_partitioned ? h("span", { class: "chip" }, "partitioned") : null) },
        { label: "Type", cell: (f) => f.target_method_function_type },
        { label: "Inputs", cell: (f) => h("code", { class: "wrap" }, signatureText(f.signature.inputs)) },
        { label: "Outputs", cell: (f) => h("code", { class: "wrap" }, signatureText(f.signature.outputs)) },
        { label: "Params", cell: (f) => h("code", { class: "wrap" }, (f.signature.params || []).map((p) => `${p.name}: ${p.param_type || p.type} = ${JSON.stringify(p.default_value ?? p.default ?? null)}`).join(", ") || "–") },
      ],
      v.functions,
      { empty: "No functions." },
    ),
  );
}

// A model that is not there and one the caller's roles hold nothing on answer the same 404, so the page
// says the same for both: what the URL named, nothing from the server.
function notFoundCard(database, schema, name) {
  return h(
    "section",
    { class: "card", "data-testid": "model-not-found" },
    h("h2", null, "Model not found"),
    h("p", { class: "muted" }, `There is no model ${database}.${schema}.${name}, or your roles hold no privilege on it.`),
    h("a", { href: "#/models" }, "All models"),
  );
}

export function detail(database, schema, name) {
  const base = `/databases/${enc(database)}/schemas/${enc(schema)}/models/${enc(name)}`;
  const page = frame({ title: name, subtitle: `${database}.${schema}`, crumbs: [["Models", "#/models"], [`${database}.${schema}`, null], [name, null]] });
  const monitors = monitorsCard(database, schema, name);
  return {
    title: name,
    nav: "models",
    element: page.element,
    interval: 5000,
    showError: page.showError,
    async refresh() {
      let model, versions;
      try {
        [model, versions] = await Promise.all([api(base), api(`${base}/versions`)]);
      } catch (err) {
        if (err instanceof ApiError && err.status === 404 && !isMissingRoute(err)) {
          page.clearError();
          page.subtitleNode.textContent = `${database}.${schema}`;
          fill(page.body, notFoundCard(database, schema, name));
          return;
        }
        throw err;
      }
      page.clearError();
      page.subtitleNode.textContent = `${database}.${schema} · ${model.model_type || "model"} · ${versions.length} version${versions.length === 1 ? "" : "s"}`;
      fill(page.body,
        section(
          "Model",
          kv([
            ["Default version", model.default_version_name],
            ["Owner", model.owner],
            ["Created", fmt.time(model.created_on)],
            ["Comment", model.comment],
            ["Tags", Object.keys(model.tags).length ? Object.entries(model.tags).map(([k, v]) => h("span", { class: "chip" }, `${k}=${v}`)) : null],
          ]),
        ),
        monitors.element,
        versions.map(versionCard),
      );
      await monitors.refresh();
    },
    dispose() {
      monitors.dispose();
    },
  };
}
