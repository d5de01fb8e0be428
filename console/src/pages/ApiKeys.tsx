// API keys: one's own (or, with user:manage, any user's): make one (the key is shown once, here), revoke.
import { useState, type FormEvent } from "react";
import { useSearchParams } from "react-router";
import { gql } from "../api/client";
import { useApi } from "../api/useApi";
import { SettingsPage } from "../components/SettingsNav";
import { Await, Empty, FormError } from "../components/States";
import { formatTime } from "../format";
import { graphql } from "../gql";
import { useSignedIn } from "../session";

const Keys = graphql(`
  query ApiKeys($user: String) {
    apiKeys(user: $user) {
      id
      name
      prefix
      userEmail
      createdAt
      revokedAt
    }
  }
`);

const Create = graphql(`
  mutation CreateApiKey($input: ApiKeyCreate!) {
    createApiKey(input: $input) {
      key
      apiKey {
        id
        name
      }
    }
  }
`);

const Revoke = graphql(`
  mutation RevokeApiKey($id: UUID!) {
    revokeApiKey(id: $id) {
      id
      revokedAt
    }
  }
`);

function NewKey({ user, onMade }: { user: string | null; onMade: () => void }) {
  const [name, setName] = useState("");
  const [made, setMade] = useState<{ key: string; name: string } | null>(null);
  const [copied, setCopied] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    setCopied(false);
    try {
      const answer = await gql(Create, { input: { name, user } });
      setMade({ key: answer.createApiKey.key, name: answer.createApiKey.apiKey.name });
      setName("");
      onMade();
    } catch (e) {
      setError((e as Error).message);
    }
  };
  return (
    <>
      <form className="inline-form" onSubmit={submit} aria-label="New API key">
        <label>
          Key name
          <input required value={name} onChange={(e) => setName(e.target.value)} placeholder="what it is for" />
        </label>
        <button type="submit" className="primary">
          Create key
        </button>
      </form>
      <FormError error={error} />
      {made && (
        <div className="card notice" role="region" aria-label="New key">
          <p>
            <strong>{made.name}</strong>: copy the key now. It is shown this once; the server keeps only its hash.
          </p>
          <div className="secret">
            <code aria-label="The new key">{made.key}</code>
            <button
              type="button"
              onClick={async () => {
                await navigator.clipboard?.writeText(made.key).catch(() => undefined);
                setCopied(true);
              }}
            >
              {copied ? "Copied" : "Copy"}
            </button>
            <button type="button" onClick={() => setMade(null)}>
              Done
            </button>
          </div>
        </div>
      )}
    </>
  );
}

export default function ApiKeys() {
  const session = useSignedIn();
  const [params, setParams] = useSearchParams();
  const user = session.can("user:manage") ? params.get("user") : null;
  const loaded = useApi(() => gql(Keys, { user }), [user]);
  const [confirming, setConfirming] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [who, setWho] = useState(user ?? "");

  const revoke = async (id: string) => {
    setError(null);
    try {
      await gql(Revoke, { id });
      setConfirming(null);
      loaded.reload();
    } catch (e) {
      setError((e as Error).message);
    }
  };

  return (
    <SettingsPage title="API keys">
      {session.can("user:manage") && (
        <form
          className="inline-form"
          aria-label="Whose keys"
          onSubmit={(e) => {
            e.preventDefault();
            setParams(who.trim() ? { user: who.trim() } : {});
          }}
        >
          <label>
            User (email)
            <input type="email" value={who} onChange={(e) => setWho(e.target.value)} placeholder={session.user.email} />
          </label>
          <button type="submit">Show keys</button>
        </form>
      )}
      <p className="muted">
        Keys of <strong>{user ?? session.user.email}</strong>. A key acts as its user through the SDK and the API.
      </p>
      <NewKey user={user} onMade={loaded.reload} />
      <FormError error={error} />
      <Await loaded={loaded}>
        {({ apiKeys }) =>
          apiKeys.length === 0 ? (
            <Empty title="No API keys" />
          ) : (
            <table>
              <thead>
                <tr>
                  <th scope="col">Key</th>
                  <th scope="col">Starts with</th>
                  <th scope="col">Created</th>
                  <th scope="col">Status</th>
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {apiKeys.map((k) => (
                  <tr key={k.id}>
                    <td>{k.name || <span className="muted">unnamed</span>}</td>
                    <td className="mono">{k.prefix}…</td>
                    <td>{formatTime(k.createdAt)}</td>
                    <td>{k.revokedAt ? <span className="badge status-error">revoked {formatTime(k.revokedAt)}</span> : <span className="badge status-online">active</span>}</td>
                    <td className="actions">
                      {!k.revokedAt &&
                        (confirming === k.id ? (
                          <>
                            <span>Revoke it? Whatever uses it stops working (a console signed in with it is signed out).</span>
                            <button type="button" className="danger" onClick={() => revoke(k.id)}>
                              Revoke for good
                            </button>
                            <button type="button" onClick={() => setConfirming(null)}>
                              Keep it
                            </button>
                          </>
                        ) : (
                          <button type="button" onClick={() => setConfirming(k.id)}>
                            Revoke {k.name || k.prefix}
                          </button>
                        ))}
                    </td>
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
