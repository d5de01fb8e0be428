// A team's integrations (integration:manage): where its notifications go (webhook, Slack, email), and a
// new one; a webhook's signing secret made by the server is shown once.
import { useState, type FormEvent } from "react";
import { Link, useSearchParams } from "react-router";
import { gql } from "../api/client";
import { useApi } from "../api/useApi";
import { SettingsPage } from "../components/SettingsNav";
import { Await, Empty, FormFooter } from "../components/States";
import { formatTime } from "../format";
import { graphql } from "../gql";
import {
  ConnectionFields,
  EMPTY_CONNECTION,
  connectionInput,
  subscriptionsInput,
  type ConnectionDraft,
  type Provider,
} from "../components/IntegrationFields";
import { useSignedIn } from "../session";

const TeamsToManage = graphql(`
  query IntegrationTeams {
    teams {
      key
      name
    }
  }
`);

const List = graphql(`
  query Integrations($team: IdOrKey!) {
    integrations(team: $team) {
      id
      name
      enabled
      createdAt
      config {
        provider
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

const Create = graphql(`
  mutation CreateIntegration($team: IdOrKey!, $input: CreateIntegrationInput!) {
    createIntegration(team: $team, input: $input) {
      id
      name
      signingSecret
    }
  }
`);

function CreateForm({ team, onMade }: { team: string; onMade: (made: { id: string; name: string; signingSecret?: string | null }) => void }) {
  const [provider, setProvider] = useState<Provider>("webhook");
  const [name, setName] = useState("");
  const [topics, setTopics] = useState("job.*");
  const [connection, setConnection] = useState<ConnectionDraft>(EMPTY_CONNECTION);
  const [error, setError] = useState<string | null>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    const config = { connection: connectionInput(provider, connection), notificationSettings: { subscriptions: subscriptionsInput(topics) } };
    try {
      const made = await gql(Create, { team, input: { name, provider, config } });
      onMade(made.createIntegration);
    } catch (e) {
      setError((e as Error).message);
    }
  };

  return (
    <form className="card schema-form" onSubmit={submit} aria-label="New integration">
      <div className="inline-form">
        <label>
          Kind
          <select value={provider} onChange={(e) => setProvider(e.target.value as Provider)}>
            <option value="webhook">Webhook (signed JSON POST)</option>
            <option value="slack">Slack incoming webhook</option>
            <option value="smtp">Email (SMTP)</option>
          </select>
        </label>
        <label>
          Integration name
          <input required value={name} onChange={(e) => setName(e.target.value)} />
        </label>
        <label>
          Topics <span className="muted">(comma-separated patterns)</span>
          <input value={topics} onChange={(e) => setTopics(e.target.value)} placeholder="job.*, model.error" />
        </label>
      </div>
      <ConnectionFields provider={provider} draft={connection} onChange={setConnection} />
      <FormFooter error={error} submit="Create integration" />
    </form>
  );
}

export default function Integrations() {
  const session = useSignedIn();
  const allowed = session.can("integration:manage");
  const [params, setParams] = useSearchParams();
  const teams = useApi(() => (allowed ? gql(TeamsToManage) : Promise.resolve(null)), [allowed]);
  const team = params.get("team") ?? teams.data?.teams[0]?.key ?? "";
  const loaded = useApi(() => (allowed && team ? gql(List, { team }) : Promise.resolve(null)), [allowed, team]);
  const [creating, setCreating] = useState(false);
  const [made, setMade] = useState<{ id: string; name: string; signingSecret?: string | null } | null>(null);

  return (
    <SettingsPage title="Integrations" permission="integration:manage">
      <div className="page-head">
        <label className="filter">
          Team{" "}
          <select value={team} onChange={(e) => setParams({ team: e.target.value })}>
            {(teams.data?.teams ?? []).map((t) => (
              <option key={t.key} value={t.key}>
                {t.name}
              </option>
            ))}
          </select>
        </label>
        {team && !creating && (
          <button type="button" className="primary" onClick={() => setCreating(true)}>
            New integration
          </button>
        )}
      </div>
      {creating && team && (
        <CreateForm
          team={team}
          onMade={(integration) => {
            setCreating(false);
            setMade(integration);
            loaded.reload();
          }}
        />
      )}
      {made && (
        <div className="card notice" role="region" aria-label="New integration">
          <p>
            <Link to={`/settings/integrations/${made.id}`}>{made.name}</Link> is ready; send it a test from its page.
          </p>
          {made.signingSecret && (
            <>
              <p>Its signing secret (HMAC-SHA256 of each body, in X-Adaptive-Signature) is shown this once:</p>
              <div className="secret">
                <code aria-label="Signing secret">{made.signingSecret}</code>
              </div>
            </>
          )}
        </div>
      )}
      <Await loaded={loaded}>
        {(data) =>
          !data || data.integrations.length === 0 ? (
            <Empty title="No integrations for this team">An integration sends the team's notifications (jobs, models, A/B tests) to a webhook, Slack or email.</Empty>
          ) : (
            <table>
              <thead>
                <tr>
                  <th scope="col">Integration</th>
                  <th scope="col">Kind</th>
                  <th scope="col">Topics</th>
                  <th scope="col">Enabled</th>
                  <th scope="col">Created</th>
                </tr>
              </thead>
              <tbody>
                {data.integrations.map((i) => (
                  <tr key={i.id}>
                    <td>
                      <Link to={`/settings/integrations/${i.id}`}>{i.name}</Link>
                    </td>
                    <td>{i.config.provider}</td>
                    <td className="mono">{(i.config.notificationSettings?.subscriptions ?? []).map((s) => s.topicPattern).join(", ") || "—"}</td>
                    <td>{i.enabled ? "yes" : "no"}</td>
                    <td>{formatTime(i.createdAt)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Await>
    </SettingsPage>
  );
}
