// One job: status, progress, the live log (streamed while it runs), metric curves per step, artifacts to
// download, its arguments, cancel.
import { lazy, Suspense, useEffect, useMemo, useRef, useState } from "react";
import { Link, useParams } from "react-router";
import { gql } from "../api/client";
import { useApi } from "../api/useApi";
import { useJobLog } from "../api/useJobLog";
import { usePolling } from "../api/usePolling";
import { LIVE, Progress, StatusBadge } from "../components/JobStatus";
import { Await, Empty, FormError, Loading } from "../components/States";
import { formatBytes, formatDuration, formatNumber, formatTime, words } from "../format";
import { graphql } from "../gql";
import { allows } from "../session";

const TimeChart = lazy(() => import("../components/TimeChart"));

const LOG_LINES = 500;

const Detail = graphql(`
  query JobDetail($id: UUID!, $tail: Int!, $withLogs: Boolean!) {
    job(id: $id) {
      id
      name
      status
      kind
      progress
      progressMessage
      error
      createdAt
      startedAt
      endedAt
      durationMs
      numGpus
      createdBy {
        email
      }
      useCase {
        key
        name
        permissions
      }
      recipe {
        key
        name
      }
      metrics {
        step
        values
      }
      logs(tail: $tail) @include(if: $withLogs)
      details {
        args
        artifacts {
          id
          name
          kind
          status
          uri
          sizeBytes
          createdAt
        }
      }
    }
  }
`);

const Cancel = graphql(`
  mutation CancelJob($id: UUID!) {
    cancelJob(id: $id) {
      id
      status
    }
  }
`);

/** One curve per metric key over the steps: {step, values: {loss: 0.5, ...}} points. */
function curves(points: { step: number; values: unknown }[]): { key: string; steps: number[]; values: (number | null)[] }[] {
  const byKey = new Map<string, Map<number, number>>();
  for (const point of points) {
    for (const [key, value] of Object.entries((point.values ?? {}) as Record<string, unknown>)) {
      if (typeof value !== "number") continue;
      if (!byKey.has(key)) byKey.set(key, new Map());
      byKey.get(key)!.set(point.step, value); // a step logged twice: the latest value
    }
  }
  return [...byKey.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, values]) => {
      const steps = [...values.keys()].sort((a, b) => a - b);
      return { key, steps, values: steps.map((s) => values.get(s) ?? null) };
    });
}

function Metrics({ points }: { points: { step: number; values: unknown }[] }) {
  // Polling brings a new array each time: redraw only when a point changed.
  const signature = JSON.stringify(points);
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const series = useMemo(() => curves(points), [signature]);
  if (series.length === 0) return <Empty title="No metrics logged" />;
  return (
    <div className="chart-grid">
      {series.map((c) => (
        <div key={c.key}>
          <h3 className="mono">
            {c.key} <span className="muted">last {formatNumber(c.values.at(-1))}</span>{" "}
            {c.values.length > 1 && <span className="muted">from {formatNumber(c.values[0])}</span>}
          </h3>
          <Suspense fallback={<Loading what="Drawing" />}>
            <TimeChart
              xTime={false}
              height={200}
              label={`${c.key} per step`}
              times={c.steps}
              series={[{ label: c.key, values: c.values }]}
            />
          </Suspense>
        </div>
      ))}
    </div>
  );
}

/** The log's last lines; kept scrolled to the end while following, unless the reader scrolled up. */
function Log({ text }: { text: string }) {
  const box = useRef<HTMLPreElement>(null);
  const atEnd = useRef(true);
  useEffect(() => {
    const element = box.current;
    if (element && atEnd.current) element.scrollTop = element.scrollHeight;
  }, [text]);
  return (
    <pre
      ref={box}
      className="log"
      role="log"
      tabIndex={0}
      aria-label="Job log"
      onScroll={(e) => {
        const element = e.currentTarget;
        atEnd.current = element.scrollHeight - element.scrollTop - element.clientHeight < 24;
      }}
    >
      {text}
    </pre>
  );
}

export default function JobDetail() {
  const { id = "" } = useParams();
  // While the job runs its log comes streamed: the polled query leaves it out.
  const live = useRef(false);
  const loaded = useApi(() => gql(Detail, { id, tail: LOG_LINES, withLogs: !live.current }), [id]);
  const [error, setError] = useState<string | null>(null);
  const job = loaded.data?.job;
  live.current = Boolean(job && LIVE.has(job.status));
  usePolling(loaded.reload, live.current, 2000);
  const followed = useJobLog(id, live.current, LOG_LINES, loaded.reload);

  return (
    <>
      <nav aria-label="Breadcrumb" className="crumbs">
        <Link to="/jobs">Jobs</Link> / <span aria-current="page">{job?.name ?? id}</span>
      </nav>
      <Await loaded={loaded}>
        {({ job }) => {
          if (!job) return <Empty title={`Job '${id}' not found`} />;
          const canRun = Boolean(job.useCase && (allows(job.useCase.permissions, "job:run")));
          const cancel = async () => {
            setError(null);
            try {
              await gql(Cancel, { id: job.id });
              loaded.reload();
            } catch (e) {
              setError((e as Error).message);
            }
          };
          const artifacts = job.details?.artifacts ?? [];
          return (
            <>
              <div className="page-head">
                <div>
                  <h1>{job.name}</h1>
                  <p className="muted">
                    <StatusBadge status={job.status} /> {words(job.kind)}
                    {job.recipe && (
                      <>
                        {" "}
                        · recipe <span className="mono">{job.recipe.key ?? job.recipe.name}</span>
                      </>
                    )}
                    {job.useCase && (
                      <>
                        {" "}
                        · <Link to={`/use-cases/${encodeURIComponent(job.useCase.key)}`}>{job.useCase.name}</Link>
                      </>
                    )}
                  </p>
                </div>
                {canRun && LIVE.has(job.status) && (
                  <button type="button" onClick={cancel}>
                    Cancel job
                  </button>
                )}
              </div>
              <FormError error={error} />
              <dl className="facts">
                <dt>Progress</dt>
                <dd>
                  <Progress value={job.progress} label="Progress" />
                  {job.progressMessage && <span className="muted"> {job.progressMessage}</span>}
                </dd>
                <dt>Created</dt>
                <dd>
                  {formatTime(job.createdAt)}
                  {job.createdBy && <span className="muted"> by {job.createdBy.email}</span>}
                </dd>
                <dt>Started</dt>
                <dd>{formatTime(job.startedAt)}</dd>
                <dt>Ended</dt>
                <dd>{formatTime(job.endedAt)}</dd>
                <dt>Duration</dt>
                <dd>{formatDuration(job.durationMs)}</dd>
                <dt>GPUs</dt>
                <dd>{job.numGpus}</dd>
                {job.error && (
                  <>
                    <dt>Error</dt>
                    <dd className="status-error">{job.error}</dd>
                  </>
                )}
              </dl>

              <section aria-labelledby="metrics-title" className="card">
                <h2 id="metrics-title">Metrics</h2>
                <Metrics points={job.metrics} />
              </section>

              <section aria-labelledby="log-title" className="card">
                <div className="section-head">
                  <h2 id="log-title">Log</h2>
                  <span className="muted">{LIVE.has(job.status) ? "following live" : `last ${LOG_LINES} lines`}</span>
                </div>
                <FormError error={followed.error} />
                {(followed.text ?? job.logs) ? (
                  <Log text={(followed.text ?? job.logs)!} />
                ) : (
                  <Empty title={LIVE.has(job.status) ? "Nothing logged yet" : "The job logged nothing"} />
                )}
              </section>

              <section aria-labelledby="artifacts-title" className="card">
                <h2 id="artifacts-title">Artifacts</h2>
                {artifacts.length === 0 ? (
                  <Empty title="No artifacts" />
                ) : (
                  <table>
                    <thead>
                      <tr>
                        <th scope="col">Artifact</th>
                        <th scope="col">Kind</th>
                        <th scope="col">Status</th>
                        <th scope="col">Size</th>
                        <th scope="col">Created</th>
                      </tr>
                    </thead>
                    <tbody>
                      {artifacts.map((a) => {
                        const model = a.uri?.startsWith("model://") ? a.uri.slice("model://".length) : null;
                        return (
                          <tr key={a.id}>
                            <td>
                              {model ? (
                                <Link to={`/models/${encodeURIComponent(model)}`}>{a.name}</Link>
                              ) : a.uri?.startsWith("/api/v1/") ? (
                                <a href={a.uri} download={a.name} aria-label={`Download ${a.name}`}>
                                  {a.name}
                                </a>
                              ) : (
                                a.name
                              )}
                            </td>
                            <td>{words(a.kind)}</td>
                            <td>{words(a.status)}</td>
                            <td>{model ? "—" : formatBytes(a.sizeBytes)}</td>
                            <td>{formatTime(a.createdAt)}</td>
                          </tr>
                        );
                      })}
                    </tbody>
                  </table>
                )}
              </section>

              <section aria-labelledby="args-title" className="card">
                <h2 id="args-title">Arguments</h2>
                <pre className="mono json">{JSON.stringify(job.details?.args ?? {}, null, 2)}</pre>
              </section>
            </>
          );
        }}
      </Await>
    </>
  );
}
