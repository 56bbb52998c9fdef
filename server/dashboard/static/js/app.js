// The dashboard's shell: hash routes, the header, sign-in redirects and the polling that keeps a page live.

import { logout, onUnauthorized, session } from "./api.js";
import { h } from "./dom.js";
import * as dags from "./pages/dags.js";
import * as jobs from "./pages/jobs.js";
import * as models from "./pages/models.js";
import * as pools from "./pages/pools.js";
import * as signin from "./pages/signin.js";
import * as stages from "./pages/stages.js";

const NAV = [
  ["jobs", "Jobs", "#/jobs"],
  ["models", "Models", "#/models"],
  ["pools", "Compute pools", "#/pools"],
  ["stages", "Stages", "#/stages"],
  ["dags", "DAGs", "#/dags"],
];

// [pattern, page, options?]: a page is (params) => { title, nav, element, refresh?, interval?, dispose? }.
const ROUTES = [
  [/^\/jobs$/, jobs.list],
  [/^\/jobs\/([^/]+)\/([^/]+)\/([^/]+)$/, jobs.detail],
  [/^\/models$/, models.list],
  [/^\/models\/([^/]+)\/([^/]+)\/([^/]+)$/, models.detail],
  [/^\/pools$/, pools.list],
  [/^\/stages((?:\/[^/]+){0,3})(?:\/(.*))?$/, stages.browse, { raw: true }],
  [/^\/dags$/, dags.list],
  [/^\/dags\/([^/]+)\/([^/]+)\/([^/]+)$/, dags.detail],
];

const root = document.getElementById("app");
let current = null; // the mounted page
let generation = 0; // bumps on every navigation: a refresh of a page left behind changes nothing
let timer = null;
let afterSignIn = "#/jobs";

function route() {
  const hash = location.hash.replace(/^#/, "") || "/jobs";
  if (hash === "/signin") return { page: signin.page, params: [] };
  if (!session.token()) {
    afterSignIn = `#${hash}`;
    location.replace("#/signin");
    return null;
  }
  for (const [pattern, page, options] of ROUTES) {
    const match = pattern.exec(hash);
    // A raw route decodes its own parameters: they hold '/'-separated names, each encoded.
    const decode = (p) => (p === undefined || (options && options.raw) ? p : decodeURIComponent(p));
    if (match) return { page, params: match.slice(1).map(decode) };
  }
  return { page: notFound, params: [hash] };
}

function notFound(path) {
  return {
    title: "Not found",
    element: h("div", { class: "page" }, h("div", { class: "alert" }, `No page at ${path}. `, h("a", { href: "#/jobs" }, "Go to jobs"))),
  };
}

function header(active) {
  const user = session.user();
  return h(
    "header",
    { class: "topbar" },
    h("a", { class: "brand", href: "#/jobs" }, h("img", { src: "/dashboard/favicon.svg", alt: "" }), "runbatch"),
    h(
      "nav",
      { class: "nav" },
      NAV.map(([key, label, href]) => h("a", { href, class: key === active ? "active" : null, "aria-current": key === active ? "page" : null }, label)),
    ),
    h(
      "div",
      { class: "user" },
      h("span", { class: "user-name", "data-testid": "user-name" }, user ? user.name : ""),
      h("button", { class: "btn btn-ghost", type: "button", "data-testid": "sign-out", onclick: signOut }, "Sign out"),
    ),
  );
}

async function signOut() {
  await logout();
  afterSignIn = "#/jobs";
  location.hash = "#/signin";
}

function stop() {
  generation += 1;
  clearTimeout(timer);
  timer = null;
  if (current && current.dispose) current.dispose();
  current = null;
}

async function tick(gen) {
  if (gen !== generation || !current || !current.refresh) return;
  if (document.visibilityState === "visible") {
    try {
      await current.refresh();
    } catch (err) {
      if (gen === generation && current && current.showError) current.showError(err);
    }
  }
  if (gen === generation && current.interval) timer = setTimeout(() => tick(gen), current.interval);
}

function render() {
  stop();
  const target = route();
  if (!target) return;
  const gen = generation;
  const page = target.page(...target.params);
  current = page;
  document.title = page.title ? `${page.title} · runbatch` : "runbatch";
  if (target.page === signin.page) {
    page.onSignedIn = () => {
      location.hash = afterSignIn;
    };
    root.replaceChildren(page.element);
  } else {
    root.replaceChildren(header(page.nav), h("main", { class: "main" }, page.element));
  }
  tick(gen);
}

onUnauthorized(() => {
  if (location.hash !== "#/signin") {
    afterSignIn = location.hash || "#/jobs";
    location.hash = "#/signin";
  }
});
window.addEventListener("hashchange", render);
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && current && current.refresh) {
    clearTimeout(timer);
    tick(generation);
  }
});
render();
