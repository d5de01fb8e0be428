import { useState, type FormEvent } from "react";
import { Link, useNavigate } from "react-router";
import { gql } from "../api/client";
import { useApi } from "../api/useApi";
import { Await, Empty } from "../components/States";
import { graphql } from "../gql";
import { useSignedIn } from "../session";
import { formatTime } from "../format";

const UseCasesQuery = graphql(`
  query UseCases {
    useCases {
      id
      key
      name
      description
      createdAt
      modelServices {
        key
        isDefault
      }
    }
  }
`);

const CreateUseCase = graphql(`
  mutation CreateUseCase($input: UseCaseCreate!) {
    createUseCase(input: $input) {
      key
    }
  }
`);

function CreateForm({ onCancel }: { onCancel: () => void }) {
  const navigate = useNavigate();
  const [name, setName] = useState("");
  const [key, setKey] = useState("");
  const [error, setError] = useState<string | null>(null);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    try {
      const made = await gql(CreateUseCase, { input: { name, key: key || null } });
      navigate(`/use-cases/${encodeURIComponent(made.createUseCase.key)}`);
    } catch (e) {
      setError((e as Error).message);
    }
  };
  return (
    <form className="card inline-form" onSubmit={submit} aria-label="New use case">
      <label>
        Name
        <input required value={name} onChange={(e) => setName(e.target.value)} />
      </label>
      <label>
        Key <span className="muted">(optional)</span>
        <input value={key} onChange={(e) => setKey(e.target.value)} placeholder="from the name" />
      </label>
      <button type="submit" className="primary">
        Create
      </button>
      <button type="button" onClick={onCancel}>
        Cancel
      </button>
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}

export default function UseCases() {
  const session = useSignedIn();
  const loaded = useApi(() => gql(UseCasesQuery), []);
  const [creating, setCreating] = useState(false);
  const [search, setSearch] = useState("");

  return (
    <>
      <div className="page-head">
        <h1>Use cases</h1>
        {session.can("use_case:create") && !creating && (
          <button type="button" className="primary" onClick={() => setCreating(true)}>
            New use case
          </button>
        )}
      </div>
      {creating && <CreateForm onCancel={() => setCreating(false)} />}
      <Await loaded={loaded}>
        {({ useCases }) => {
          if (useCases.length === 0)
            return <Empty title="No use cases yet">A use case groups the models, traffic and feedback of one task.</Empty>;
          const needle = search.trim().toLowerCase();
          const shown = useCases.filter(
            (u) => !needle || u.key.toLowerCase().includes(needle) || u.name.toLowerCase().includes(needle),
          );
          return (
            <>
              <label className="filter">
                Find{" "}
                <input type="search" value={search} onChange={(e) => setSearch(e.target.value)} placeholder="key or name" />
              </label>
              <table>
                <thead>
                  <tr>
                    <th scope="col">Use case</th>
                    <th scope="col">Description</th>
                    <th scope="col">Default model</th>
                    <th scope="col">Models</th>
                    <th scope="col">Created</th>
                  </tr>
                </thead>
                <tbody>
                  {shown.map((u) => (
                    <tr key={u.id}>
                      <td>
                        <Link to={`/use-cases/${encodeURIComponent(u.key)}`}>{u.name}</Link>
                        <div className="muted mono">{u.key}</div>
                      </td>
                      <td>{u.description || <span className="muted">—</span>}</td>
                      <td className="mono">{u.modelServices.find((m) => m.isDefault)?.key ?? <span className="muted">none</span>}</td>
                      <td>{u.modelServices.length}</td>
                      <td>{formatTime(u.createdAt)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
              {shown.length === 0 && <Empty title="No use case matches" />}
            </>
          );
        }}
      </Await>
    </>
  );
}
