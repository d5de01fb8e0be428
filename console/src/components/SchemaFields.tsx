// The inputs of a form made from a JSON schema (see schemaForm.ts): one labelled control per field, its
// description and its error tied to it (aria-describedby), nested objects as fieldsets.
import { enumValues, type Field, type Raw } from "./schemaForm";

function domId(path: string): string {
  return `arg-${path.replace(/[^A-Za-z0-9_-]/g, "_")}`;
}

/** The field's description and the rules the schema puts on it, in words. */
function hint(field: Field): string {
  const rules = [
    field.schema.minimum != null && `≥ ${field.schema.minimum}`,
    field.schema.exclusiveMinimum != null && `> ${field.schema.exclusiveMinimum}`,
    field.schema.maximum != null && `≤ ${field.schema.maximum}`,
    field.schema.exclusiveMaximum != null && `< ${field.schema.exclusiveMaximum}`,
    field.kind === "list" && "one per line",
    field.kind === "json" && "JSON",
  ].filter(Boolean);
  return [field.description, rules.join(", ")].filter(Boolean).join(" · ");
}

function Hint({ field, error }: { field: Field; error?: string }) {
  const id = domId(field.path);
  const text = hint(field);
  return (
    <>
      {text && (
        <small id={`${id}-hint`} className="muted">
          {text}
        </small>
      )}
      {error && (
        <small id={`${id}-error`} className="field-error">
          {field.name} {error}
        </small>
      )}
    </>
  );
}

function describedBy(field: Field, error?: string): string | undefined {
  const id = domId(field.path);
  const ids = [hint(field) && `${id}-hint`, error && `${id}-error`].filter(Boolean);
  return ids.length ? ids.join(" ") : undefined;
}

export function SchemaFields({
  fields,
  raw,
  errors,
  onChange,
}: {
  fields: Field[];
  raw: Raw;
  errors: Record<string, string>;
  onChange: (path: string, value: string | boolean) => void;
}) {
  return (
    <>
      {fields.map((field) => {
        const id = domId(field.path);
        const error = errors[field.path];
        const common = {
          id,
          "aria-invalid": error ? true : undefined,
          "aria-describedby": describedBy(field, error),
        };
        const label = (
          <label htmlFor={id}>
            <span className="mono">{field.name}</span>
            {field.required && <span aria-hidden="true"> *</span>}
            {field.title.toLowerCase() !== field.name.replaceAll("_", " ").toLowerCase() && <span className="muted"> {field.title}</span>}
          </label>
        );
        if (field.kind === "object") {
          const open = raw[`${field.path}?`] === true;
          return (
            <fieldset key={field.path} className="schema-object">
              <legend className="mono">{field.name}</legend>
              {!field.required && (
                <label className="check">
                  <input type="checkbox" checked={open} onChange={(e) => onChange(`${field.path}?`, e.target.checked)} />
                  Give {field.name}
                </label>
              )}
              {field.description && <small className="muted">{field.description}</small>}
              {error && <small className="field-error">{field.name} {error}</small>}
              {open && <SchemaFields fields={field.fields ?? []} raw={raw} errors={errors} onChange={onChange} />}
            </fieldset>
          );
        }
        if (field.kind === "boolean") {
          return (
            <div key={field.path} className="schema-field">
              <label className="check" htmlFor={id}>
                <input type="checkbox" {...common} checked={raw[field.path] === true} onChange={(e) => onChange(field.path, e.target.checked)} />
                <span className="mono">{field.name}</span>
              </label>
              <Hint field={field} error={error} />
            </div>
          );
        }
        const text = String(raw[field.path] ?? "");
        let control;
        if (field.kind === "enum") {
          control = (
            <select {...common} value={text} onChange={(e) => onChange(field.path, e.target.value)}>
              {!field.required && field.schema.default == null && <option value="">(none)</option>}
              {enumValues(field).map((v) => (
                <option key={String(v)} value={String(v)}>
                  {String(v)}
                </option>
              ))}
            </select>
          );
        } else if (field.kind === "list" || field.kind === "json") {
          control = <textarea {...common} rows={field.kind === "json" ? 4 : 3} value={text} onChange={(e) => onChange(field.path, e.target.value)} />;
        } else {
          const numeric = field.kind === "integer" || field.kind === "number";
          control = (
            <input
              {...common}
              type="text"
              inputMode={field.kind === "integer" ? "numeric" : numeric ? "decimal" : undefined}
              value={text}
              placeholder={field.required ? "" : "default"}
              onChange={(e) => onChange(field.path, e.target.value)}
            />
          );
        }
        return (
          <div key={field.path} className="schema-field">
            {label}
            {control}
            <Hint field={field} error={error} />
          </div>
        );
      })}
    </>
  );
}
