// One dataset: what it holds, its rows page by page (Dataset.rows), download, delete.
import { useState } from "react";
import { Link, useNavigate, useParams, useSearchParams } from "react-router";
import { gql } from "../api/client";
import { useApi } from "../api/useApi";
import { Pager, PAGE_SIZES, type PageRequest } from "../components/Pager";
import { ConfirmDelete } from "../components/ConfirmDelete";
import { Await, Empty, FormError } from "../components/States";
import { formatBytes, formatTime, truncate, words } from "../format";
import { graphql } from "../gql";
import { allows } from "../session";

const Detail = graphql(`
  query DatasetDetail($key: IdOrKey!, $useCase: IdOrKey!, $offset: Int!, $limit: Int!) {
    useCase(idOrKey: $useCase) {
      key
      name
      permissions
    }
    dataset(idOrKey: $key, useCase: $useCase) {
      id
      key
      name
      kind
      source
      records
      sizeBytes
      createdAt
      metricsUsage {
        feedbackCount
        metric {
          key
        }
      }
      rows(offset: $offset, limit: $limit)
    }
  }
`);

const Delete = graphql(`
  mutation DeleteDataset($key: IdOrKey!, $useCase: IdOrKey!) {
    deleteDataset(idOrKey: $key, useCase: $useCase)
  }
`);

type Row = {
  messages?: { role: string; content: string }[];
  prompt?: string;
  completion?: string;
  chosen?: string;
  rejected?: string;
  feedback?: Record<string, number | boolean>;
  labels?: Record<string, string>;
};

function promptOf(row: Row): string {
  if (typeof row.prompt === "string") return row.prompt;
  const messages = row.messages ?? [];
  return [...messages].reverse().find((m) => m.role === "user")?.content ?? messages.at(-1)?.content ?? "";
}

function Answer({ row }: { row: Row }) {
  if (row.chosen !== undefined)
    return (
      <>
        <div>
          <span className="badge status-online">chosen</span> {truncate(String(row.chosen), 140)}
        </div>
        <div>
          <span className="badge">rejected</span> {truncate(String(row.rejected ?? ""), 140)}
        </div>
      </>
    );
  return <>{row.completion !== undefined ? truncate(String(row.completion), 200) : <span className="muted">—</span>}</>;
}

export default function DatasetDetail() {
  const { useCase = "", key = "" } = useParams();
  const navigate = useNavigate();
  const [params, setParams] = useSearchParams();
  const size = PAGE_SIZES.includes(Number(params.get("size"))) ? Number(params.get("size")) : PAGE_SIZES[0];
  const offset = Math.max(0, Number(params.get("offset")) || 0);
  const loaded = useApi(() => gql(Detail, { key, useCase, offset, limit: size }), [useCase, key, offset, size]);
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const base = `/use-cases/${encodeURIComponent(useCase)}`;

  // The Pager speaks cursors; here a cursor is a row offset.
  const page = (request: PageRequest) => {
    const next = request.after != null ? Number(request.after) : Math.max(0, Number(request.before ?? 0) - size);
    setParams({ ...(next ? { offset: String(next) } : {}), ...(size !== PAGE_SIZES[0] ? { size: String(size) } : {}) });
  };

  return (
    <>
      <nav aria-label="Breadcrumb" className="crumbs">
        <Link to="/use-cases">Use cases</Link> / <Link to={base}>{useCase}</Link> / <Link to={`${base}/datasets`}>Datasets</Link> /{" "}
        <span aria-current="page">{key}</span>
      </nav>
      <Await loaded={loaded}>
        {({ useCase: uc, dataset }) => {
          if (!uc || !dataset) return <Empty title={`Dataset '${key}' not found`} />;
          const canWrite = allows(uc.permissions, "dataset:write");
          const rows = dataset.rows as Row[];
          const total = dataset.records ?? 0;
          const remove = async () => {
            setError(null);
            try {
              await gql(Delete, { key: dataset.key ?? dataset.id, useCase: uc.key });
              navigate(`${base}/datasets`);
            } catch (e) {
              setError((e as Error).message);
            }
          };
          const download = `/api/v1/datasets/${encodeURIComponent(dataset.key ?? dataset.id)}/download?use_case=${encodeURIComponent(uc.key)}`;
          return (
            <>
              <div className="page-head">
                <div>
                  <h1>{dataset.name}</h1>
                  <p className="muted">
                    <span className="mono">{dataset.key}</span> · {words(dataset.kind)} · {words(dataset.source)} · created{" "}
                    {formatTime(dataset.createdAt)}
                  </p>
                </div>
                <div className="actions">
                  <a className="button" href={download} download={`${dataset.key}.jsonl`}>
                    Download
                  </a>
                  {canWrite && !confirming && (
                    <button type="button" onClick={() => setConfirming(true)}>
                      Delete dataset
                    </button>
                  )}
                </div>
              </div>
              {confirming && (
                <ConfirmDelete onConfirm={remove} onCancel={() => setConfirming(false)}>
                  Delete <strong>{dataset.name}</strong> and its file for good? Jobs that name it will not find it.
                </ConfirmDelete>
              )}
              <FormError error={error} />
              <dl className="facts">
                <dt>Rows</dt>
                <dd>{total.toLocaleString()}</dd>
                <dt>Size</dt>
                <dd>{formatBytes(dataset.sizeBytes)}</dd>
                <dt>Feedback keys</dt>
                <dd>
                  {dataset.metricsUsage.length === 0
                    ? "—"
                    : dataset.metricsUsage.map((m) => (
                        <span className="badge" key={m.metric.key}>
                          {m.metric.key}: {m.feedbackCount}
                        </span>
                      ))}
                </dd>
              </dl>
              <section aria-labelledby="rows-title" className="card">
                <h2 id="rows-title">Rows</h2>
                {rows.length === 0 ? (
                  <Empty title={total ? "No rows on this page" : "This dataset has no rows"} />
                ) : (
                  <table className="rows">
                    <thead>
                      <tr>
                        <th scope="col">#</th>
                        <th scope="col">Prompt</th>
                        <th scope="col">Answer</th>
                        <th scope="col">Feedback</th>
                        <th scope="col">Labels</th>
                      </tr>
                    </thead>
                    <tbody>
                      {rows.map((row, i) => (
                        <tr key={offset + i}>
                          <td className="muted">{offset + i + 1}</td>
                          <td>{truncate(promptOf(row), 200)}</td>
                          <td>
                            <Answer row={row} />
                          </td>
                          <td>
                            {Object.entries(row.feedback ?? {}).map(([k, v]) => (
                              <span className="badge" key={k}>
                                {k}: {String(v)}
                              </span>
                            ))}
                          </td>
                          <td>
                            {Object.entries(row.labels ?? {}).map(([k, v]) => (
                              <span className="badge" key={k}>
                                {k}={v}
                              </span>
                            ))}
                          </td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                )}
                <Pager
                  pageInfo={{
                    hasPreviousPage: offset > 0,
                    hasNextPage: offset + size < total,
                    startCursor: String(offset),
                    endCursor: String(offset + size),
                  }}
                  total={total}
                  size={size}
                  onPage={page}
                  onSize={(s) => setParams(s !== PAGE_SIZES[0] ? { size: String(s) } : {})}
                />
              </section>
            </>
          );
        }}
      </Await>
    </>
  );
}
