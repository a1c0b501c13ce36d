import { api, query, session } from "../api.js";
import { alertBox, announce, detailCell, errorText, h, json, pageHeader, poll, replace, statusBadge, table, timeEl } from "../ui.js";

const CANCELLABLE = new Set(["scheduled", "waiting", "queued", "running"]);
const RETRYABLE = new Set(["failed", "cancelled"]);
const FINISHED = new Set(["succeeded", "failed", "cancelled"]);
// An account's role as shown when its e-mail is not (another account, or a deleted one).
const ROLES = new Map([["admin", "an admin"], ["user", "a user"], ["worker", "a worker account"]]);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
// Children per request; "More children" asks for the next page with the API's cursor.
export const CHILDREN_PAGE = 20;
// Transitions per request of the history (the API's largest page): every page is read.
export const HISTORY_PAGE = 200;

// What changes whenever the job makes a transition: the history is read again only when this
// moved since the last read (every transition sets `updated_at`; the rest is belt and braces).
function historyMark(job) {
  return JSON.stringify([job.updated_at, job.status, job.attempts, job.redrive_count, job.cancel_requested]);
}

function facts(job) {
  const rows = [
    ["Status", statusBadge(job.status)],
    ["Type", job.type],
    ["Priority", job.priority],
    ["Attempts", `${job.attempts} of ${job.max_attempts}`],
    ["Redrives", job.redrive_count],
    ["Tags", job.tags.join(", ") || "—"],
    ["Parent", job.parent_id ? h("a", { href: `#/jobs/${job.parent_id}` }, job.parent_id) : null],
    ["Depends on", job.depends_on.length ? job.depends_on.map((d) => h("a", { href: `#/jobs/${d}` }, d.slice(0, 8), " ")) : "—"],
    ["Created", timeEl(job.created_at)],
    ["Run at", timeEl(job.run_at)],
    ["Started", timeEl(job.started_at)],
    ["Finished", timeEl(job.finished_at)],
    ["Updated", timeEl(job.updated_at)],
  ].filter(([, value]) => value !== null && value !== undefined);
  return h("dl", { class: "facts" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

// Who made a transition: "you", an account's e-mail (the API gives it to admins, and to a
// user for their own actions), an account's role when its e-mail is not given, or the
// platform's part that acted ("worker", "schedule:…"), whose full form stays in the title.
function actorCell(event) {
  const me = session()?.user?.id;
  const [role, account] = event.actor.split(":");
  const isAccount = ROLES.has(role) && UUID.test(account || "");
  if (isAccount && account === me) return h("span", { title: event.actor }, "you");
  if (event.actor_email) return h("span", { title: event.actor }, event.actor_email);
  if (isAccount) return h("span", { title: event.actor }, ROLES.get(role));
  return event.actor;
}

export function jobPage(cleanups, jobId) {
  const alert = alertBox();
  const body = h("div", { "aria-busy": "true" }, h("p", {}, "Loading…"));
  const heading = pageHeader(`Job ${jobId.slice(0, 8)}`);
  let job = null;
  let stopped = false;
  let shown = "";
  // The history as last read: the job's mark then (null: never read), and where its last page
  // began (index and cursor). A history only grows, so a later read starts at that page.
  let history = { mark: null, events: [], lastStart: 0, lastCursor: null };
  // Loads overlap when one is slow (a long history) and an action or a poll starts another:
  // only the latest started one is drawn, and a poll starts none while one is on its way.
  let loadsStarted = 0;
  let loadsDrawn = 0;
  let loading = 0;
  // The children shown so far (every page asked for), and the cursor of the page after them.
  let children = [];
  let childPages = 1;
  let childCursor = null;
  const childList = h("div", { "aria-busy": "true" });

  // The alert says why the last read failed, or why an action was refused; a read's error
  // goes once a read succeeds again, an action's stays until the next action.
  let readFailed = false;

  async function act(verb) {
    alert.show("");
    readFailed = false;
    try {
      await api("POST", `/v1/jobs/${jobId}/${verb}`);
      announce(verb === "cancel" ? "Cancel requested." : "Job queued again.");
      await load();
    } catch (error) {
      alert.show(errorText(error));
    }
  }

  // Re-reads as many pages of children as are shown, so their statuses stay live.
  async function loadChildren() {
    const items = [];
    let cursor = null;
    for (let page = 0; page < childPages; page += 1) {
      const answer = await api("GET", `/v1/jobs${query({ parent_id: jobId, limit: CHILDREN_PAGE, cursor })}`);
      items.push(...answer.items);
      cursor = answer.next_cursor;
      if (!cursor) break;
    }
    return [items, cursor];
  }

  // What the page shows, to compare with the last drawn. Of the history, its length and its last
  // page: earlier pages are kept as read (a history of thousands of events is not serialised
  // at every poll).
  function drawn() {
    return JSON.stringify([job, children, childCursor, history.events.length, history.events.slice(history.lastStart)]);
  }

  // The history from the start of its last page read, every page after it followed; earlier
  // pages are kept as they were read.
  async function readHistory(known) {
    const events = known.events.slice(0, known.lastStart);
    let cursor = known.lastCursor;
    for (;;) {
      const start = events.length;
      const answer = await api("GET", `/v1/jobs/${jobId}/events${query({ limit: HISTORY_PAGE, cursor })}`);
      events.push(...answer.items);
      if (!answer.next_cursor) return { events, lastStart: start, lastCursor: cursor };
      cursor = answer.next_cursor;
    }
  }

  async function load() {
    const pages = childPages;
    const started = ++loadsStarted;
    loading += 1;
    try {
      const [current, [kids, next]] = await Promise.all([api("GET", `/v1/jobs/${jobId}`), loadChildren()]);
      // Read after the job, so a transition the job shows is in it; read only when the job
      // moved since the last read.
      const mark = historyMark(current);
      const known = history;
      const read = mark === known.mark ? known : { ...(await readHistory(known)), mark };
      // "More children" answered meanwhile: this read has fewer children than are shown.
      // A load started later was drawn already: this one is older.
      if (pages !== childPages || started < loadsDrawn) return;
      loadsDrawn = started;
      history = read;
      if (readFailed) {
        readFailed = false;
        alert.show("");
      }
      job = current;
      children = kids;
      childCursor = next;
      // Unchanged data is not redrawn, so polling never moves the keyboard focus.
      const seen = drawn();
      if (seen !== shown) {
        shown = seen;
        render(read.events);
      }
    } catch (error) {
      alert.show(error.status === 404 ? "This job does not exist, or it is not yours." : errorText(error));
      readFailed = true;
      if (error.status === 404) {
        // Nothing more will come: no "Loading…" under the answer, and a way on.
        stopped = true;
        body.removeAttribute("aria-busy");
        replace(body, h("p", {}, h("a", { href: "#/jobs" }, "Back to your jobs")));
      }
    } finally {
      loading -= 1;
    }
  }

  function render(events) {
    const title = heading.querySelector("h1");
    title.textContent = job.name ? `Job ${job.name}` : `Job ${job.id.slice(0, 8)}`;
    const actions = heading.querySelector(".actions");
    replace(
      actions,
      CANCELLABLE.has(job.status) && !job.cancel_requested
        ? h("button", { type: "button", class: "danger", onclick: () => act("cancel") }, "Cancel job")
        : null,
      RETRYABLE.has(job.status) ? h("button", { type: "button", onclick: () => act("retry") }, "Retry job") : null,
    );
    body.setAttribute("aria-busy", "false");
    replace(
      body,
      h("p", { class: "job-id" }, "ID ", h("code", {}, job.id)),
      job.description ? h("p", {}, job.description) : null,
      h(
        "div",
        { class: "progress-block" },
        h("label", { for: "job-progress" }, `Progress: ${job.progress}%`, job.progress_message ? ` — ${job.progress_message}` : ""),
        h("progress", { id: "job-progress", max: 100, value: job.progress }, `${job.progress}%`),
      ),
      job.cancel_requested && !FINISHED.has(job.status) ? h("p", { class: "note" }, "Cancel requested; the job stops at its next check.") : null,
      facts(job),
      job.last_error ? [h("h2", {}, "Last error"), h("pre", { class: "error-text", tabindex: "0" }, job.last_error)] : null,
      h("h2", {}, "Payload"),
      json(job.payload),
      h("h2", {}, "Result"),
      job.result === null || job.result === undefined ? h("p", { class: "empty" }, "No result yet.") : json(job.result),
      h("h2", {}, "History"),
      table(
        "History of transitions",
        [
          { label: "When", cell: (e) => timeEl(e.at) },
          { label: "From", cell: (e) => e.from_status || "—" },
          { label: "To", cell: (e) => statusBadge(e.to_status) },
          { label: "By", cell: actorCell },
          { label: "Detail", cell: (e) => detailCell(e.detail) },
        ],
        events,
        { empty: "No transitions recorded." },
      ),
      h("h2", { id: "children-heading" }, "Children"),
      childList,
    );
    renderChildren();
  }

  function renderChildren() {
    childList.setAttribute("aria-busy", "false");
    const more = async (event) => {
      const button = event.currentTarget;
      button.disabled = true;
      try {
        const answer = await api("GET", `/v1/jobs${query({ parent_id: jobId, limit: CHILDREN_PAGE, cursor: childCursor })}`);
        childPages += 1;
        children = [...children, ...answer.items];
        childCursor = answer.next_cursor;
        // What is drawn now, so the next poll redraws (and moves the focus) only on a change.
        shown = drawn();
        renderChildren();
        announce(`${children.length} children shown.`);
        // The button was redrawn: keep the keyboard where it was (on it, or on the last link).
        (childList.querySelector("button.more-children") || childList.querySelector("tbody tr:last-child a"))?.focus();
      } catch (error) {
        button.disabled = false;
        alert.show(errorText(error));
        readFailed = true;
      }
    };
    replace(
      childList,
      table(
        "Child jobs",
        [
          { label: "Job", cell: (c) => h("a", { href: `#/jobs/${c.id}` }, c.name || c.id.slice(0, 8)) },
          { label: "Type", cell: (c) => c.type },
          { label: "Status", cell: (c) => statusBadge(c.status) },
          { label: "Progress", cell: (c) => h("progress", { max: 100, value: c.progress, "aria-label": `Progress of ${c.name || c.id}` }, `${c.progress}%`) },
          { label: "Created", cell: (c) => timeEl(c.created_at) },
        ],
        children,
        { empty: "This job has no children." },
      ),
      children.length
        ? h("p", { class: "help" }, `${children.length} ${children.length === 1 ? "child" : "children"} shown${childCursor ? "; there are more." : "."}`)
        : null,
      childCursor ? h("button", { type: "button", class: "secondary more-children", onclick: more }, "More children") : null,
    );
  }

  load();
  // Live while the job or a child shown can still change; then polled no more.
  poll(() => {
    const settled = job && FINISHED.has(job.status) && children.every((c) => FINISHED.has(c.status));
    if (!stopped && !settled && !loading) load();
  }, 2000, cleanups);

  return h("section", {}, h("p", { class: "crumbs" }, h("a", { href: "#/jobs" }, "← Jobs")), heading, alert, body);
}
