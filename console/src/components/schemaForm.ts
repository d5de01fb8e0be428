// A form from a JSON schema (a recipe's Config, as pydantic writes it): what each field is, its starting
// value, and turning what was typed into arguments, with the schema's rules checked before sending.
export type Schema = Record<string, any>;

export type FieldKind = "string" | "integer" | "number" | "boolean" | "enum" | "object" | "list" | "json";

export interface Field {
  name: string;
  /** "a.b": where the field's raw value and error live. */
  path: string;
  kind: FieldKind;
  schema: Schema;
  required: boolean;
  nullable: boolean;
  title: string;
  description?: string;
  /** Nested fields (kind "object"). */
  fields?: Field[];
}

/** What the form holds: the text typed per path, checkboxes as booleans, and "path?" for optional objects. */
export type Raw = Record<string, string | boolean>;

function resolve(schema: Schema, root: Schema): Schema {
  let current = schema;
  for (let hops = 0; current?.$ref && hops < 20; hops++) {
    const name = String(current.$ref).replace(/^#\/(\$defs|definitions)\//, "");
    const target = root.$defs?.[name] ?? root.definitions?.[name];
    if (!target) break;
    const { $ref: _ref, ...rest } = current;
    current = { ...target, ...rest };
  }
  return current;
}

function kindOf(schema: Schema): FieldKind {
  if (Array.isArray(schema.enum) || "const" in schema) return "enum";
  switch (schema.type) {
    case "string":
    case "integer":
    case "number":
    case "boolean":
      return schema.type;
    case "object":
      return schema.properties && !schema.additionalProperties ? "object" : "json";
    case "array":
      return ["string", "integer", "number"].includes(schema.items?.type) ? "list" : "json";
    default:
      return "json";
  }
}

/** The fields of an object schema, nested objects included. */
export function fieldsOf(schema: Schema, root: Schema = schema, prefix = ""): Field[] {
  const object = resolve(schema, root);
  const required = new Set<string>(object.required ?? []);
  return Object.entries<Schema>(object.properties ?? {}).map(([name, raw]) => {
    let property = resolve(raw, root);
    let nullable = false;
    const options = property.anyOf ?? property.oneOf;
    if (Array.isArray(options)) {
      const rest = options.filter((o: Schema) => o.type !== "null");
      nullable = rest.length < options.length;
      if (rest.length === 1) {
        const { anyOf: _a, oneOf: _o, ...outer } = property;
        property = { ...resolve(rest[0], root), ...outer };
      }
    } else if (Array.isArray(property.type) && property.type.includes("null")) {
      const types = property.type.filter((t: string) => t !== "null");
      nullable = true;
      property = { ...property, type: types.length === 1 ? types[0] : types };
    }
    const path = prefix ? `${prefix}.${name}` : name;
    const kind = Array.isArray(options) && !property.type && !property.enum ? "json" : kindOf(property);
    return {
      name,
      path,
      kind,
      schema: property,
      required: required.has(name),
      nullable,
      title: property.title ?? name,
      description: property.description,
      fields: kind === "object" ? fieldsOf(property, root, path) : undefined,
    };
  });
}

/** The form's starting values: the schema's defaults. */
export function initialRaw(fields: Field[], raw: Raw = {}): Raw {
  for (const field of fields) {
    const value = field.schema.default;
    switch (field.kind) {
      case "boolean":
        raw[field.path] = value === true;
        break;
      case "object":
        // An optional object is left out unless its default is one (or the user opens it).
        raw[`${field.path}?`] = field.required || value != null;
        initialRaw(field.fields ?? [], raw);
        if (value && typeof value === "object") {
          for (const sub of field.fields ?? []) {
            if (sub.kind !== "object" && sub.name in value && sub.schema.default === undefined) {
              raw[sub.path] = sub.kind === "boolean" ? value[sub.name] === true : String(value[sub.name] ?? "");
            }
          }
        }
        break;
      case "list":
        raw[field.path] = Array.isArray(value) ? value.join("\n") : "";
        break;
      case "json":
        raw[field.path] = value === undefined || value === null ? "" : JSON.stringify(value, null, 2);
        break;
      case "enum":
        raw[field.path] = value != null ? String(value) : field.required ? String(enumValues(field)[0] ?? "") : "";
        break;
      default:
        raw[field.path] = value != null ? String(value) : "";
    }
  }
  return raw;
}

export function enumValues(field: Field): unknown[] {
  return "const" in field.schema ? [field.schema.const] : (field.schema.enum ?? []);
}

function numberRules(schema: Schema, value: number): string | null {
  if (schema.minimum != null && value < schema.minimum) return `must be at least ${schema.minimum}`;
  if (schema.maximum != null && value > schema.maximum) return `must be at most ${schema.maximum}`;
  if (schema.exclusiveMinimum != null && value <= schema.exclusiveMinimum) return `must be more than ${schema.exclusiveMinimum}`;
  if (schema.exclusiveMaximum != null && value >= schema.exclusiveMaximum) return `must be less than ${schema.exclusiveMaximum}`;
  if (schema.multipleOf != null && Math.abs(value / schema.multipleOf - Math.round(value / schema.multipleOf)) > 1e-9)
    return `must be a multiple of ${schema.multipleOf}`;
  return null;
}

function stringRules(schema: Schema, value: string): string | null {
  if (schema.minLength != null && value.length < schema.minLength) return `must have at least ${schema.minLength} characters`;
  if (schema.maxLength != null && value.length > schema.maxLength) return `must have at most ${schema.maxLength} characters`;
  if (schema.pattern != null) {
    try {
      if (!new RegExp(schema.pattern, "u").test(value)) return `must match ${schema.pattern}`;
    } catch {
      // A pattern JavaScript cannot read is left to the server.
    }
  }
  return null;
}

function scalar(kind: string, schema: Schema, text: string): { value?: unknown; error?: string } {
  if (kind === "integer" || kind === "number") {
    const value = Number(text);
    if (text.trim() === "" || Number.isNaN(value)) return { error: "must be a number" };
    if (kind === "integer" && !Number.isInteger(value)) return { error: "must be a whole number" };
    const broken = numberRules(schema, value);
    return broken ? { error: broken } : { value };
  }
  const broken = stringRules(schema, text);
  return broken ? { error: broken } : { value: text };
}

/** The arguments the form's values make, or the errors (path → message) that keep it from being sent. */
export function buildArgs(fields: Field[], raw: Raw): { args: Record<string, unknown>; errors: Record<string, string> } {
  const errors: Record<string, string> = {};
  const build = (list: Field[]): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const field of list) {
      if (field.kind === "object") {
        if (raw[`${field.path}?`]) out[field.name] = build(field.fields ?? []);
        else if (field.required) errors[field.path] = "is required";
        continue;
      }
      if (field.kind === "boolean") {
        out[field.name] = raw[field.path] === true;
        continue;
      }
      const text = String(raw[field.path] ?? "");
      if (text.trim() === "" && !(field.kind === "string" && text !== "")) {
        // Empty: the recipe's default applies; a field without one must be given.
        if (field.required) errors[field.path] = "is required";
        continue;
      }
      if (field.kind === "enum") {
        const match = enumValues(field).find((v) => String(v) === text);
        if (match === undefined) errors[field.path] = `must be one of ${enumValues(field).join(", ")}`;
        else out[field.name] = match;
      } else if (field.kind === "list") {
        const items = text.split("\n").map((line) => line.trim()).filter(Boolean);
        const values: unknown[] = [];
        for (const item of items) {
          const parsed = scalar(field.schema.items?.type ?? "string", field.schema.items ?? {}, item);
          if (parsed.error) {
            errors[field.path] = `'${item}' ${parsed.error}`;
            break;
          }
          values.push(parsed.value);
        }
        if (field.schema.minItems != null && values.length < field.schema.minItems)
          errors[field.path] ??= `needs at least ${field.schema.minItems} items`;
        if (field.schema.maxItems != null && values.length > field.schema.maxItems)
          errors[field.path] ??= `takes at most ${field.schema.maxItems} items`;
        out[field.name] = values;
      } else if (field.kind === "json") {
        try {
          out[field.name] = JSON.parse(text);
        } catch (e) {
          errors[field.path] = `is not valid JSON (${(e as Error).message})`;
        }
      } else {
        const parsed = scalar(field.kind, field.schema, text);
        if (parsed.error) errors[field.path] = parsed.error;
        else out[field.name] = parsed.value;
      }
    }
    return out;
  };
  const args = build(fields);
  return { args, errors };
}

/** The server's per-field messages (details.fields of an INVALID_INPUT error) keyed like the form's paths. */
export function serverFieldErrors(details: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  const fields = Array.isArray(details.fields) ? details.fields : [];
  for (const item of fields as { path?: unknown[]; message?: string }[]) {
    const path = (item.path ?? []).map(String).join(".");
    if (item.message) out[path || "(args)"] = out[path] ? `${out[path]}; ${item.message}` : item.message;
  }
  return out;
}
