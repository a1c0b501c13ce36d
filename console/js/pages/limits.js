import { api, query } from "../api.js";
import { alertBox, errorText, field, h, noticeBox, pageHeader, replace, table } from "../ui.js";

// A key's characters are all safe in a URL path as they are; percent-encoding ":" would
// not be decoded by every gateway (the local one passes the path on as sent).
const KEY = /^[A-Za-z0-9:._-]{1,128}$/;

function rateText(rate) {
  return rate ? `${rate.limit} per ${rate.period_seconds} s` : "—";
}

// GET /v1/limits/{key} answers the limit and its current use (running jobs, starts in the
// current window); shown as the figures it gives.
function useText(detail) {
  const use = detail && (detail.use || detail.usage || detail.current);
  if (!use || typeof use !== "object") return "—";
  return Object.entries(use)
    .filter(([, value]) => value !== null && value !== undefined)
    .map(([name, value]) => `${name.replace(/_/g, " ")}: ${typeof value === "number" ? Math.round(value * 100) / 100 : value}`)
    .join(", ");
}

export function limitsPage() {
  const alert = alertBox();
  const notice = noticeBox();
  const list = h("div", { "aria-busy": "true" });
  const pager = h("div", { class: "pager" });
  let cursors = [null];
  const key = field("Key", h("input", { type: "text", autocomplete: "off", maxlength: 128, placeholder: "customer:42" }), {
    required: true,
    help: "Letters, digits and : . _ - (owner:<user id> limits one user).",
  });
  const concurrency = field("Concurrency", h("input", { type: "number", min: 0, step: 1, inputmode: "numeric" }), { help: "At most this many jobs with the key run at once (0 holds them all). Empty: no concurrency limit." });
  const rateLimit = field("Rate limit", h("input", { type: "number", min: 1, step: 1, inputmode: "numeric" }), { help: "Jobs started per period. Empty: no rate." });
  const period = field("Period seconds", h("input", { type: "number", min: 1, step: 1, inputmode: "numeric", value: 60 }));
  const formAlert = alertBox();

  function edit(limit) {
    key.control.value = limit.key;
    concurrency.control.value = limit.concurrency ?? "";
    rateLimit.control.value = limit.rate ? limit.rate.limit : "";
    period.control.value = limit.rate ? limit.rate.period_seconds : 60;
    key.control.focus();
  }

  async function remove(limit) {
    // As deleting a user does: one click must not drop the throttling a key relies on.
    if (!window.confirm(`Delete the limit on ${limit.key}? Its jobs run without it.`)) return;
    alert.show("");
    notice.show("");
    try {
      await api("DELETE", `/v1/limits/${limit.key}`);
      notice.show(`Limit ${limit.key} deleted.`);
      await load();
    } catch (error) {
      alert.show(errorText(error));
    }
  }

  async function load() {
    try {
      list.setAttribute("aria-busy", "true");
      const page = await api("GET", `/v1/limits${query({ limit: 50, cursor: cursors[cursors.length - 1] })}`);
      const items = page.items || [];
      // The list carries each limit's use; a row without it is asked for on its own.
      const details = await Promise.all(
        items.map((l) => (l.use !== undefined ? l : api("GET", `/v1/limits/${l.key}`).catch(() => null))),
      );
      const rows = items.map((l, i) => ({ ...l, detail: details[i] }));
      replace(
        list,
        table(
          "Limits",
          [
            { label: "Key", cell: (l) => [h("code", {}, l.key), l.source === "default" ? h("span", { class: "help" }, " (environment default)") : null] },
            { label: "Concurrency", cell: (l) => l.concurrency ?? "—" },
            { label: "Rate", cell: (l) => rateText(l.rate) },
            { label: "Current use", cell: (l) => useText(l.detail || l) },
            {
              label: "Actions",
              cell: (l) =>
                h(
                  "div",
                  { class: "row-actions" },
                  h("button", { type: "button", class: "secondary", "aria-label": `Edit ${l.key}`, onclick: () => edit(l) }, "Edit"),
                  h("button", { type: "button", class: "danger", "aria-label": `Delete ${l.key}`, onclick: () => remove(l) }, "Delete"),
                ),
            },
          ],
          rows,
          { empty: cursors.length > 1 ? "No more limits." : "No limits set: no key constrains anything." },
        ),
      );
      replace(
        pager,
        h("button", { type: "button", class: "secondary", disabled: cursors.length < 2, onclick: () => { cursors.pop(); load(); } }, "Previous page"),
        h("button", { type: "button", class: "secondary", disabled: !page.next_cursor, onclick: () => { cursors.push(page.next_cursor); load(); } }, "Next page"),
      );
      list.setAttribute("aria-busy", "false");
      alert.show("");
    } catch (error) {
      alert.show(errorText(error));
    }
  }

  const form = h(
    "form",
    {
      class: "card inline-form",
      "aria-labelledby": "limit-form-title",
      novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        formAlert.show("");
        notice.show("");
        for (const f of [key, concurrency, rateLimit, period]) f.setError("");
        const name = key.control.value.trim();
        if (!KEY.test(name)) {
          key.setError("Use 1 to 128 letters, digits or : . _ -");
          key.control.focus();
          return;
        }
        const body = {
          concurrency: concurrency.control.value === "" ? null : Number(concurrency.control.value),
          rate: rateLimit.control.value === "" ? null : { limit: Number(rateLimit.control.value), period_seconds: Number(period.control.value) },
        };
        try {
          await api("PUT", `/v1/limits/${name}`, body);
          notice.show(`Limit ${name} saved.`);
          await load();
        } catch (error) {
          if (error.status === 400 && Array.isArray(error.details)) {
            for (const d of error.details) {
              const parts = (d.loc || []).filter((p) => p !== "body");
              const target = parts[0] === "concurrency" ? concurrency : parts[0] === "rate" ? (parts[1] === "period_seconds" ? period : rateLimit) : null;
              if (target) target.setError(d.msg);
            }
          }
          const marked = error.status === 400 && Array.isArray(error.details) && error.details.length;
          formAlert.show(marked ? "The limit was not saved: fix the fields marked below." : errorText(error));
        }
      },
    },
    h("h2", { id: "limit-form-title" }, "Set a limit"),
    formAlert,
    h("div", { class: "form-row" }, key, concurrency, rateLimit, period),
    h("button", { type: "submit" }, "Save limit"),
  );

  load();
  return h("section", {}, pageHeader("Limits", h("button", { type: "button", class: "secondary", onclick: load }, "Refresh")), alert, notice, list, pager, form);
}
