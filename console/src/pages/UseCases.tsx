// Use cases: searched and paged by the server, newest last; create one.
import { useEffect, useState, type FormEvent } from "react";
import { Link, useNavigate } from "react-router";
import { gql } from "../api/client";
import { useApi } from "../api/useApi";
import { Pager, useCursorPaging } from "../components/Pager";
import { Await, Empty, FormError } from "../components/States";
import { graphql } from "../gql";
import { useSignedIn } from "../session";
import { formatTime } from "../format";

const UseCasesQuery = graphql(`
  query UseCases($page: CursorPageInput!, $search: String) {
    useCasesPage(page: $page, search: $search) {
      totalCount
      pageInfo {
        ...PageFields
      }
      nodes {
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
  }
`);

// How long typing pauses before the search goes to the server.
const SEARCH_DELAY_MS = 300;

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
      <FormError error={error} />
    </form>
  );
}

export default function UseCases() {
  const session = useSignedIn();
  const paging = useCursorPaging(["q"]);
  const query = paging.params.get("q") ?? "";
  const loaded = useApi(() => gql(UseCasesQuery, { page: paging.page, search: query || null }), [paging.params.toString()]);
  const [creating, setCreating] = useState(false);
  const [search, setSearch] = useState(query);
  useEffect(() => {
    if (search.trim() === query) return;
    const timer = window.setTimeout(() => paging.update({ q: search.trim() || null }), SEARCH_DELAY_MS);
    return () => window.clearTimeout(timer);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [search, query]);

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
      <label className="filter">
        Find{" "}
        <input type="search" value={search} onChange={(e) => setSearch(e.target.value)} placeholder="key or name" />
      </label>
      <Await loaded={loaded}>
        {({ useCasesPage: found }) => {
          if (found.totalCount === 0)
            return query ? (
              <Empty title="No use case matches">Change or clear the search.</Empty>
            ) : (
              <Empty title="No use cases yet">A use case groups the models, traffic and feedback of one task.</Empty>
            );
          return (
            <>
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
                  {found.nodes.map((u) => (
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
              <Pager pageInfo={found.pageInfo} total={found.totalCount} {...paging.pager} />
            </>
          );
        }}
      </Await>
    </>
  );
}
