// Run a recipe: its arguments from a form made from the recipe's JSON schema, checked against the schema's
// rules before sending; what the server still refuses comes back as its own messages, next to each field.
import { useMemo, useState, type FormEvent } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { ApiError, gql } from "../api/client";
import { useApi } from "../api/useApi";
import { SchemaFields } from "../components/SchemaFields";
import { buildArgs, fieldsOf, initialRaw, serverFieldErrors, type Field, type Raw, type Schema } from "../components/schemaForm";
import { Await, Empty, FormError } from "../components/States";
import { graphql } from "../gql";
import { allows } from "../session";

const UseCasesToRun = graphql(`
  query UseCasesToRun {
    useCases {
      key
      name
      permissions
    }
  }
`);

const Recipes = graphql(`
  query RecipesToRun($useCase: IdOrKey!) {
    customRecipes(useCase: $useCase) {
      id
      key
      name
      description
      jobKind
      global
      jsonSchema
    }
  }
`);

const Run = graphql(`
  mutation RunRecipe($input: JobInput!) {
    createJob(input: $input) {
      id
    }
  }
`);

function allPaths(fields: Field[]): string[] {
  return fields.flatMap((f) => [f.path, ...allPaths(f.fields ?? [])]);
}

/** A server message about "a.b.3" belongs to the deepest field of the form on that path. */
function onFields(fields: Field[], messages: Record<string, string>): Record<string, string> {
  const paths = allPaths(fields);
  const out: Record<string, string> = {};
  for (const [path, message] of Object.entries(messages)) {
    const owner = paths.filter((p) => path === p || path.startsWith(`${p}.`)).sort((a, b) => b.length - a.length)[0];
    if (owner) out[owner] = path === owner ? message : `${path.slice(owner.length + 1)}: ${message}`;
  }
  return out;
}

function RecipeForm({ useCase, recipe }: { useCase: string; recipe: { key?: string | null; id: string; description: string; jsonSchema: unknown } }) {
  const navigate = useNavigate();
  const schema = (recipe.jsonSchema ?? {}) as Schema;
  const fields = useMemo(() => fieldsOf(schema), [schema]);
  const [raw, setRaw] = useState<Raw>(() => initialRaw(fields));
  const [name, setName] = useState("");
  const [gpus, setGpus] = useState("0");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [message, setMessage] = useState<string | null>(null);
  const [sending, setSending] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setMessage(null);
    const built = buildArgs(fields, raw);
    const numGpus = Number(gpus);
    if (!Number.isInteger(numGpus) || numGpus < 0) built.errors["(gpus)"] = "must be a whole number, 0 or more";
    setErrors(built.errors);
    if (Object.keys(built.errors).length) {
      setMessage(`Fix the ${Object.keys(built.errors).length === 1 ? "field" : "fields"} marked below.`);
      return;
    }
    setSending(true);
    try {
      const made = await gql(Run, {
        input: { recipe: recipe.key ?? recipe.id, useCase, args: built.args, numGpus, name: name.trim() || null },
      });
      navigate(`/jobs/${made.createJob.id}`);
    } catch (e) {
      const error = e as ApiError;
      setMessage(error.message);
      setErrors(onFields(fields, serverFieldErrors(error.details ?? {})));
    } finally {
      setSending(false);
    }
  };

  return (
    <form className="card schema-form" onSubmit={submit} aria-label="Recipe arguments" noValidate>
      {(recipe.description || schema.description) && <p className="muted">{recipe.description || schema.description}</p>}
      <div className="schema-field">
        <label htmlFor="job-name">Job name</label>
        <input id="job-name" value={name} onChange={(e) => setName(e.target.value)} placeholder="from the recipe" />
      </div>
      <div className="schema-field">
        <label htmlFor="job-gpus">GPUs</label>
        <input
          id="job-gpus"
          inputMode="numeric"
          value={gpus}
          onChange={(e) => setGpus(e.target.value)}
          aria-invalid={errors["(gpus)"] ? true : undefined}
          aria-describedby={errors["(gpus)"] ? "job-gpus-error" : undefined}
        />
        {errors["(gpus)"] && (
          <small id="job-gpus-error" className="field-error">
            GPUs {errors["(gpus)"]}
          </small>
        )}
      </div>
      {fields.length === 0 ? (
        <p className="muted">This recipe takes no arguments.</p>
      ) : (
        <SchemaFields fields={fields} raw={raw} errors={errors} onChange={(path, value) => setRaw((r) => ({ ...r, [path]: value }))} />
      )}
      {errors["(args)"] && <p className="form-error">{errors["(args)"]}</p>}
      <FormError error={message} />
      <div className="actions">
        <button type="submit" className="primary" disabled={sending}>
          {sending ? "Starting…" : "Run"}
        </button>
      </div>
    </form>
  );
}

function RecipePicker({ useCase }: { useCase: string }) {
  const [params, setParams] = useSearchParams();
  const loaded = useApi(() => gql(Recipes, { useCase }), [useCase]);
  const chosen = params.get("recipe") ?? "";
  return (
    <Await loaded={loaded}>
      {({ customRecipes }) => {
        if (customRecipes.length === 0)
          return <Empty title="No recipe in this use case">Upload one with the SDK: recipes.upload("main.py").</Empty>;
        const recipe = customRecipes.find((r) => (r.key ?? r.id) === chosen);
        return (
          <>
            <label className="filter">
              Recipe{" "}
              <select
                value={chosen}
                onChange={(e) => setParams({ useCase, ...(e.target.value ? { recipe: e.target.value } : {}) })}
              >
                <option value="">choose…</option>
                {customRecipes.map((r) => (
                  <option key={r.id} value={r.key ?? r.id}>
                    {r.key ?? r.name} ({r.jobKind.toLowerCase()}
                    {r.global ? ", built in" : ""})
                  </option>
                ))}
              </select>
            </label>
            {recipe && <RecipeForm key={`${useCase}/${recipe.id}`} useCase={useCase} recipe={recipe} />}
          </>
        );
      }}
    </Await>
  );
}

export default function RunRecipe() {
  const [params, setParams] = useSearchParams();
  const loaded = useApi(() => gql(UseCasesToRun), []);
  const useCase = params.get("useCase") ?? "";
  return (
    <>
      <nav aria-label="Breadcrumb" className="crumbs">
        <Link to="/jobs">Jobs</Link> / <span aria-current="page">Run a recipe</span>
      </nav>
      <h1>Run a recipe</h1>
      <Await loaded={loaded}>
        {({ useCases }) => {
          const runnable = useCases.filter((u) => allows(u.permissions, "job:run"));
          if (runnable.length === 0) return <Empty title="You may not run jobs in any use case" />;
          return (
            <>
              <label className="filter">
                Use case{" "}
                <select value={useCase} onChange={(e) => setParams(e.target.value ? { useCase: e.target.value } : {})}>
                  <option value="">choose…</option>
                  {runnable.map((u) => (
                    <option key={u.key} value={u.key}>
                      {u.name} ({u.key})
                    </option>
                  ))}
                </select>
              </label>
              {runnable.some((u) => u.key === useCase) && <RecipePicker key={useCase} useCase={useCase} />}
            </>
          );
        }}
      </Await>
    </>
  );
}
