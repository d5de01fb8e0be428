// The fields of an integration's connection and topics, shared by the forms that create and edit one.
import type { ConnectionConfigInput } from "../gql/graphql";

export type Provider = "webhook" | "slack" | "smtp";

export interface ConnectionDraft {
  /** The webhook's or the Slack webhook's URL. */
  url: string;
  smtp: { host: string; port: string; username: string; password: string; fromEmail: string; toEmails: string };
}

export const EMPTY_CONNECTION: ConnectionDraft = {
  url: "",
  smtp: { host: "", port: "587", username: "", password: "", fromEmail: "", toEmails: "" },
};

const SMTP_FIELDS = [
  ["host", "SMTP host"],
  ["port", "Port"],
  ["username", "Username"],
  ["password", "Password"],
  ["fromEmail", "From"],
  ["toEmails", "To (comma-separated)"],
] as const;

function commaList(text: string): string[] {
  return text
    .split(",")
    .map((t) => t.trim())
    .filter(Boolean);
}

/** The API's connection input of a draft. */
export function connectionInput(provider: Provider, draft: ConnectionDraft): ConnectionConfigInput {
  if (provider === "webhook") return { webhook: { url: draft.url, method: "POST" } };
  if (provider === "slack") return { slack: { webhookUrl: draft.url } };
  return { smtp: { ...draft.smtp, port: Number(draft.smtp.port), toEmails: commaList(draft.smtp.toEmails) } };
}

/** Comma-separated topic patterns as the API's subscriptions (to the integration's team). */
export function subscriptionsInput(topics: string) {
  return commaList(topics).map((topicPattern) => ({ topicPattern, scope: "TEAM" as const }));
}

export function ConnectionFields({
  provider,
  draft,
  onChange,
  editing = false,
}: {
  provider: Provider;
  draft: ConnectionDraft;
  onChange: (draft: ConnectionDraft) => void;
  /** An edit: the server keeps no password it could show, so changing an SMTP connection asks for it again. */
  editing?: boolean;
}) {
  if (provider !== "smtp")
    return (
      <div className="schema-field">
        <label htmlFor="integration-url">{provider === "slack" ? "Slack webhook URL" : "Webhook URL"}</label>
        <input id="integration-url" type="url" required value={draft.url} onChange={(e) => onChange({ ...draft, url: e.target.value })} />
      </div>
    );
  return (
    <div className="inline-form">
      {SMTP_FIELDS.map(([field, label]) => (
        <label key={field}>
          {label}
          {editing && field === "password" && <span className="muted"> (again, to change the connection)</span>}
          <input
            type={field === "password" ? "password" : field === "port" ? "number" : "text"}
            required={field !== "username" && field !== "password"}
            value={draft.smtp[field]}
            onChange={(e) => onChange({ ...draft, smtp: { ...draft.smtp, [field]: e.target.value } })}
          />
        </label>
      ))}
    </div>
  );
}
