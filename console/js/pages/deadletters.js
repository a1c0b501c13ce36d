import { api } from "../api.js";
import { alertBox, errorText, field, h, pageHeader, replace, select, timeEl } from "../ui.js";
import { PRIORITIES } from "./jobs.js";

// A background redrive's progress: checked every second; a failed check is retried after
// twice the last wait, at most this.
const POLL_MS = 1000;
const MAX_RETRY_MS = 16000;

export function deadLettersPage(cleanups) {
  const alert = alertBox();
  const priority = field("Priority", select(PRIORITIES, "normal"));
  const list = h("div", { "aria-busy": "true" });
  const outcome = h("div", { class: "outcome", role: "status", "aria-live": "polite" });
  let letters = [];
  let selected = new Set();
  let gone = false;
  cleanups.push(() => {
    gone = true;
  });

  const dryRun = h("button", { type: "button", class: "secondary", onclick: () => redrive(true) }, "Dry run");
  const redriveButton = h("button", { type: "button", onclick: () => redrive(false) }, "Redrive selected");
  const redriveAll = h("button", { type: "button", class: "secondary", onclick: () => redrive(false, true) }, "Redrive all");

  function updateButtons() {
    redriveButton.disabled = selected.size === 0;
    redriveButton.textContent = selected.size ? `Redrive selected (${selected.size})` : "Redrive selected";
    redriveAll.disabled = letters.length === 0;
    dryRun.disabled = letters.length === 0;
  }

  async function load() {
    list.setAttribute("aria-busy", "true");
    try {
      const peek = await api("GET", `/v1/dlq/${priority.control.value}?limit=200`);
      letters = peek.items;
      selected = new Set([...selected].filter((id) => letters.some((l) => l.job_id === id)));
      render(peek);
      alert.show("");
    } catch (error) {
      alert.show(errorText(error));
    } finally {
      list.setAttribute("aria-busy", "false");
      updateButtons();
    }
  }

  function render(peek) {
    // A background redrive hides the messages it passed over until it ends.
    const hidden = peek.redrive_task_id
      ? h("p", { class: "note" }, "A background redrive is running: the messages it has passed over are hidden until it ends.")
      : null;
    // Failed jobs whose message is gone (past the DLQ's retention, purged): no redrive here
    // finds them, and with an empty queue nothing else would say they exist.
    const missing = (peek.failed_without_message || []).length;
    const unreachable = missing
      ? h(
          "p",
          { class: "note" },
          `${missing} failed job${missing === 1 ? " has" : "s have"} no message here (retry ${missing === 1 ? "it from its page" : "them from their pages"}).`,
        )
      : null;
    if (!letters.length) {
      const where = `the ${priority.control.value} queue`;
      replace(list, hidden, h("p", { class: "empty" }, hidden ? `No other dead letters in ${where}.` : `No dead letters in ${where}.`), unreachable);
      return;
    }
    const all = h("input", {
      type: "checkbox",
      checked: selected.size === letters.length,
      onchange: (event) => {
        selected = event.target.checked ? new Set(letters.map((l) => l.job_id)) : new Set();
        render(peek);
        updateButtons();
      },
    });
    replace(
      list,
      hidden || (peek.complete ? null : h("p", { class: "note" }, "Not the whole queue: it holds more messages than shown (beyond the limit, or held for a moment by a redrive or another peek).")),
      // Above the table, not in its header: narrow screens show rows as cards without one.
      field("Select all", all),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "data" },
          h("caption", { class: "visually-hidden" }, "Dead letters"),
          h(
            "thead",
            {},
            h("tr", {}, h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Selected")), ["Job", "Type", "Attempts", "Redrives", "Last error", "Dead-lettered"].map((c) => h("th", { scope: "col" }, c))),
          ),
          h(
            "tbody",
            {},
            letters.map((letter) =>
              h(
                "tr",
                {},
                h(
                  "td",
                  { "data-label": "Select" },
                  h("input", {
                    type: "checkbox",
                    "aria-label": `Select job ${letter.job_id}`,
                    checked: selected.has(letter.job_id),
                    onchange: (event) => {
                      if (event.target.checked) selected.add(letter.job_id);
                      else selected.delete(letter.job_id);
                      updateButtons();
                    },
                  }),
                ),
                h("td", { "data-label": "Job" }, letter.job_id ? h("a", { href: `#/jobs/${letter.job_id}` }, letter.job_id.slice(0, 8)) : "—"),
                h("td", { "data-label": "Type" }, letter.type || "—"),
                h("td", { "data-label": "Attempts" }, letter.attempts ?? "—"),
                h("td", { "data-label": "Redrives" }, letter.redrive_count ?? "—"),
                h("td", { "data-label": "Last error", class: "wrap" }, letter.last_error || letter.problem || letter.failure_reason || "—"),
                h("td", { "data-label": "Dead-lettered" }, timeEl(letter.dead_lettered_at)),
              ),
            ),
          ),
        ),
      ),
      unreachable,
    );
  }

  function describe(result, dry) {
    const n = (result.redriven || []).length;
    const verb = dry ? "would be redriven" : "redriven";
    const parts = [`${n} job${n === 1 ? "" : "s"} ${verb}`];
    if ((result.skipped || []).length) parts.push(`${result.skipped.length} skipped`);
    if ((result.orphans || []).length) parts.push(`${result.orphans.length} without a job`);
    return `${parts.join(", ")}.`;
  }

  async function follow(task) {
    // A background redrive: poll its task until it finishes. The redrive goes on whatever
    // happens to a check, so a check that fails for a moment (network, 429, 5xx) is tried
    // again, a little later each time, and the page says so; a refusal (4xx) ends the watch.
    const bar = h("progress", { "aria-label": "Redrive progress" });
    const text = h("span");
    const trouble = h("span");
    replace(outcome, h("label", {}, text), bar, h("p", { class: "help" }, trouble));
    let wait = POLL_MS;
    for (;;) {
      text.textContent = `Redriving: ${task.redriven} redriven so far (${task.status}).`;
      if (task.finished_at || gone) break;
      await new Promise((resolve) => setTimeout(resolve, wait));
      if (gone) return; // the page was left (or the user signed out) during the wait
      try {
        task = await api("GET", `/v1/dlq/redrives/${task.id}`);
        wait = POLL_MS;
        trouble.textContent = "";
      } catch (error) {
        if (!(error.status === 0 || error.status === 429 || error.status >= 500)) throw error;
        wait = Math.min(wait * 2, MAX_RETRY_MS);
        trouble.textContent = `The last progress check failed (${errorText(error)}); checking again in ${wait / 1000} s.`;
      }
    }
    bar.max = 1;
    bar.value = 1;
    text.textContent = task.error ? `Redrive stopped: ${task.error}` : `Redrive finished: ${task.redriven} redriven.`;
  }

  async function redrive(dry, everything = false) {
    alert.show("");
    const ids = everything ? null : [...selected];
    const body = { dry_run: dry };
    if (ids && ids.length) body.job_ids = ids;
    if (everything && !dry) {
      body.background = true;
      body.limit = 100000;
    }
    for (const b of [dryRun, redriveButton, redriveAll]) b.disabled = true;
    replace(outcome, h("label", {}, dry ? "Checking…" : "Redriving…"), h("progress", { "aria-label": "Redrive progress" }));
    try {
      const answer = await api("POST", `/v1/dlq/${priority.control.value}/redrive`, body);
      const background = answer.status && answer.id && !Array.isArray(answer.redriven);
      if (background) await follow(answer);
      if (!dry) {
        // The list first, then the outcome: what is announced matches what is shown.
        selected = new Set();
        await load();
      }
      if (!background) replace(outcome, h("p", {}, dry ? "Dry run: " : "Done: ", describe(answer, dry)));
    } catch (error) {
      replace(outcome);
      alert.show(errorText(error));
    } finally {
      updateButtons();
    }
  }

  priority.control.addEventListener("change", () => {
    selected = new Set();
    replace(outcome);
    load();
  });
  load();
  return h(
    "section",
    {},
    pageHeader("Dead letters", h("button", { type: "button", class: "secondary", onclick: load }, "Refresh")),
    alert,
    h("div", { class: "toolbar" }, priority, h("div", { class: "actions" }, dryRun, redriveButton, redriveAll)),
    outcome,
    list,
  );
}
