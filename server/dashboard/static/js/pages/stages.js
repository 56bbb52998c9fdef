// Stage browser: databases -> schemas -> stages -> folders and files, with downloads.

import { api, download, enc } from "../api.js";
import { fill, frame, h, table } from "../dom.js";
import * as fmt from "../format.js";

function href(...parts) {
  return `#/stages/${parts.map(enc).join("/")}`;
}

// Entries directly under a folder: files, and sub-folders with the count and size of what they hold.
function folderEntries(files, folder) {
  const folders = new Map();
  const here = [];
  for (const f of files) {
    if (!f.path.startsWith(folder)) continue;
    const rest = f.path.slice(folder.length);
    const cut = rest.indexOf("/");
    if (cut < 0) {
      here.push({ kind: "file", name: rest, file: f });
    } else {
      const name = rest.slice(0, cut);
      const entry = folders.get(name) || { kind: "folder", name, count: 0, size: 0 };
      entry.count += 1;
      entry.size += f.size;
      folders.set(name, entry);
    }
  }
  // By code point, as LIST orders names.
  const byName = (a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  return [...[...folders.values()].sort(byName), ...here.sort(byName)];
}

export function browse(names, folder) {
  const parts = (names || "").split("/").filter(Boolean).map(decodeURIComponent);
  const [database, schema, stage] = parts;
  const path = folder ? decodeURIComponent(folder) : "";
  const crumbs = [["Stages", "#/stages"]];
  if (database) crumbs.push([database, href(database)]);
  if (schema) crumbs.push([schema, href(database, schema)]);
  if (stage) crumbs.push([stage, href(database, schema, stage)]);
  let walked = "";
  for (const segment of path.split("/").filter(Boolean)) {
    walked += `${segment}/`;
    crumbs.push([segment, `${href(database, schema, stage)}/${walked.split("/").filter(Boolean).map(enc).join("/")}/`]);
  }
  const title = stage ? `@${database}.${schema}.${stage}/${path}` : schema ? `${database}.${schema}` : database || "Stages";
  const refresh = h("button", { class: "btn", type: "button", onclick: () => self.refresh().catch(page.showError) }, "Refresh");
  const page = frame({ title, subtitle: "", crumbs: crumbs.length > 1 ? crumbs : null, actions: [refresh] });

  async function render() {
    if (!database) {
      const rows = await api("/databases");
      page.subtitleNode.textContent = "Databases";
      return table(
        [
          { label: "Database", cell: (d) => h("a", { class: "strong", href: href(d.name) }, d.name) },
          { label: "Owner", cell: (d) => d.owner },
          { label: "Created", cell: (d) => fmt.time(d.created_on) },
          { label: "Comment", cell: (d) => d.comment || "" },
        ],
        rows,
      );
    }
    if (!schema) {
      const rows = await api(`/databases/${enc(database)}/schemas`);
      page.subtitleNode.textContent = "Schemas";
      return table(
        [
          { label: "Schema", cell: (s) => h("a", { class: "strong", href: href(database, s.name) }, s.name) },
          { label: "Owner", cell: (s) => s.owner },
          { label: "Created", cell: (s) => fmt.time(s.created_on) },
          { label: "Comment", cell: (s) => s.comment || "" },
        ],
        rows,
      );
    }
    if (!stage) {
      const rows = await api(`/databases/${enc(database)}/schemas/${enc(schema)}/stages`);
      page.subtitleNode.textContent = "Stages";
      return table(
        [
          { label: "Stage", cell: (s) => h("a", { class: "strong", href: href(database, schema, s.name) }, s.name) },
          { label: "Type", cell: (s) => s.type },
          { label: "URL", cell: (s) => (s.url ? h("code", null, s.url) : "") },
          { label: "Owner", cell: (s) => s.owner },
          { label: "Created", cell: (s) => fmt.time(s.created_on) },
        ],
        rows,
        { empty: "No stages in this schema." },
      );
    }
    const query = new URLSearchParams({ path });
    const files = await api(`/databases/${enc(database)}/schemas/${enc(schema)}/stages/${enc(stage)}/files?${query}`);
    const entries = folderEntries(files, path);
    const total = files.reduce((n, f) => n + f.size, 0);
    page.subtitleNode.textContent = `${fmt.int(files.length)} file${files.length === 1 ? "" : "s"}, ${fmt.bytes(total)}`;
    return table(
      [
        {
          label: "Name",
          cell: (e) =>
            e.kind === "folder"
              ? h("a", { class: "strong folder", href: `${href(database, schema, stage)}/${`${path}${e.name}`.split("/").map(enc).join("/")}/` }, `${e.name}/`)
              : h("code", null, e.name),
        },
        { label: "Size", class: "num", cell: (e) => fmt.bytes(e.kind === "folder" ? e.size : e.file.size) },
        { label: "Modified", cell: (e) => (e.kind === "folder" ? `${e.count} file${e.count === 1 ? "" : "s"}` : e.file.last_modified) },
        { label: "MD5", cell: (e) => (e.kind === "file" ? h("code", { class: "muted small" }, e.file.md5) : "") },
        {
          label: "",
          class: "num",
          cell: (e) =>
            e.kind === "file" ? h("button", { class: "btn btn-small", type: "button", onclick: () => download(database, schema, stage, e.file.path).catch(page.showError) }, "Download") : "",
        },
      ],
      entries,
      { empty: "This folder is empty.", rowProps: (e) => ({ "data-entry": e.name }) },
    );
  }

  const self = {
    title,
    nav: "stages",
    element: page.element,
    showError: page.showError,
    async refresh() {
      const body = await render();
      page.clearError();
      fill(page.body, h("section", { class: "card flush" }, body));
    },
  };
  return self;
}
