// Builds DOM nodes from data without innerHTML, so no text from the API is ever parsed as markup.

export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "style") Object.assign(el.style, value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "value") el.value = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function table(columns, rows, { empty = "Nothing here yet.", rowProps } = {}) {
  // columns: [{ label, cell: (row) => node|string, class? }]
  const head = h("thead", null, h("tr", null, columns.map((c) => h("th", { class: c.class }, c.label))));
  const body = h(
    "tbody",
    null,
    rows.length
      ? rows.map((row) =>
          h("tr", rowProps ? rowProps(row) : null, columns.map((c) => h("td", { class: c.class }, c.cell(row)))),
        )
      : h("tr", null, h("td", { class: "empty", colspan: columns.length }, empty)),
  );
  return h("div", { class: "table-wrap" }, h("table", null, head, body));
}

export function badge(status) {
  const text = String(status || "UNKNOWN");
  return h("span", { class: `badge badge-${text.toLowerCase()}`, "data-status": text }, text);
}

export function progressBar(done, total, { failed = 0 } = {}) {
  const pct = total ? Math.min(100, (100 * done) / total) : 0;
  const failedPct = total ? Math.min(100 - pct, (100 * failed) / total) : 0;
  return h(
    "div",
    { class: "progress", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": Math.round(pct) },
    h("div", { class: "progress-fill", style: { width: `${pct}%` } }),
    failedPct ? h("div", { class: "progress-failed", style: { width: `${failedPct}%` } }) : null,
  );
}

export function section(title, ...children) {
  return h("section", { class: "card" }, title ? h("h2", null, title) : null, children);
}

export function kv(pairs) {
  return h(
    "dl",
    { class: "kv" },
    pairs.filter(([, v]) => v !== null && v !== undefined && v !== "").map(([k, v]) => [h("dt", null, k), h("dd", null, v)]),
  );
}

export function link(href, text) {
  return h("a", { href }, text);
}

export function errorBox(err) {
  return h("div", { class: "alert", role: "alert" }, err && err.message ? err.message : String(err));
}

export function confirmDialog({ title, message, confirm, cancel = "Keep it", danger = true }) {
  return new Promise((resolve) => {
    const close = (answer) => {
      overlay.remove();
      document.removeEventListener("keydown", onKey);
      resolve(answer);
    };
    const onKey = (e) => {
      if (e.key === "Escape") close(false);
    };
    const overlay = h(
      "div",
      { class: "modal-overlay", onclick: (e) => e.target === overlay && close(false) },
      h(
        "div",
        { class: "modal", role: "dialog", "aria-modal": "true", "aria-labelledby": "modal-title" },
        h("h3", { id: "modal-title" }, title),
        h("p", null, message),
        h(
          "div",
          { class: "modal-actions" },
          h("button", { class: "btn", type: "button", onclick: () => close(false) }, cancel),
          h("button", { class: danger ? "btn btn-danger" : "btn btn-primary", type: "button", onclick: () => close(true) }, confirm),
        ),
      ),
    );
    document.addEventListener("keydown", onKey);
    document.body.append(overlay);
    overlay.querySelector(".btn-danger, .btn-primary").focus();
  });
}

// A page: heading (title, subtitle, actions), an error banner, and a body the page fills.
export function frame({ title, subtitle, actions, crumbs }) {
  const alert = h("div", { class: "alert", role: "alert", hidden: true });
  const body = h("div", { class: "page-body" });
  const titleNode = h("h1", null, title);
  const subtitleNode = h("div", { class: "subtitle" }, subtitle || "");
  const actionsNode = h("div", { class: "actions" }, actions || []);
  const element = h(
    "div",
    { class: "page" },
    crumbs ? h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, crumbs.map(([text, href], i) => [i ? h("span", { class: "sep" }, "/") : null, href ? h("a", { href }, text) : h("span", null, text)])) : null,
    h("div", { class: "page-head" }, h("div", null, titleNode, subtitleNode), actionsNode),
    alert,
    body,
  );
  return {
    element,
    body,
    titleNode,
    subtitleNode,
    actionsNode,
    showError(err) {
      alert.textContent = err && err.message ? err.message : String(err);
      alert.hidden = false;
    },
    clearError() {
      alert.hidden = true;
    },
  };
}

// replaceChildren that, like h(), flattens arrays and skips null and false.
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}
