import { api, query, session } from "../api.js";
import { alertBox, errorText, field, h, noticeBox, pageHeader, replace, select, table, timeEl } from "../ui.js";

const ROLES = ["user", "admin", "worker"];

export function usersPage() {
  const loadAlert = alertBox();
  const alert = alertBox({ dismissible: true });
  const notice = noticeBox();
  const list = h("div", { "aria-busy": "true" });
  const pager = h("div", { class: "pager" });
  let cursors = [null];
  let users = [];
  const me = session().user;

  async function change(user, what, body) {
    alert.show("");
    notice.show("");
    try {
      if (what === "role") await api("PUT", `/v1/users/${user.id}/role`, body);
      else if (what === "delete") await api("DELETE", `/v1/users/${user.id}`);
      else await api("PATCH", `/v1/users/${user.id}`, body);
      notice.show(
        what === "role" ? `${user.email} is now ${body.role}.`
        : what === "delete" ? `${user.email} deleted.`
        : `${user.email} ${body.disabled ? "disabled: it can no longer sign in" : "enabled"}.`,
      );
    } catch (error) {
      alert.show(`${user.email} was not changed: ${errorText(error)}`);
      // The list must not show what was asked for as if it were done (a role select left on
      // the new role): drawn again as last read, then read again if the API answered (an
      // account deleted meanwhile goes); unreachable, a second error would say the same.
      draw();
      if (error.status === 0) return;
    }
    await load();
  }

  function roleCell(user) {
    if (user.id === me.id) return user.role;
    const control = select(ROLES, user.role);
    control.setAttribute("aria-label", `Role of ${user.email}`);
    control.addEventListener("change", () => change(user, "role", { role: control.value }));
    return control;
  }

  function actions(user) {
    if (user.id === me.id) return h("span", { class: "help" }, "you");
    return h(
      "div",
      { class: "row-actions" },
      h("button", { type: "button", class: "secondary", "aria-label": `${user.disabled ? "Enable" : "Disable"} ${user.email}`, onclick: () => change(user, "patch", { disabled: !user.disabled }) }, user.disabled ? "Enable" : "Disable"),
      h(
        "button",
        {
          type: "button",
          class: "danger",
          "aria-label": `Delete ${user.email}`,
          onclick: () => {
            if (window.confirm(`Delete ${user.email}? Their jobs stay.`)) change(user, "delete");
          },
        },
        "Delete",
      ),
    );
  }

  function draw() {
    replace(
      list,
      table(
        "Users",
        [
          { label: "Email", cell: (u) => u.email },
          { label: "Role", cell: roleCell },
          { label: "State", cell: (u) => (u.disabled ? "disabled" : "active") },
          { label: "Created", cell: (u) => timeEl(u.created_at) },
          { label: "Actions", cell: actions },
        ],
        users,
      ),
    );
  }

  // A load's error goes once a load succeeds (Refresh, paging, after a change); a change's
  // error stays until the next change, so the reload that follows a failed change keeps it.
  async function load() {
    list.setAttribute("aria-busy", "true");
    try {
      const page = await api("GET", `/v1/users${query({ limit: 50, cursor: cursors[cursors.length - 1] })}`);
      loadAlert.show("");
      users = page.items;
      draw();
      replace(
        pager,
        h("button", { type: "button", class: "secondary", disabled: cursors.length < 2, onclick: () => { cursors.pop(); load(); } }, "Previous page"),
        h("button", { type: "button", class: "secondary", disabled: !page.next_cursor, onclick: () => { cursors.push(page.next_cursor); load(); } }, "Next page"),
      );
    } catch (error) {
      loadAlert.show(errorText(error));
    } finally {
      list.setAttribute("aria-busy", "false");
    }
  }

  const email = field("Email", h("input", { type: "email", autocomplete: "off" }), { required: true });
  const password = field("Password", h("input", { type: "password", autocomplete: "new-password", minlength: 10 }), { required: true, help: "At least 10 characters." });
  const role = field("Role", select(ROLES, "user"));
  const formAlert = alertBox();
  const create = h(
    "form",
    {
      class: "card inline-form",
      "aria-labelledby": "new-user-title",
      onsubmit: async (event) => {
        event.preventDefault();
        formAlert.show("");
        notice.show("");
        for (const f of [email, password]) f.setError("");
        try {
          const added = await api("POST", "/v1/users", { email: email.control.value.trim(), password: password.control.value, role: role.control.value });
          notice.show(`${added.email} added as ${added.role}.`);
          event.target.reset();
          await load();
        } catch (error) {
          if (error.status === 400 && Array.isArray(error.details)) {
            for (const d of error.details) {
              const name = (d.loc || []).filter((p) => p !== "body")[0];
              ({ email, password })[name]?.setError(d.msg);
            }
          }
          formAlert.show(errorText(error));
        }
      },
    },
    h("h2", { id: "new-user-title" }, "Add a user"),
    formAlert,
    h("div", { class: "form-row" }, email, password, role),
    h("button", { type: "submit" }, "Add user"),
  );

  load();
  return h("section", {}, pageHeader("Users", h("button", { type: "button", class: "secondary", onclick: load }, "Refresh")), loadAlert, alert, notice, list, pager, create);
}
