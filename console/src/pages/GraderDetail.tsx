// One grader: what it checks and where it runs, trying it on a sample completion (score and reasoning),
// the share of live traffic it grades, delete.
import { useState, type FormEvent } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { gql, rest } from "../api/client";
import { useApi } from "../api/useApi";
import { ConfirmDelete } from "../components/ConfirmDelete";
import { Await, Empty, FormError } from "../components/States";
import { formatNumber, formatTime, words } from "../format";
import { graphql } from "../gql";
import { allows } from "../session";

const Detail = graphql(`
  query GraderDetail($key: IdOrKey!, $useCase: IdOrKey!) {
    useCase(idOrKey: $useCase) {
      key
      name
      permissions
    }
    grader(id: $key, useCase: $useCase) {
      id
      key
      name
      graderType
      locked
      onlineSampleRate
      createdAt
      updatedAt
      metric {
        key
        kind
      }
      graderConfig {
        __typename
        ... on JudgeConfigOutput {
          criteria
          model {
            key
          }
        }
        ... on PrebuiltConfigOutput {
          prebuilt: criteria {
            name
            description
          }
          model {
            key
          }
        }
        ... on RemoteConfigOutput {
          url
          version
          remoteName: name
        }
        ... on CustomConfigOutput {
          customDescription: description
          hasCode
        }
      }
    }
  }
`);

const Update = graphql(`
  mutation SetOnlineGrading($useCase: IdOrKey!, $key: IdOrKey!, $input: GraderUpdateInput!) {
    updateGrader(useCase: $useCase, id: $key, input: $input) {
      key
      onlineSampleRate
    }
  }
`);

const Delete = graphql(`
  mutation DeleteGrader($useCase: IdOrKey!, $key: IdOrKey!) {
    deleteGrader(useCase: $useCase, id: $key) {
      success
    }
  }
`);

interface Outcome {
  score: number | null;
  reasoning: string | null;
  error: string | null;
}

function TryIt({ useCase, grader }: { useCase: string; grader: string }) {
  const [system, setSystem] = useState("");
  const [question, setQuestion] = useState("");
  const [completion, setCompletion] = useState("");
  const [metadata, setMetadata] = useState("");
  const [outcome, setOutcome] = useState<Outcome | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [grading, setGrading] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    setOutcome(null);
    let meta: unknown = null;
    if (metadata.trim()) {
      try {
        meta = JSON.parse(metadata);
      } catch (e) {
        setError(`Metadata is not valid JSON (${(e as Error).message})`);
        return;
      }
    }
    const messages = [...(system.trim() ? [{ role: "system", content: system }] : []), { role: "user", content: question }];
    setGrading(true);
    try {
      const answer = await rest<{ results: Outcome[] }>("POST", "/graders/grade", {
        use_case: useCase,
        grader,
        samples: [{ messages, completion, metadata: meta }],
      });
      setOutcome(answer.results[0]);
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setGrading(false);
    }
  };

  return (
    <section aria-labelledby="try-title" className="card">
      <h2 id="try-title">Try it</h2>
      <form className="schema-form" onSubmit={submit} aria-label="Try the grader">
        <div className="schema-field">
          <label htmlFor="try-system">
            System prompt <span className="muted">(optional: the context)</span>
          </label>
          <textarea id="try-system" rows={2} value={system} onChange={(e) => setSystem(e.target.value)} />
        </div>
        <div className="schema-field">
          <label htmlFor="try-question">User message</label>
          <textarea id="try-question" rows={2} required value={question} onChange={(e) => setQuestion(e.target.value)} />
        </div>
        <div className="schema-field">
          <label htmlFor="try-completion">Completion to grade</label>
          <textarea id="try-completion" rows={3} required value={completion} onChange={(e) => setCompletion(e.target.value)} />
        </div>
        <div className="schema-field">
          <label htmlFor="try-metadata">
            Metadata <span className="muted">(optional JSON)</span>
          </label>
          <textarea id="try-metadata" rows={2} value={metadata} onChange={(e) => setMetadata(e.target.value)} />
        </div>
        <div className="actions">
          <button type="submit" className="primary" disabled={grading}>
            {grading ? "Grading…" : "Grade"}
          </button>
        </div>
      </form>
      <FormError error={error} />
      <div role="status" aria-live="polite" aria-label="Result">
        {outcome && (
          <dl className="facts result">
            <dt>Score</dt>
            <dd className="score">{outcome.score == null ? "none" : formatNumber(outcome.score)}</dd>
            <dt>Reasoning</dt>
            <dd>{outcome.reasoning ?? "—"}</dd>
            {outcome.error && (
              <>
                <dt>Error</dt>
                <dd className="status-error">{outcome.error}</dd>
              </>
            )}
          </dl>
        )}
      </div>
    </section>
  );
}

function OnlineForm({ useCase, grader, rate, onSaved }: { useCase: string; grader: string; rate: number; onSaved: () => void }) {
  const [percent, setPercent] = useState(String(Math.round(rate * 1000) / 10));
  const [message, setMessage] = useState<{ error: boolean; text: string } | null>(null);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setMessage(null);
    try {
      await gql(Update, { useCase, key: grader, input: { onlineSampleRate: Number(percent) / 100 } });
      setMessage({ error: false, text: "Saved." });
      onSaved();
    } catch (e) {
      setMessage({ error: true, text: (e as Error).message });
    }
  };
  return (
    <form className="inline-form" onSubmit={submit} aria-label="Live grading">
      <label>
        Share of new live completions to grade (%)
        <input type="number" min="0" max="100" step="any" required value={percent} onChange={(e) => setPercent(e.target.value)} />
      </label>
      <button type="submit">Save</button>
      {message && (
        <p className={message.error ? "form-error" : "muted"} role={message.error ? "alert" : "status"}>
          {message.text}
        </p>
      )}
    </form>
  );
}

export default function GraderDetail() {
  const { useCase = "", key = "" } = useParams();
  const navigate = useNavigate();
  const loaded = useApi(() => gql(Detail, { key, useCase }), [useCase, key]);
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const base = `/use-cases/${encodeURIComponent(useCase)}`;

  return (
    <>
      <nav aria-label="Breadcrumb" className="crumbs">
        <Link to="/use-cases">Use cases</Link> / <Link to={base}>{useCase}</Link> / <Link to={`${base}/graders`}>Graders</Link> /{" "}
        <span aria-current="page">{key}</span>
      </nav>
      <Await loaded={loaded}>
        {({ useCase: uc, grader: g }) => {
          if (!uc) return <Empty title={`Use case '${useCase}' not found`} />;
          const canWrite = allows(uc.permissions, "grader:write");
          const config = g.graderConfig;
          const remove = async () => {
            setError(null);
            try {
              await gql(Delete, { useCase: uc.key, key: g.key });
              navigate(`${base}/graders`);
            } catch (e) {
              setError((e as Error).message);
            }
          };
          return (
            <>
              <div className="page-head">
                <div>
                  <h1>{g.name}</h1>
                  <p className="muted">
                    <span className="mono">{g.key}</span> · {words(g.graderType)} · writes{" "}
                    <span className="mono">{g.metric.key}</span> ({g.metric.kind.toLowerCase()}) · created {formatTime(g.createdAt)}
                    {g.locked && " · locked"}
                  </p>
                </div>
                {canWrite && !confirming && (
                  <button type="button" onClick={() => setConfirming(true)}>
                    Delete grader
                  </button>
                )}
              </div>
              {confirming && (
                <ConfirmDelete onConfirm={remove} onCancel={() => setConfirming(false)}>
                  Delete <strong>{g.name}</strong>? Its feedback stays.
                </ConfirmDelete>
              )}
              <FormError error={error} />
              <dl className="facts">
                {config.__typename === "JudgeConfigOutput" && (
                  <>
                    <dt>Criterion</dt>
                    <dd>{config.criteria}</dd>
                    <dt>Judge model</dt>
                    <dd>
                      <Link className="mono" to={`/models/${encodeURIComponent(config.model.key)}`}>
                        {config.model.key}
                      </Link>
                    </dd>
                  </>
                )}
                {config.__typename === "PrebuiltConfigOutput" && (
                  <>
                    <dt>Criterion</dt>
                    <dd>
                      {config.prebuilt.name}
                      <div className="muted">{config.prebuilt.description}</div>
                    </dd>
                    <dt>Judge model</dt>
                    <dd>
                      <Link className="mono" to={`/models/${encodeURIComponent(config.model.key)}`}>
                        {config.model.key}
                      </Link>
                    </dd>
                  </>
                )}
                {config.__typename === "RemoteConfigOutput" && (
                  <>
                    <dt>Reward server</dt>
                    <dd className="mono">{config.url}</dd>
                    <dt>It says</dt>
                    <dd>
                      {config.remoteName} {config.version}
                    </dd>
                  </>
                )}
                {config.__typename === "CustomConfigOutput" && (
                  <>
                    <dt>Description</dt>
                    <dd>{config.customDescription || "—"}</dd>
                    <dt>Code</dt>
                    <dd>{config.hasCode ? "runs in a sandboxed process of the server" : "none: the recipe that uses it scores"}</dd>
                  </>
                )}
                <dt>Live traffic graded</dt>
                <dd>{g.onlineSampleRate ? `${formatNumber(g.onlineSampleRate * 100, 1)}% of new completions` : "off"}</dd>
              </dl>
              <TryIt useCase={uc.key} grader={g.key} />
              {canWrite && (
                <section aria-labelledby="online-title" className="card">
                  <h2 id="online-title">Live grading</h2>
                  <OnlineForm useCase={uc.key} grader={g.key} rate={g.onlineSampleRate} onSaved={loaded.reload} />
                </section>
              )}
            </>
          );
        }}
      </Await>
    </>
  );
}
