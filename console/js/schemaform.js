// Form fields from a JSON schema (what pydantic's model_json_schema gives for a payload):
// one labelled control per property, with its default, bounds and description; anything
// that is not a scalar or a list of scalars is edited as JSON.

import { field, h, select } from "./ui.js";

function resolve(schema, root) {
  let current = schema || {};
  for (let depth = 0; current.$ref && depth < 10; depth += 1) {
    const name = current.$ref.split("/").pop();
    current = { ...((root.$defs || root.definitions || {})[name] || {}), ...current, $ref: undefined };
  }
  return current;
}

// Optional[X] is anyOf [X, null] in pydantic's schemas.
function unwrap(schema, root) {
  const resolved = resolve(schema, root);
  const options = resolved.anyOf || resolved.oneOf;
  if (!options) return { schema: resolved, nullable: false };
  const rest = options.filter((o) => o.type !== "null");
  if (rest.length === 1) {
    return { schema: { ...resolve(rest[0], root), title: resolved.title, description: resolved.description, default: resolved.default }, nullable: rest.length < options.length };
  }
  return { schema: resolved, nullable: rest.length < options.length };
}

function titleOf(name, schema) {
  return schema.title || name.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());
}

function control(name, schema) {
  const kind = schema.type;
  if (Array.isArray(schema.enum)) {
    return { el: select(schema.enum.map((v) => [JSON.stringify(v), String(v)]), JSON.stringify(schema.default)), read: (el) => JSON.parse(el.value) };
  }
  if (kind === "boolean") {
    return { el: h("input", { type: "checkbox", name, checked: Boolean(schema.default) }), read: (el) => el.checked };
  }
  if (kind === "integer" || kind === "number") {
    const el = h("input", {
      type: "number",
      name,
      inputmode: kind === "integer" ? "numeric" : "decimal",
      step: kind === "integer" ? "1" : "any",
      min: schema.minimum ?? schema.exclusiveMinimum,
      max: schema.maximum ?? schema.exclusiveMaximum,
      value: schema.default ?? "",
    });
    return { el, read: (e) => (e.value === "" ? undefined : Number(e.value)) };
  }
  if (kind === "string") {
    const long = schema.format !== "uri" && ((schema.maxLength || 0) > 1000 || /body|description|message/i.test(name));
    const el = long
      ? h("textarea", { name, rows: 3, maxlength: schema.maxLength }, schema.default ?? "")
      : h("input", {
          type: schema.format === "uri" ? "url" : schema.format === "email" ? "email" : "text",
          name,
          maxlength: schema.maxLength,
          minlength: schema.minLength,
          value: schema.default ?? "",
        });
    return { el, read: (e) => (e.value === "" ? undefined : e.value) };
  }
  if (kind === "array" && schema.items && ["string", "integer", "number"].includes(schema.items.type)) {
    const el = h("input", { type: "text", name, value: (schema.default || []).join(", ") });
    const item = schema.items.type;
    return {
      el,
      help: "Separate values with commas.",
      read: (e) => (e.value.trim() === "" ? undefined : e.value.split(",").map((v) => v.trim()).filter(Boolean).map((v) => (item === "string" ? v : Number(v)))),
    };
  }
  const el = h("textarea", { name, rows: 4, class: "code" }, schema.default === undefined ? "" : JSON.stringify(schema.default, null, 2));
  return {
    el,
    help: "JSON.",
    read: (e) => {
      if (e.value.trim() === "") return undefined;
      try {
        return JSON.parse(e.value);
      } catch {
        throw new FieldError(name, "This is not valid JSON.");
      }
    },
  };
}

export class FieldError extends Error {
  constructor(name, message) {
    super(message);
    this.field = name;
  }
}

// Returns {element, fields: Map(name -> field wrapper), read()}: read() gives the payload
// or throws FieldError for a value the browser can already tell is wrong.
export function schemaForm(rootSchema) {
  const root = resolve(rootSchema, rootSchema);
  const required = new Set(root.required || []);
  const fields = new Map();
  const readers = [];
  for (const [name, raw] of Object.entries(root.properties || {})) {
    const { schema } = unwrap(raw, rootSchema);
    const made = control(name, schema);
    const wrapper = field(titleOf(name, schema), made.el, {
      help: [schema.description, made.help].filter(Boolean).join(" ") || undefined,
      required: required.has(name) && schema.type !== "boolean",
    });
    fields.set(name, wrapper);
    readers.push([name, made, wrapper]);
  }
  // A schema that requires fields it does not describe (an external type declared as
  // {"type": "object", "required": ["url"]}), or describes none while taking any, leaves no
  // control to give them in: the rest of the payload is a JSON object of its own, under the
  // key "" (the API's errors about the payload as a whole, `loc` [], go there too).
  const undescribed = [...required].filter((name) => !fields.has(name));
  let rest = null;
  if (undescribed.length || (!fields.size && root.additionalProperties !== false)) {
    const el = h("textarea", {
      name: "payload",
      rows: 4,
      class: "code",
      placeholder: JSON.stringify(Object.fromEntries(undescribed.map((name) => [name, "…"]))),
    });
    const needs = undescribed.length ? ` It must hold ${undescribed.join(", ")}.` : "";
    const wrapper = field(fields.size ? "More of the payload (JSON)" : "Payload (JSON)", el, {
      help: `A JSON object.${needs}`,
      required: undescribed.length > 0,
    });
    rest = { wrapper };
    fields.set("", wrapper);
  }
  const element = h(
    "fieldset",
    { class: "payload" },
    h("legend", {}, "Payload"),
    fields.size ? [...fields.values()] : h("p", { class: "empty" }, "This type takes no payload."),
  );
  return {
    element,
    fields,
    read() {
      let payload = {};
      if (rest && rest.wrapper.control.value.trim() !== "") {
        try {
          payload = JSON.parse(rest.wrapper.control.value);
        } catch {
          throw new FieldError("", "This is not valid JSON.");
        }
        if (payload === null || typeof payload !== "object" || Array.isArray(payload)) {
          throw new FieldError("", 'This must be a JSON object, such as {"name": "value"}.');
        }
      }
      for (const [name, made, wrapper] of readers) {
        const value = made.read(wrapper.control);
        if (value !== undefined) payload[name] = value;
      }
      return payload;
    },
  };
}
