// The console's shell: configuration, the session, navigation and the hash router.
// Routes live in the fragment (#/jobs/…), which never reaches a server.

import { loadConfig, onSessionChange, session, signOut } from "./api.js";
import { h, replace } from "./ui.js";
import { auditPage } from "./pages/audit.js";
import { deadLettersPage } from "./pages/deadletters.js";
import { jobPage } from "./pages/job.js";
import { jobsPage } from "./pages/jobs.js";
import { limitsPage } from "./pages/limits.js";
import { newJobPage } from "./pages/newjob.js";
import { queuesPage } from "./pages/queues.js";
import { signInPage } from "./pages/signin.js";
import { usersPage } from "./pages/users.js";

const NAV = [
  { href: "#/jobs", label: "Jobs", admin: false },
  { href: "#/queues", label: "Queues", admin: true },
  { href: "#/dead-letters", label: "Dead letters", admin: true },
  { href: "#/limits", label: "Limits", admin: true },
  { href: "#/users", label: "Users", admin: true },
  { href: "#/audit", label: "Audit", admin: true },
];

const ROUTES = [
  { pattern: /^\/jobs\/new$/, page: newJobPage, admin: false, title: "New job" },
  { pattern: /^\/jobs\/([0-9a-f-]{36})$/, page: jobPage, admin: false, title: "Job" },
  { pattern: /^\/jobs$/, page: jobsPage, admin: false, title: "Jobs" },
  { pattern: /^\/queues$/, page: queuesPage, admin: true, title: "Queues" },
  { pattern: /^\/dead-letters$/, page: deadLettersPage, admin: true, title: "Dead letters" },
  { pattern: /^\/limits$/, page: limitsPage, admin: true, title: "Limits" },
  { pattern: /^\/users$/, page: usersPage, admin: true, title: "Users" },
  { pattern: /^\/audit$/, page: auditPage, admin: true, title: "Audit" },
];

const main = document.getElementById("main");
const header = document.getElementById("top");
let cleanups = [];

function isAdmin() {
  const current = session();
  return Boolean(current && current.user && current.user.role === "admin");
}

// A worker account claims and reports on external jobs over the API; it may read no page here
// (every request would be a 403), so none is asked for.
function isWorker() {
  const current = session();
  return Boolean(current && current.user && current.user.role === "worker");
}

function renderHeader() {
  const current = session();
  header.hidden = !current;
  if (!current) {
    header.replaceChildren();
    return;
  }
  const path = location.hash.replace(/^#/, "");
  const links = NAV.filter((item) => !isWorker() && (!item.admin || isAdmin())).map((item) => {
    const active = path === item.href.slice(1) || path.startsWith(`${item.href.slice(1)}/`);
    return h("li", {}, h("a", { href: item.href, "aria-current": active ? "page" : null }, item.label));
  });
  replace(
    header,
    h("a", { class: "brand", href: "#/jobs" }, "Taskmill"),
    h("nav", { "aria-label": "Main" }, h("ul", {}, links)),
    h(
      "div",
      { class: "who" },
      h("span", { class: "who-email" }, current.user.email),
      h("span", { class: "badge" }, current.user.role),
      h(
        "button",
        {
          type: "button",
          class: "secondary",
          onclick: async () => {
            await signOut();
            location.hash = "#/signin";
          },
        },
        "Sign out",
      ),
    ),
  );
}

function forbidden() {
  return h(
    "section",
    { class: "forbidden" },
    h("h1", { tabindex: "-1" }, "Not allowed"),
    h("p", { role: "alert" }, "This page is for administrators. Your account cannot open it."),
    h("p", {}, h("a", { href: "#/jobs" }, "Back to your jobs")),
  );
}

function workerAccount() {
  return h(
    "section",
    { class: "forbidden" },
    h("h1", { tabindex: "-1" }, "A worker account"),
    h(
      "p",
      { role: "alert" },
      "This account has the worker role: it claims jobs of external types over the API " +
        "(POST /v1/workers/claim, then /heartbeat, /progress, /complete or /fail on each job) " +
        "and has no pages here. Sign out, then sign in with a user or administrator account " +
        "to see jobs.",
    ),
  );
}

function notFound() {
  return h(
    "section",
    {},
    h("h1", { tabindex: "-1" }, "Page not found"),
    h("p", {}, h("a", { href: "#/jobs" }, "Go to jobs")),
  );
}

function route() {
  for (const cleanup of cleanups) cleanup();
  cleanups = [];
  const path = location.hash.replace(/^#/, "") || "/";
  if (!session()) {
    renderHeader();
    document.title = "Sign in · Taskmill";
    // After signing in: the page asked for, or the jobs.
    replace(main, signInPage(() => {
      if (path === "/" || path === "/signin") location.replace("#/jobs");
      else route();
    }));
    main.querySelector("input")?.focus();
    return;
  }
  if (path === "/" || path === "/signin") {
    location.replace("#/jobs");
    return;
  }
  renderHeader();
  if (isWorker()) {
    document.title = "A worker account · Taskmill";
    replace(main, workerAccount());
    main.querySelector("h1")?.focus({ preventScroll: true });
    return;
  }
  let content = null;
  let title = "Not found";
  for (const entry of ROUTES) {
    const match = entry.pattern.exec(path);
    if (!match) continue;
    title = entry.title;
    // Refused before any request: a user's console never asks for admin data.
    content = entry.admin && !isAdmin() ? forbidden() : entry.page(cleanups, ...match.slice(1));
    if (entry.admin && !isAdmin()) title = "Not allowed";
    break;
  }
  document.title = `${title} · Taskmill`;
  replace(main, content || notFound());
  // Move focus to the new page's heading, as a page load would (screen readers, keyboards).
  main.querySelector("h1")?.focus({ preventScroll: true });
}

async function start() {
  document.getElementById("skip").addEventListener("click", (event) => {
    event.preventDefault();
    main.focus();
  });
  try {
    await loadConfig();
  } catch (error) {
    replace(main, h("p", { role: "alert", class: "alert" }, `The console is not configured: ${error.message}`));
    return;
  }
  onSessionChange((current) => {
    if (!current) route();
  });
  window.addEventListener("hashchange", route);
  route();
}

start();
