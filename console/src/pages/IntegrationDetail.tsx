// One integration: where it delivers, on or off, edit it (name, topics, retries, connection), "send test"
// (answered at once with the event id), and its delivery log, polled while deliveries are under way, each
// attempt with its error.
import { useState, type FormEvent } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { gql } from "../api/client";
import { useApi } from "../api/useApi";
import { usePolling } from "../api/usePolling";
import {
  ConnectionFields,
  connectionInput,
  subscriptionsInput,
  type ConnectionDraft,
  type Provider,
} from "../components/IntegrationFields";
import { FilterSelect } from "../components/FilterSelect";
import { Pager, useCursorPaging } from "../components/Pager";
import { SettingsPage } from "../components/SettingsNav";
import { ConfirmDelete } from "../components/ConfirmDelete";
import { Await, Empty, FormError, FormFooter } from "../components/States";
import { formatTime, words } from "../format";
import { graphql } from "../gql";

const Detail = graphql(`
  query IntegrationDetail($id: UUID!) {
    integration(id: $id) {
      id
      name
      teamId
      enabled
      createdAt
      config {
        provider
        deliveryPolicy
        connection {
          __typename
          ... on WebhookConfig {
            url
            method
          }
          ... on SlackConfig {
            webhookUrl
          }
          ... on SmtpConfig {
            host
            port
            username
            fromEmail
            toEmails
          }
          ... on GitHubConfig {
            org
            repo
          }
        }
        notificationSettings {
          subscriptions {
            topicPattern
            scope
          }
        }
      }
    }
  }
`);

const Deliveries = graphql(`
  query Deliveries($id: UUID!, $page: CursorPageInput, $status: [String!]) {
    notificationDeliveries(id: $id, page: $page, status: $status) {
      totalCount
      pageInfo {
        ...PageFields
      }
      nodes {
        id
        eventId
        topic
        status
        attempts
        maxAttempts
        nextAttemptAt
        lastError
        createdAt
        deliveredAt
        attemptLog {
          startedAt
          durationMs
          error
          retryInS
        }
      }
    }
  }
`);

const SendTest = graphql(`
  mutation SendTestNotification($input: TestNotificationInput!) {
    testNotification(input: $input) {
      eventId
      message
    }
  }
`);

const Update = graphql(`
  mutation SetIntegrationEnabled($id: UUID!, $input: UpdateIntegrationInput!) {
    updateIntegration(id: $id, input: $input) {
      id
      enabled
    }
  }
`);

const Delete = graphql(`
  mutation DeleteIntegration($id: UUID!) {
    deleteIntegration(id: $id)
  }
`);

const STATUSES = ["PENDING", "SENDING", "DELIVERED", "FAILED"];
const UNDER_WAY = new Set(["PENDING", "SENDING"]);

type Connection =
  | { __typename: "WebhookConfig"; url: string }
  | { __typename: "SlackConfig"; webhookUrl: string }
  | { __typename: "SmtpConfig"; host: string; port: number; username?: string | null; fromEmail: string; toEmails: string[] }
  | { __typename: "GitHubConfig" };

function draftOf(c: Connection): ConnectionDraft {
  const smtp =
    c.__typename === "SmtpConfig"
      ? { host: c.host, port: String(c.port), username: c.username ?? "", password: "", fromEmail: c.fromEmail, toEmails: c.toEmails.join(", ") }
      : { host: "", port: "587", username: "", password: "", fromEmail: "", toEmails: "" };
  const url = c.__typename === "WebhookConfig" ? c.url : c.__typename === "SlackConfig" ? c.webhookUrl : "";
  return { url, smtp };
}

/** Changes what was changed only: an untouched connection is not sent (a webhook's headers and secret and an
 * SMTP password stay as they are). */
function EditForm({
  integration,
  onSaved,
  onCancel,
}: {
  integration: { id: string; name: string; provider: Provider; deliveryPolicy: string; topics: string[]; connection: Connection };
  onSaved: () => void;
  onCancel: () => void;
}) {
  const before = { name: integration.name, topics: integration.topics.join(", "), policy: integration.deliveryPolicy, connection: draftOf(integration.connection) };
  const [name, setName] = useState(before.name);
  const [topics, setTopics] = useState(before.topics);
  const [policy, setPolicy] = useState(before.policy);
  const [connection, setConnection] = useState(before.connection);
  const [error, setError] = useState<string | null>(null);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    const connectionChanged = JSON.stringify(connection) !== JSON.stringify(before.connection);
    if (connectionChanged && integration.provider === "smtp" && !connection.smtp.password) {
      setError("Enter the SMTP password again to change the connection.");
      return;
    }
    const config = {
      ...(connectionChanged ? { connection: connectionInput(integration.provider, connection) } : {}),
      ...(topics !== before.topics ? { notificationSettings: { subscriptions: subscriptionsInput(topics) } } : {}),
      ...(policy !== before.policy ? { deliveryPolicy: policy as "multishot" | "singleshot" } : {}),
    };
    const input = { ...(name !== before.name ? { name } : {}), ...(Object.keys(config).length ? { config } : {}) };
    if (Object.keys(input).length === 0) {
      setError("Nothing changed.");
      return;
    }
    try {
      await gql(Update, { id: integration.id, input });
      onSaved();
    } catch (e) {
      setError((e as Error).message);
    }
  };
  return (
    <form className="card schema-form" onSubmit={submit} aria-label="Edit integration">
      <div className="inline-form">
        <label>
          Integration name
          <input required value={name} onChange={(e) => setName(e.target.value)} />
        </label>
        <label>
          Topics <span className="muted">(comma-separated patterns)</span>
          <input value={topics} onChange={(e) => setTopics(e.target.value)} />
        </label>
        <label>
          Retries
          <select value={policy} onChange={(e) => setPolicy(e.target.value)}>
            <option value="multishot">yes, with backoff</option>
            <option value="singleshot">no (one attempt)</option>
          </select>
        </label>
      </div>
      <ConnectionFields provider={integration.provider} draft={connection} onChange={setConnection} editing />
      <FormFooter error={error} submit="Save changes" onCancel={onCancel} />
    </form>
  );
}

/** ``highlight``: the event of the last test sent (at ``sentAt``): the log is followed until its delivery ends. */
function DeliveryLog({ id, highlight, sentAt }: { id: string; highlight: string | null; sentAt: number }) {
  const { params, page, update, pager } = useCursorPaging(["status"]);
  const status = STATUSES.find((s) => s === params.get("status")) ?? null;
  const loaded = useApi(() => gql(Deliveries, { id, page, status: status ? [status] : null }), [id, params.toString(), highlight]);
  const nodes = loaded.data?.notificationDeliveries.nodes ?? [];
  // Followed for a while even before the delivery shows (a scope no integration matches never delivers).
  const waiting =
    highlight !== null && Date.now() - sentAt < 30_000 && !nodes.some((d) => d.eventId === highlight && !UNDER_WAY.has(d.status));
  usePolling(loaded.reload, nodes.some((d) => UNDER_WAY.has(d.status)) || waiting, 1000);
  return (
    <section aria-labelledby="log-title" className="card">
      <div className="section-head">
        <h2 id="log-title">Delivery log</h2>
        <FilterSelect label="Status" value={status} choices={STATUSES} name={words} onChange={(v) => update({ status: v })} />
      </div>
      <Await loaded={loaded}>
        {({ notificationDeliveries: log }) =>
          log.nodes.length === 0 ? (
            <Empty title={status ? "No delivery with this status" : "Nothing delivered yet"}>Send a test to see one arrive.</Empty>
          ) : (
            <>
              <table className="deliveries">
                <thead>
                  <tr>
                    <th scope="col">Event</th>
                    <th scope="col">Topic</th>
                    <th scope="col">Status</th>
                    <th scope="col">Attempts</th>
                    <th scope="col">Last error</th>
                    <th scope="col">Delivered</th>
                  </tr>
                </thead>
                <tbody>
                  {log.nodes.map((d) => (
                      <tr key={d.id} className={d.eventId === highlight ? "highlight" : undefined} aria-current={d.eventId === highlight ? "true" : undefined}>
                        <td>
                          {/* The whole id: ids are time-ordered (UUIDv7), so their first characters repeat. */}
                          <span className="mono small">{d.eventId}</span>
                          <div className="muted">{formatTime(d.createdAt)}</div>
                        </td>
                        <td className="mono">{d.topic}</td>
                        <td>
                          <span className={`badge ${d.status === "DELIVERED" ? "status-online" : d.status === "FAILED" ? "status-error" : ""}`}>
                            {words(d.status)}
                          </span>
                          {d.nextAttemptAt && <div className="muted">next try {formatTime(d.nextAttemptAt)}</div>}
                        </td>
                        <td>
                          {d.attempts} of {d.maxAttempts}
                          {d.attemptLog.length > 0 && (
                            <details>
                              <summary>each attempt</summary>
                              <ol>
                                {d.attemptLog.map((a, i) => (
                                  <li key={i}>
                                    {formatTime(a.startedAt)}, {a.durationMs} ms: {a.error ?? "delivered"}
                                    {a.retryInS != null && `, retry in ${a.retryInS.toFixed(1)} s`}
                                  </li>
                                ))}
                              </ol>
                            </details>
                          )}
                        </td>
                        <td className="status-error">{d.lastError ?? ""}</td>
                        <td>{formatTime(d.deliveredAt)}</td>
                      </tr>
                  ))}
                </tbody>
              </table>
              <Pager pageInfo={log.pageInfo} total={log.totalCount} {...pager} />
            </>
          )
        }
      </Await>
    </section>
  );
}

export default function IntegrationDetail() {
  const { id = "" } = useParams();
  const navigate = useNavigate();
  const loaded = useApi(() => gql(Detail, { id }), [id]);
  const [topic, setTopic] = useState<string | null>(null);
  const [sent, setSent] = useState<{ eventId: string; message: string; at: number } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [confirming, setConfirming] = useState(false);
  const [editing, setEditing] = useState(false);
  const [saved, setSaved] = useState(false);

  return (
    <SettingsPage title="Integration" permission="integration:manage">
      <nav aria-label="Breadcrumb" className="crumbs">
        <Link to="/settings/integrations">Integrations</Link> / <span aria-current="page">{loaded.data?.integration?.name ?? id}</span>
      </nav>
      <Await loaded={loaded}>
        {({ integration: i }) => {
          if (!i) return <Empty title="Integration not found" />;
          const patterns = (i.config.notificationSettings?.subscriptions ?? []).map((s) => s.topicPattern);
          const chosenTopic = topic ?? (patterns[0] ?? "job.*").replaceAll("*", "test");
          const c = i.config.connection;
          const act = async (run: () => Promise<unknown>) => {
            setError(null);
            try {
              await run();
            } catch (e) {
              setError((e as Error).message);
            }
          };
          const send = (event: FormEvent) => {
            event.preventDefault();
            setSent(null);
            act(async () => {
              const answer = await gql(SendTest, { input: { topic: chosenTopic, scope: { team: i.teamId }, payload: {} } });
              setSent({ ...answer.testNotification, at: Date.now() });
            });
          };
          return (
            <>
              <div className="page-head">
                <div>
                  <h2>{i.name}</h2>
                  <p className="muted">
                    {i.config.provider} · {i.enabled ? "enabled" : "disabled"} · created {formatTime(i.createdAt)}
                  </p>
                </div>
                <div className="actions">
                  {!editing && (
                    <button type="button" onClick={() => { setEditing(true); setSaved(false); }}>
                      Edit integration
                    </button>
                  )}
                  <button type="button" onClick={() => act(async () => { await gql(Update, { id: i.id, input: { enabled: !i.enabled } }); loaded.reload(); })}>
                    {i.enabled ? "Disable" : "Enable"}
                  </button>
                  {!confirming && (
                    <button type="button" onClick={() => setConfirming(true)}>
                      Delete integration
                    </button>
                  )}
                </div>
              </div>
              {confirming && (
                <ConfirmDelete onConfirm={() => act(async () => { await gql(Delete, { id: i.id }); navigate("/settings/integrations"); })} onCancel={() => setConfirming(false)}>
                  Delete <strong>{i.name}</strong> and its delivery log?
                </ConfirmDelete>
              )}
              <FormError error={error} />
              {saved && (
                <p className="muted" role="status">
                  Saved.
                </p>
              )}
              {editing && (i.config.provider === "webhook" || i.config.provider === "slack" || i.config.provider === "smtp") && (
                <EditForm
                  integration={{
                    id: i.id,
                    name: i.name,
                    provider: i.config.provider,
                    deliveryPolicy: i.config.deliveryPolicy,
                    topics: patterns,
                    connection: c as Connection,
                  }}
                  onSaved={() => {
                    setEditing(false);
                    setSaved(true);
                    loaded.reload();
                  }}
                  onCancel={() => setEditing(false)}
                />
              )}
              <dl className="facts">
                <dt>Delivers to</dt>
                <dd className="mono">
                  {c.__typename === "WebhookConfig" && `${c.method} ${c.url}`}
                  {c.__typename === "SlackConfig" && c.webhookUrl}
                  {c.__typename === "SmtpConfig" && `${c.toEmails.join(", ")} from ${c.fromEmail} via ${c.host}:${c.port}`}
                  {c.__typename === "GitHubConfig" && [c.org, c.repo].filter(Boolean).join("/")}
                </dd>
                <dt>Topics</dt>
                <dd className="mono">{patterns.join(", ") || "—"}</dd>
                <dt>Retries</dt>
                <dd>{i.config.deliveryPolicy === "multishot" ? "yes, with backoff" : "no (one attempt)"}</dd>
              </dl>
              <form className="inline-form card" onSubmit={send} aria-label="Send a test">
                <label>
                  Topic
                  <input required value={chosenTopic} onChange={(e) => setTopic(e.target.value)} />
                </label>
                <button type="submit" className="primary">
                  Send test
                </button>
                {sent && (
                  <p className="muted" role="status">
                    {sent.message}
                  </p>
                )}
              </form>
              <DeliveryLog id={i.id} highlight={sent?.eventId ?? null} sentAt={sent?.at ?? 0} />
            </>
          );
        }}
      </Await>
    </SettingsPage>
  );
}
