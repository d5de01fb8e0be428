import { useState, type FormEvent } from "react";
import { Link, useParams } from "react-router";
import { gql, rest } from "../api/client";
import { useApi } from "../api/useApi";
import { Await, Empty, FormError } from "../components/States";
import { formatNumber, formatTime } from "../format";
import { graphql } from "../gql";
import { allows } from "../session";

const Detail = graphql(`
  query InteractionDetail($useCase: IdOrKey!, $id: UUID!) {
    useCase(idOrKey: $useCase) {
      key
      name
      permissions
      metrics {
        key
        name
        kind
      }
    }
    completion(useCase: $useCase, id: $id) {
      id
      createdAt
      completion
      source
      sessionId
      userId
      abCampaignId
      model {
        key
      }
      chatMessages {
        role
        content
      }
      labels {
        key
        value
      }
      metadata {
        usage {
          promptTokens
          completionTokens
          totalTokens
        }
        timings
        parameters
      }
      directFeedbacks {
        id
        value
        reason
        details
        userId
        createdAt
        metric {
          key
        }
      }
      comparisonFeedbacks {
        id
        createdAt
        tied
        metric {
          key
        }
        preferedCompletion {
          id
        }
        otherCompletion {
          id
        }
      }
    }
  }
`);

function AddFeedback({ completionId, metrics, onAdded }: { completionId: string; metrics: { key: string; kind: string }[]; onAdded: () => void }) {
  const [metric, setMetric] = useState(metrics[0]?.key ?? "");
  const [value, setValue] = useState("");
  const [reason, setReason] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await rest("POST", "/feedback", { completion_id: completionId, metric, value: Number(value), reason: reason || null });
      setValue("");
      setReason("");
      onAdded();
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="inline-form" onSubmit={submit} aria-label="Add feedback">
      <label>
        Feedback key
        <input list="feedback-keys" required value={metric} onChange={(e) => setMetric(e.target.value)} />
        <datalist id="feedback-keys">
          {metrics.map((m) => (
            <option key={m.key} value={m.key} />
          ))}
        </datalist>
      </label>
      <label>
        Value
        <input type="number" step="any" required value={value} onChange={(e) => setValue(e.target.value)} />
      </label>
      <label>
        Reason <span className="muted">(optional)</span>
        <input value={reason} onChange={(e) => setReason(e.target.value)} />
      </label>
      <button type="submit" className="primary" disabled={busy}>
        Add feedback
      </button>
      <FormError error={error} />
    </form>
  );
}

export default function InteractionDetail() {
  const { useCase = "", id = "" } = useParams();
  const loaded = useApi(() => gql(Detail, { useCase, id }), [useCase, id]);
  const base = `/use-cases/${encodeURIComponent(useCase)}`;

  return (
    <>
      <nav aria-label="Breadcrumb" className="crumbs">
        <Link to="/use-cases">Use cases</Link> / <Link to={base}>{useCase}</Link> / <Link to={`${base}/interactions`}>Interactions</Link> /{" "}
        <span aria-current="page">{id.slice(0, 8)}</span>
      </nav>
      <Await loaded={loaded}>
        {({ useCase: uc, completion: c }) => {
          if (!uc || !c) return <Empty title="Interaction not found" />;
          const canAnnotate = allows(uc.permissions, "feedback:write");
          const usage = c.metadata.usage;
          return (
            <>
              <h1>Interaction</h1>
              <dl className="facts">
                <dt>Time</dt>
                <dd>{formatTime(c.createdAt)}</dd>
                <dt>Model</dt>
                <dd className="mono">{c.model?.key ?? "—"}</dd>
                <dt>Source</dt>
                <dd>{c.source.toLowerCase()}</dd>
                {c.sessionId && (
                  <>
                    <dt>Session</dt>
                    <dd className="mono">{c.sessionId}</dd>
                  </>
                )}
                {c.userId && (
                  <>
                    <dt>User</dt>
                    <dd className="mono">{c.userId}</dd>
                  </>
                )}
                {usage && (
                  <>
                    <dt>Tokens</dt>
                    <dd>
                      {usage.promptTokens} prompt + {usage.completionTokens} completion
                    </dd>
                  </>
                )}
                <dt>Labels</dt>
                <dd>
                  {c.labels.length === 0 ? (
                    <span className="muted">none</span>
                  ) : (
                    c.labels.map((l) => (
                      <span className="badge" key={l.key}>
                        {l.key}={l.value}
                      </span>
                    ))
                  )}
                </dd>
              </dl>

              <section aria-labelledby="conversation-title" className="card">
                <h2 id="conversation-title">Conversation</h2>
                <ol className="messages">
                  {c.chatMessages.map((m, i) => (
                    <li key={i} className={`message role-${m.role}`}>
                      <span className="role">{m.role}</span>
                      <pre>{m.content}</pre>
                    </li>
                  ))}
                  <li className="message role-assistant completion">
                    <span className="role">completion</span>
                    <pre>{c.completion ?? ""}</pre>
                  </li>
                </ol>
              </section>

              <section aria-labelledby="feedback-title" className="card">
                <h2 id="feedback-title">Feedback</h2>
                {c.directFeedbacks.length === 0 ? (
                  <Empty title="No feedback on this interaction" />
                ) : (
                  <table>
                    <thead>
                      <tr>
                        <th scope="col">Feedback key</th>
                        <th scope="col">Value</th>
                        <th scope="col">Reason</th>
                        <th scope="col">By</th>
                        <th scope="col">When</th>
                      </tr>
                    </thead>
                    <tbody>
                      {c.directFeedbacks.map((f) => (
                        <tr key={f.id}>
                          <td className="mono">{f.metric?.key}</td>
                          <td>{formatNumber(f.value)}</td>
                          <td>
                            {f.reason ?? <span className="muted">—</span>}
                            {f.details && <div className="muted">{f.details}</div>}
                          </td>
                          <td className="mono">{f.userId ?? "—"}</td>
                          <td>{formatTime(f.createdAt)}</td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                )}
                {canAnnotate && <AddFeedback completionId={c.id} metrics={uc.metrics} onAdded={loaded.reload} />}
              </section>

              <section aria-labelledby="comparisons-title" className="card">
                <h2 id="comparisons-title">Comparisons</h2>
                {c.comparisonFeedbacks.length === 0 ? (
                  <Empty title="No comparison with another completion" />
                ) : (
                  <ul>
                    {c.comparisonFeedbacks.map((p) => {
                      const other = p.preferedCompletion?.id === c.id ? p.otherCompletion : p.preferedCompletion;
                      const won = p.preferedCompletion?.id === c.id;
                      return (
                        <li key={p.id}>
                          <span className="mono">{p.metric?.key}</span>: {p.tied ? `tied (${p.tied})` : won ? "preferred over" : "lost to"}{" "}
                          {other && <Link to={`${base}/interactions/${other.id}`}>{other.id.slice(0, 8)}</Link>}
                        </li>
                      );
                    })}
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
