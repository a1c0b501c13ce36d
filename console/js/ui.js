// DOM helpers shared by the pages: element building (no innerHTML, so nothing the API
// returns is ever parsed as markup), formatting, messages.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (name === "class") {
      el.className = value;
    } else if (name in el && typeof value !== "string") {
      el[name] = value;
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

let uid = 0;
export function id(prefix = "f") {
  uid += 1;
  return `${prefix}-${uid}`;
}

// A labelled form control: the label is tied to the control, help and errors are announced
// with it (aria-describedby), and `setError` shows an error next to the field.
export function field(label, control, { help, required } = {}) {
  control.id = control.id || id();
  const errorId = `${control.id}-error`;
  const helpId = help ? `${control.id}-help` : null;
  if (required) control.required = true;
  const error = h("p", { class: "field-error", id: errorId, hidden: true });
  control.setAttribute("aria-describedby", [helpId, errorId].filter(Boolean).join(" "));
  const wrapper = h(
    "div",
    { class: control.type === "checkbox" ? "field field-check" : "field" },
    control.type === "checkbox" ? [control, h("label", { for: control.id }, label)] : [
      h("label", { for: control.id }, label, required ? h("span", { "aria-hidden": "true" }, " *") : null),
      control,
    ],
    help ? h("p", { class: "help", id: helpId }, help) : null,
    error,
  );
  wrapper.setError = (message) => {
    error.textContent = message || "";
    error.hidden = !message;
    if (message) control.setAttribute("aria-invalid", "true");
    else control.removeAttribute("aria-invalid");
  };
  wrapper.control = control;
  return wrapper;
}

export function select(options, value) {
  const el = h("select");
  for (const option of options) {
    const [optionValue, text] = Array.isArray(option) ? option : [option, option];
    el.append(h("option", { value: optionValue }, text));
  }
  if (value !== undefined) el.value = value;
  return el;
}

// An alert region for a page's errors: role=alert is announced when it fills. A dismissible
// one (an action's error, which no refresh clears) has a "Dismiss" button; one with an
// `action` ({label, onclick}: "Try again", say) has a button for it.
export function alertBox({ dismissible = false, action = null } = {}) {
  const buttons = [
    action ? h("button", { type: "button", class: "secondary", onclick: action.onclick }, action.label) : null,
    dismissible ? h("button", { type: "button", class: "secondary", onclick: () => box.show("") }, "Dismiss") : null,
  ].filter(Boolean);
  const box = h("div", { class: buttons.length ? "alert alert-dismissible" : "alert", role: "alert", hidden: true });
  const text = h("span");
  box.show = (message) => {
    text.textContent = message || "";
    box.hidden = !message;
  };
  append(box, [text, buttons]);
  return box;
}

// A page's confirmation of what an action did ("Limit customer:42 saved."), kept in view until
// the page's next action, and announced as announce() does.
export function noticeBox() {
  const box = h("p", { class: "notice", hidden: true });
  box.show = (message) => {
    box.textContent = message || "";
    box.hidden = !message;
    if (message) announce(message);
  };
  return box;
}

// An event's detail ({"attempt": 2, "reason": "…"}) as words: "attempt 2 · reason: …". A value
// that is itself an object or a list stays JSON; nothing to say is "—".
export function detailCell(detail) {
  const entries = Object.entries(detail || {});
  if (!entries.length) return "—";
  const part = ([name, value]) => {
    const label = name.replace(/_/g, " ");
    const text = value !== null && typeof value === "object" ? JSON.stringify(value) : String(value);
    return typeof value === "number" ? `${label} ${text}` : `${label}: ${text}`;
  };
  return h("span", { class: "detail" }, entries.map(part).join(" · "));
}

export function errorText(error) {
  if (!error) return "";
  if (error.status === 403) return "You are not allowed to do this.";
  return error.message || String(error);
}

export function announce(message) {
  const region = document.getElementById("announcer");
  region.textContent = "";
  // A change of text after a tick is what screen readers announce reliably.
  setTimeout(() => {
    region.textContent = message;
  }, 50);
}

export function when(value) {
  if (!value) return "—";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}

export function timeEl(value) {
  return value ? h("time", { datetime: value, title: value }, when(value)) : "—";
}

export function age(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.round(Number(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

export function json(value) {
  return h("pre", { class: "json", tabindex: "0" }, JSON.stringify(value, null, 2));
}

export function statusBadge(status) {
  return h("span", { class: `badge status-${status}` }, status);
}

// A table that turns into labelled cards on narrow screens (CSS uses data-label).
export function table(caption, columns, rows, { empty = "Nothing here." } = {}) {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "data" },
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c.label)))),
      h(
        "tbody",
        {},
        rows.map((row) =>
          h("tr", {}, columns.map((c) => h("td", { "data-label": c.label }, c.cell(row)))),
        ),
      ),
    ),
  );
}

export function pageHeader(title, ...actions) {
  return h("div", { class: "page-header" }, h("h1", { tabindex: "-1" }, title), h("div", { class: "actions" }, actions));
}

// setInterval that skips while the tab is hidden and stops with the page.
export function poll(fn, ms, cleanups) {
  const timer = setInterval(() => {
    if (!document.hidden) fn();
  }, ms);
  cleanups.push(() => clearInterval(timer));
}
