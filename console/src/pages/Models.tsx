// The model registry: each model's status, backend and use cases, and the lineage of trained models (base
// model → what was trained from it, with the job and the data that made each).
import { Link, useSearchParams } from "react-router";
import { gql } from "../api/client";
import { useApi } from "../api/useApi";
import { FilterSelect } from "../components/FilterSelect";
import { Await, Empty } from "../components/States";
import { ModelStatus, dataOf } from "../components/ModelBits";
import { formatTime } from "../format";
import { graphql } from "../gql";
import type { ModelOnline } from "../gql/graphql";

const Registry = graphql(`
  query Registry($filter: ModelFilter) {
    models(filter: $filter) {
      id
      key
      name
      online
      error
      backend
      provider
      kind
      isAdapter
      isExternal
      createdAt
      backbone {
        key
      }
      useCases {
        key
        name
      }
      lineage {
        jobId
        recipe
        args
      }
    }
  }
`);

const STATUSES: ModelOnline[] = ["ONLINE", "PENDING", "OFFLINE", "ERROR"];

type Row = {
  key: string;
  backbone?: { key: string } | null;
  lineage?: { jobId: string; recipe?: string | null; args: unknown } | null;
};

/** Models trained from ``base``, each with what was trained from it in turn. */
function Tree({ base, models, depth = 0 }: { base: string; models: Row[]; depth?: number }) {
  const children = models.filter((m) => m.backbone?.key === base);
  if (children.length === 0 || depth > 8) return null;
  return (
    <ul className="tree">
      {children.map((m) => (
        <li key={m.key}>
          <Link to={`/models/${encodeURIComponent(m.key)}`} className="mono">
            {m.key}
          </Link>
          {m.lineage && (
            <span className="muted">
              {" "}
              · <Link to={`/jobs/${m.lineage.jobId}`}>job</Link>
              {m.lineage.recipe && <> ran {m.lineage.recipe}</>}
              {dataOf(m.lineage.args) && <> on {dataOf(m.lineage.args)}</>}
            </span>
          )}
          <Tree base={m.key} models={models} depth={depth + 1} />
        </li>
      ))}
    </ul>
  );
}

export default function Models() {
  const [params, setParams] = useSearchParams();
  const status = STATUSES.find((s) => s === params.get("status")) ?? null;
  const loaded = useApi(() => gql(Registry, { filter: status ? { online: [status] } : null }), [status]);

  return (
    <>
      <h1>Models</h1>
      <FilterSelect
        className="filter"
        label="Status"
        value={status}
        choices={STATUSES}
        name={(s) => s.toLowerCase()}
        onChange={(v) => setParams(v ? { status: v } : {})}
      />
      <Await loaded={loaded}>
        {({ models }) => {
          if (models.length === 0)
            return (
              <Empty title={status ? "No model with this status" : "No models yet"}>
                {status ? "Choose another status." : "Register one with the SDK: models.add_external(...) or models.add_hf_model(...)."}
              </Empty>
            );
          const bases = models.filter((m) => !m.backbone && models.some((c) => c.backbone?.key === m.key));
          // A trained model whose base is not in this list (filtered out) still shows, under its base's key.
          const orphans = [...new Set(models.filter((m) => m.backbone && !models.some((b) => b.key === m.backbone!.key)).map((m) => m.backbone!.key))];
          return (
            <>
              <table>
                <thead>
                  <tr>
                    <th scope="col">Model</th>
                    <th scope="col">Status</th>
                    <th scope="col">Backend</th>
                    <th scope="col">Kind</th>
                    <th scope="col">Trained from</th>
                    <th scope="col">Use cases</th>
                    <th scope="col">Added</th>
                  </tr>
                </thead>
                <tbody>
                  {models.map((m) => (
                    <tr key={m.id}>
                      <td>
                        <Link to={`/models/${encodeURIComponent(m.key)}`}>{m.name}</Link>
                        <div className="muted mono">{m.key}</div>
                      </td>
                      <td>
                        <ModelStatus online={m.online} error={m.error} />
                      </td>
                      <td>
                        {m.backend}
                        {m.isExternal && <div className="muted">{m.provider}</div>}
                      </td>
                      <td>
                        {m.kind}
                        {m.isAdapter && <div className="muted">adapter</div>}
                      </td>
                      <td className="mono">{m.backbone ? <Link to={`/models/${encodeURIComponent(m.backbone.key)}`}>{m.backbone.key}</Link> : "—"}</td>
                      <td>
                        {m.useCases.length === 0 ? (
                          <span className="muted">none</span>
                        ) : (
                          m.useCases.map((u) => (
                            <Link key={u.key} className="badge" to={`/use-cases/${encodeURIComponent(u.key)}`}>
                              {u.name}
                            </Link>
                          ))
                        )}
                      </td>
                      <td>{formatTime(m.createdAt)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <section aria-labelledby="lineage-title" className="card lineage">
                <h2 id="lineage-title">Lineage</h2>
                {bases.length + orphans.length === 0 ? (
                  <Empty title="No trained models yet">Models that jobs train from a base model show here, under it.</Empty>
                ) : (
                  <ul className="tree">
                    {bases.map((b) => (
                      <li key={b.key}>
                        <Link to={`/models/${encodeURIComponent(b.key)}`} className="mono">
                          {b.key}
                        </Link>
                        <Tree base={b.key} models={models} />
                      </li>
                    ))}
                    {orphans.map((key) => (
                      <li key={key}>
                        <span className="mono">{key}</span>
                        <Tree base={key} models={models} />
                      </li>
                    ))}
                  </ul>
                )}
              </section>
            </>
          );
        }}
      </Await>
    </>
  );
}
