import { api } from "../api.js";
import { FieldError, schemaForm } from "../schemaform.js";
import { alertBox, announce, errorText, field, h, pageHeader, replace, select } from "../ui.js";
import { PRIORITIES } from "./jobs.js";

// Where an API field error belongs: a payload field, one of the job's own fields, or the
// form as a whole. Payload errors come as ["seconds"]; body errors as ["body", "priority"].
// The field an error belongs to, and where inside it (a header's name, an item's index):
// "Input should be a valid string" under Headers must say which header.
function target(loc, payloadFields, jobFields) {
  const parts = (loc || []).filter((p) => p !== "body");
  if (parts[0] === "payload") parts.shift();
  // [] is the payload as a whole: the form's JSON box for it where it has one.
  const where = payloadFields.get(parts[0] ?? "") || jobFields.get(parts[0]) || null;
  return { where, inside: parts.slice(1).join(".") };
}

const FIRST_RETRY_MS = 2000;
const MAX_RETRY_MS = 16000;

export function newJobPage(cleanups) {
  const alert = alertBox();
  const typeSelect = select([["", "Choose a type"]]);
  const type = field("Type", typeSelect, { required: true });
  const description = h("p", { class: "help type-description", "aria-live": "polite" });
  const payloadHolder = h("div");
  const priority = field("Priority", select([["", "The type's default"], ...PRIORITIES.map((p) => [p, p])]));
  const name = field("Name", h("input", { type: "text", name: "name", maxlength: 200, autocomplete: "off" }));
  const tags = field("Tags", h("input", { type: "text", name: "tags", autocomplete: "off" }), { help: "Separate tags with commas." });
  const jobFields = new Map([["type", type], ["priority", priority], ["name", name], ["tags", tags]]);
  let types = [];
  let form = null;

  function choose() {
    const chosen = types.find((t) => t.name === typeSelect.value);
    form = chosen ? schemaForm(chosen.payload_schema) : null;
    description.textContent = chosen ? chosen.description : "";
    replace(payloadHolder, form ? form.element : null);
    if (chosen) priority.control.options[0].textContent = `The type's default (${chosen.defaults.priority || "normal"})`;
  }
  typeSelect.addEventListener("change", choose);

  // Until the types arrive the Type select offers none: its own alert says why, and they are
  // asked for again (after a wait that doubles up to MAX_RETRY_MS, or at once with "Try
  // again") until they come or the page goes.
  const typesAlert = alertBox({ action: { label: "Try again", onclick: () => loadTypes() } });
  let wait = FIRST_RETRY_MS;
  let timer = null;
  let loading = false;
  let gone = false;
  cleanups.push(() => {
    gone = true;
    clearTimeout(timer);
  });
  async function loadTypes() {
    if (loading || gone) return;
    clearTimeout(timer);
    loading = true;
    try {
      types = await api("GET", "/v1/job-types");
      for (const t of types) typeSelect.append(h("option", { value: t.name }, t.name));
      typesAlert.show("");
    } catch (error) {
      if (gone) return;
      typesAlert.show(`The job types could not be read (${errorText(error)}): trying again in ${Math.round(wait / 1000)} s.`);
      timer = setTimeout(loadTypes, wait);
      wait = Math.min(wait * 2, MAX_RETRY_MS);
    } finally {
      loading = false;
    }
  }
  loadTypes();

  function clearErrors() {
    alert.show("");
    for (const f of [...jobFields.values(), ...(form ? form.fields.values() : [])]) f.setError("");
  }

  const submit = h("button", { type: "submit" }, "Create");
  const element = h(
    "form",
    {
      class: "card new-job",
      "aria-labelledby": "new-job-title",
      novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        clearErrors();
        if (!form) {
          type.setError(types.length ? "Choose a job type." : "No job types yet: they could not be read.");
          typeSelect.focus();
          return;
        }
        let body;
        try {
          body = { type: typeSelect.value, payload: form.read() };
        } catch (error) {
          if (!(error instanceof FieldError)) throw error;
          form.fields.get(error.field).setError(error.message);
          form.fields.get(error.field).control.focus();
          return;
        }
        if (priority.control.value) body.priority = priority.control.value;
        if (name.control.value.trim()) body.name = name.control.value.trim();
        const tagList = tags.control.value.split(",").map((t) => t.trim()).filter(Boolean);
        if (tagList.length) body.tags = tagList;
        submit.disabled = true;
        try {
          const job = await api("POST", "/v1/jobs", body);
          announce("Job created.");
          location.hash = `#/jobs/${job.id}`;
        } catch (error) {
          const unplaced = [];
          if (error.status === 400 && Array.isArray(error.details)) {
            for (const detail of error.details) {
              const { where, inside } = target(detail.loc, form.fields, jobFields);
              const message = inside ? `${inside}: ${detail.msg}` : detail.msg;
              if (where) where.setError(message);
              else unplaced.push(message);
            }
            const first = element.querySelector("[aria-invalid=true]");
            if (first) first.focus();
          }
          alert.show(error.status === 400 ? ["The job was not created: fix the fields marked below.", ...unplaced].join(" ") : errorText(error));
        } finally {
          submit.disabled = false;
        }
      },
    },
    h("h2", { id: "new-job-title", class: "visually-hidden" }, "New job form"),
    alert,
    typesAlert,
    type,
    description,
    payloadHolder,
    h("fieldset", { class: "options" }, h("legend", {}, "Options"), priority, name, tags),
    h("div", { class: "form-actions" }, submit, h("a", { href: "#/jobs" }, "Cancel")),
  );
  return h("section", {}, h("p", { class: "crumbs" }, h("a", { href: "#/jobs" }, "← Jobs")), pageHeader("New job"), element);
}
