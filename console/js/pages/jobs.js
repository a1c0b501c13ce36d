import { api, query } from "../api.js";
import { alertBox, errorText, field, h, pageHeader, poll, replace, select, statusBadge, table, timeEl } from "../ui.js";

export const STATUSES = ["scheduled", "waiting", "queued", "running", "succeeded", "failed", "cancelled"];
export const PRIORITIES = ["high", "normal", "low"];
const REFRESH_MS = 3000;

// datetime-local gives a zone-less local time; the API wants ISO 8601 with a zone.
function isoOrEmpty(local) {
  if (!local) return "";
  const date = new Date(local);
  return Number.isNaN(date.getTime()) ? "" : date.toISOString();
}

export function jobsPage(cleanups) {
  const alert = alertBox();
  const status = field("Status", select([["", "Any"], ...STATUSES.map((s) => [s, s])]));
  const type = field("Type", select([["", "Any"]]));
  const priority = field("Priority", select([["", "Any"], ...PRIORITIES.map((p) => [p, p])]));
  const tag = field("Tag", h("input", { type: "text", name: "tag", maxlength: 64, autocomplete: "off" }));
  const after = field("Created after", h("input", { type: "datetime-local", name: "created_after" }));
  const before = field("Created before", h("input", { type: "datetime-local", name: "created_before" }));
  const parent = field("Parent job", h("input", { type: "text", name: "parent_id", autocomplete: "off", placeholder: "job id", pattern: "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", title: "A job id: 36 characters, like 0b6f3c1e-…" }));
  const live = h("input", { type: "checkbox", checked: true });
  const liveField = field("Live refresh", live);
  // Not a live region: a table re-read every 3 s would drown a screen reader.
  const results = h("div", { "aria-busy": "false" });
  let shown = "";
  const pager = h("div", { class: "pager" });
  // Cursors of the pages seen, so "Previous page" can go back (the API's cursors go forward).
  let cursors = [null];
  let filters = {};

  // The Type filter's options. Its own alert: a refresh of the list must not clear why the
  // filter offers only "Any"; each refresh tries again until the types arrive.
  const typesAlert = alertBox();
  let types = null;
  function loadTypes() {
    types = types || api("GET", "/v1/job-types").then(
      (list) => {
        for (const t of list) type.control.append(h("option", { value: t.name }, t.name));
        typesAlert.show("");
      },
      (error) => {
        types = null;
        typesAlert.show(`The job types could not be read (${errorText(error)}): the Type filter offers only "Any" until they are.`);
      },
    );
  }

  async function load() {
    loadTypes();
    const cursor = cursors[cursors.length - 1];
    results.setAttribute("aria-busy", "true");
    try {
      const page = await api("GET", `/v1/jobs${query({ ...filters, limit: 25, cursor })}`);
      alert.show("");
      // Unchanged data is not redrawn, so polling never moves the keyboard focus.
      const seen = JSON.stringify([page, cursors.length]);
      if (seen !== shown) {
        shown = seen;
        render(page);
      }
    } catch (error) {
      alert.show(errorText(error));
    } finally {
      results.setAttribute("aria-busy", "false");
    }
  }

  function render(page) {
    replace(
      results,
      table(
        "Jobs",
        [
          { label: "Job", cell: (j) => h("a", { href: `#/jobs/${j.id}` }, j.name || j.id.slice(0, 8)) },
          { label: "Type", cell: (j) => j.type },
          { label: "Status", cell: (j) => statusBadge(j.status) },
          { label: "Priority", cell: (j) => j.priority },
          {
            label: "Progress",
            cell: (j) => h("progress", { max: 100, value: j.progress, "aria-label": `Progress of ${j.name || j.id}` }, `${j.progress}%`),
          },
          { label: "Attempts", cell: (j) => `${j.attempts} / ${j.max_attempts}` },
          { label: "Tags", cell: (j) => j.tags.join(", ") || "—" },
          { label: "Created", cell: (j) => timeEl(j.created_at) },
        ],
        page.items,
        {
          empty:
            cursors.length > 1 || Object.values(filters).some((v) => v !== undefined && v !== null && v !== "")
              ? "No jobs match these filters."
              : "No jobs yet: create one with New job.",
        },
      ),
    );
    replace(
      pager,
      h("button", { type: "button", class: "secondary", disabled: cursors.length < 2, onclick: () => { cursors.pop(); load(); } }, "Previous page"),
      h("span", {}, `Page ${cursors.length}`),
      h("button", { type: "button", class: "secondary", disabled: !page.next_cursor, onclick: () => { cursors.push(page.next_cursor); load(); } }, "Next page"),
    );
  }

  const form = h(
    "form",
    {
      "aria-label": "Filter jobs",
      onsubmit: (event) => {
        event.preventDefault();
        filters = {
          status: status.control.value,
          type: type.control.value,
          priority: priority.control.value,
          tag: tag.control.value.trim(),
          created_after: isoOrEmpty(after.control.value),
          created_before: isoOrEmpty(before.control.value),
          parent_id: parent.control.value.trim(),
        };
        cursors = [null];
        load();
      },
    },
    h("div", { class: "filter-grid" }, status, type, priority, tag, after, before, parent),
    h(
      "div",
      { class: "filter-actions" },
      h("button", { type: "submit" }, "Apply filters"),
      h("button", { type: "reset", class: "secondary", onclick: () => { filters = {}; cursors = [null]; setTimeout(load); } }, "Clear"),
      liveField,
    ),
  );

  load();
  poll(() => {
    if (live.checked) load();
  }, REFRESH_MS, cleanups);

  return h(
    "section",
    {},
    pageHeader("Jobs", h("button", { type: "button", onclick: () => { location.hash = "#/jobs/new"; } }, "New job")),
    alert,
    typesAlert,
    // Open on wide screens; on a phone the filters fold away under their summary.
    h("details", { class: "filters", open: window.matchMedia("(min-width: 761px)").matches }, h("summary", {}, "Filters"), form),
    results,
    pager,
  );
}
