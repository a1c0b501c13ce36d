import { api } from "../api.js";
import { alertBox, announce, errorText, h, json, pageHeader, poll, replace, statusBadge, table, timeEl } from "../ui.js";

const CANCELLABLE = new Set(["scheduled", "waiting", "queued", "running"]);
const RETRYABLE = new Set(["failed", "cancelled"]);
const FINISHED = new Set(["succeeded", "failed", "cancelled"]);

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

export function jobPage(cleanups, jobId) {
  const alert = alertBox();
  const body = h("div", { "aria-busy": "true" }, h("p", {}, "Loading…"));
  const heading = pageHeader(`Job ${jobId.slice(0, 8)}`);
  let job = null;
  let stopped = false;
  let shown = "";

  async function act(verb) {
    alert.show("");
    try {
      await api("POST", `/v1/jobs/${jobId}/${verb}`);
      announce(verb === "cancel" ? "Cancel requested." : "Job queued again.");
      await load();
    } catch (error) {
      alert.show(errorText(error));
    }
  }

  async function load() {
    try {
      const [current, events] = await Promise.all([
        api("GET", `/v1/jobs/${jobId}`),
        api("GET", `/v1/jobs/${jobId}/events`),
      ]);
      job = current;
      // Unchanged data is not redrawn, so polling never moves the keyboard focus.
      const seen = JSON.stringify([current, events]);
      if (seen !== shown) {
        shown = seen;
        render(events);
      }
    } catch (error) {
      alert.show(error.status === 404 ? "This job does not exist, or it is not yours." : errorText(error));
      if (error.status === 404) stopped = true;
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
          { label: "By", cell: (e) => e.actor },
          { label: "Detail", cell: (e) => (Object.keys(e.detail || {}).length ? h("code", { class: "detail" }, JSON.stringify(e.detail)) : "—") },
        ],
        events,
        { empty: "No transitions recorded." },
      ),
    );
  }

  load();
  // Live while the job can still change; a finished job is polled no more.
  poll(() => {
    if (!stopped && (!job || !FINISHED.has(job.status))) load();
  }, 2000, cleanups);

  return h("section", {}, h("p", { class: "crumbs" }, h("a", { href: "#/jobs" }, "← Jobs")), heading, alert, body);
}
