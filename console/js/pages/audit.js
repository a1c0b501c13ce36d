import { api, query } from "../api.js";
import { alertBox, detailCell, errorText, field, h, pageHeader, replace, table, timeEl } from "../ui.js";

export function auditPage() {
  const alert = alertBox();
  const list = h("div", { "aria-busy": "true" });
  const pager = h("div", { class: "pager" });
  const action = field("Action", h("input", { type: "text", autocomplete: "off", placeholder: "e.g. auth.login_failed" }));
  let cursors = [null];
  // The filter that produced the page shown: paging keeps it, whatever is typed meanwhile.
  let applied = "";

  async function load() {
    try {
      const page = await api("GET", `/v1/audit${query({ limit: 50, action: applied, cursor: cursors[cursors.length - 1] })}`);
      replace(
        list,
        table(
          "Audit log",
          [
            { label: "When", cell: (e) => timeEl(e.at) },
            { label: "Action", cell: (e) => h("code", {}, e.action) },
            // The e-mail as the account has it now; its id when the account is gone.
            { label: "Actor", cell: (e) => (e.actor_email ? h("span", { title: e.actor_id }, e.actor_email) : e.actor_id ? h("code", { title: e.actor_id }, e.actor_id.slice(0, 8)) : "—") },
            { label: "Target", cell: (e) => [e.target_type, e.target_id].filter(Boolean).join(" ") || "—" },
            { label: "Detail", cell: (e) => detailCell(e.detail) },
          ],
          page.items,
          { empty: "No audit events." },
        ),
      );
      replace(
        pager,
        h("button", { type: "button", class: "secondary", disabled: cursors.length < 2, onclick: () => { cursors.pop(); load(); } }, "Newer"),
        h("button", { type: "button", class: "secondary", disabled: !page.next_cursor, onclick: () => { cursors.push(page.next_cursor); load(); } }, "Older"),
      );
      list.setAttribute("aria-busy", "false");
      alert.show("");
    } catch (error) {
      alert.show(errorText(error));
    }
  }

  const filter = h(
    "form",
    {
      class: "toolbar start",
      "aria-label": "Filter the audit log",
      onsubmit: (event) => {
        event.preventDefault();
        applied = action.control.value.trim();
        cursors = [null];
        load();
      },
    },
    action,
    h("button", { type: "submit" }, "Filter"),
  );
  load();
  return h("section", {}, pageHeader("Audit"), alert, filter, list, pager);
}
