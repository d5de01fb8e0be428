// Graders of a use case: the list, and making one of each kind the API offers (an LLM judge, a prebuilt
// judge, Python code run in a sandbox, a remote reward server).
import { useState, type FormEvent } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { gql } from "../api/client";
import { useApi } from "../api/useApi";
import { Await, Empty, FormFooter } from "../components/States";
import { formatTime, words } from "../format";
import { graphql } from "../gql";
import type { GraderConfigInput, GraderTypeEnum, PrebuiltCriteriaKey } from "../gql/graphql";
import { allows } from "../session";

const List = graphql(`
  query Graders($useCase: IdOrKey!) {
    useCase(idOrKey: $useCase) {
      key
      name
      permissions
    }
    graders(useCase: $useCase) {
      id
      key
      name
      graderType
      locked
      onlineSampleRate
      createdAt
      metric {
        key
      }
      graderConfig {
        __typename
        ... on JudgeConfigOutput {
          model {
            key
          }
        }
        ... on PrebuiltConfigOutput {
          model {
            key
          }
        }
        ... on RemoteConfigOutput {
          url
        }
      }
    }
  }
`);

const ChatModels = graphql(`
  query JudgeModels {
    models {
      key
      kind
    }
  }
`);

const Create = graphql(`
  mutation CreateGrader($useCase: IdOrKey!, $input: GraderCreateInput!) {
    createGrader(useCase: $useCase, input: $input) {
      key
    }
  }
`);

const KINDS: { value: GraderTypeEnum; label: string }[] = [
  { value: "JUDGE", label: "LLM judge (your criterion)" },
  { value: "PREBUILT", label: "Prebuilt judge" },
  { value: "CUSTOM", label: "Python code" },
  { value: "REMOTE", label: "Remote reward server" },
];
const PREBUILT: { value: PrebuiltCriteriaKey; label: string }[] = [
  { value: "FAITHFULNESS", label: "Faithfulness (to the context)" },
  { value: "ANSWER_RELEVANCY", label: "Answer relevancy" },
  { value: "CONTEXT_RELEVANCY", label: "Context relevancy" },
];
const CODE_TEMPLATE = `def grade(messages, completion, metadata):
    # messages: the conversation ({"role", "content"}); completion: the answer to score
    return {"score": 1.0, "reasoning": "why"}
`;

function CreateForm({ useCase, onCancel }: { useCase: string; onCancel: () => void }) {
  const navigate = useNavigate();
  const models = useApi(() => gql(ChatModels), []);
  const [kind, setKind] = useState<GraderTypeEnum>("JUDGE");
  const [name, setName] = useState("");
  const [key, setKey] = useState("");
  const [feedbackKey, setFeedbackKey] = useState("");
  const [model, setModel] = useState("");
  const [criteria, setCriteria] = useState("");
  const [prebuilt, setPrebuilt] = useState<PrebuiltCriteriaKey>("ANSWER_RELEVANCY");
  const [code, setCode] = useState(CODE_TEMPLATE);
  const [description, setDescription] = useState("");
  const [url, setUrl] = useState("");
  const [error, setError] = useState<string | null>(null);
  const chat = (models.data?.models ?? []).filter((m) => m.kind === "chat");
  const judgeModel = model || chat[0]?.key || "";

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    const config: GraderConfigInput =
      kind === "JUDGE"
        ? { judge: { model: judgeModel, criteria, examples: [] } }
        : kind === "PREBUILT"
          ? { prebuilt: { key: prebuilt, model: judgeModel } }
          : kind === "CUSTOM"
            ? { custom: { code, description: description || null } }
            : { remote: { url } };
    try {
      const made = await gql(Create, {
        useCase,
        input: {
          name: name || key,
          key: key || null,
          graderType: kind,
          graderConfig: config,
          // A prebuilt judge writes to its criterion's own key.
          metric: kind !== "PREBUILT" && feedbackKey ? { existing: feedbackKey } : null,
        },
      });
      navigate(`/use-cases/${encodeURIComponent(useCase)}/graders/${encodeURIComponent(made.createGrader.key)}`);
    } catch (e) {
      setError((e as Error).message);
    }
  };

  return (
    <form className="card schema-form" onSubmit={submit} aria-label="New grader">
      <div className="schema-field">
        <label htmlFor="grader-kind">Kind</label>
        <select id="grader-kind" value={kind} onChange={(e) => setKind(e.target.value as GraderTypeEnum)}>
          {KINDS.map((k) => (
            <option key={k.value} value={k.value}>
              {k.label}
            </option>
          ))}
        </select>
      </div>
      <div className="inline-form">
        <label>
          Grader key
          <input required value={key} onChange={(e) => setKey(e.target.value)} />
        </label>
        <label>
          Name <span className="muted">(optional)</span>
          <input value={name} onChange={(e) => setName(e.target.value)} placeholder="the key" />
        </label>
        {kind !== "PREBUILT" && (
          <label>
            Feedback key <span className="muted">(optional)</span>
            <input value={feedbackKey} onChange={(e) => setFeedbackKey(e.target.value)} placeholder="the grader key" />
          </label>
        )}
      </div>
      {(kind === "JUDGE" || kind === "PREBUILT") && (
        <div className="schema-field">
          <label htmlFor="grader-model">Judge model</label>
          <select id="grader-model" required value={judgeModel} onChange={(e) => setModel(e.target.value)}>
            {chat.length === 0 && <option value="">no chat model in the registry</option>}
            {chat.map((m) => (
              <option key={m.key} value={m.key}>
                {m.key}
              </option>
            ))}
          </select>
        </div>
      )}
      {kind === "JUDGE" && (
        <div className="schema-field">
          <label htmlFor="grader-criteria">Criterion</label>
          <textarea
            id="grader-criteria"
            required
            rows={3}
            value={criteria}
            onChange={(e) => setCriteria(e.target.value)}
            placeholder="The answer is polite and names the next step."
            aria-describedby="grader-criteria-hint"
          />
          <small id="grader-criteria-hint" className="muted">
            The judge answers PASS (score 1), FAIL (0) or NA (does not apply) with one sentence of reasoning.
          </small>
        </div>
      )}
      {kind === "PREBUILT" && (
        <div className="schema-field">
          <label htmlFor="grader-prebuilt">Criterion</label>
          <select id="grader-prebuilt" value={prebuilt} onChange={(e) => setPrebuilt(e.target.value as PrebuiltCriteriaKey)}>
            {PREBUILT.map((p) => (
              <option key={p.value} value={p.value}>
                {p.label}
              </option>
            ))}
          </select>
        </div>
      )}
      {kind === "CUSTOM" && (
        <>
          <div className="schema-field">
            <label htmlFor="grader-code">Code</label>
            <textarea
              id="grader-code"
              required
              rows={8}
              spellCheck={false}
              value={code}
              onChange={(e) => setCode(e.target.value)}
              aria-describedby="grader-code-hint"
            />
            <small id="grader-code-hint" className="muted">
              Python defining grade(messages, completion, metadata), returning a number, a bool or {"{"}"score", "reasoning"{"}"}; it runs
              in a sandboxed process of the server.
            </small>
          </div>
          <div className="schema-field">
            <label htmlFor="grader-description">Description</label>
            <input id="grader-description" value={description} onChange={(e) => setDescription(e.target.value)} />
          </div>
        </>
      )}
      {kind === "REMOTE" && (
        <div className="schema-field">
          <label htmlFor="grader-url">Reward server URL</label>
          <input id="grader-url" type="url" required value={url} onChange={(e) => setUrl(e.target.value)} placeholder="https://" />
        </div>
      )}
      <FormFooter error={error} submit="Create grader" onCancel={onCancel} />
    </form>
  );
}

export default function Graders() {
  const { useCase = "" } = useParams();
  const loaded = useApi(() => gql(List, { useCase }), [useCase]);
  const [creating, setCreating] = useState(false);
  const base = `/use-cases/${encodeURIComponent(useCase)}`;

  return (
    <Await loaded={loaded}>
      {({ useCase: uc, graders }) => {
        if (!uc) return <Empty title={`Use case '${useCase}' not found`} />;
        const canWrite = allows(uc.permissions, "grader:write");
        return (
          <>
            <nav aria-label="Breadcrumb" className="crumbs">
              <Link to="/use-cases">Use cases</Link> / <Link to={base}>{uc.name}</Link> / <span aria-current="page">Graders</span>
            </nav>
            <div className="page-head">
              <h1>Graders</h1>
              {canWrite && !creating && (
                <button type="button" className="primary" onClick={() => setCreating(true)}>
                  New grader
                </button>
              )}
            </div>
            {creating && <CreateForm useCase={uc.key} onCancel={() => setCreating(false)} />}
            {graders.length === 0 ? (
              <Empty title="No graders yet">A grader scores completions: an LLM judge, your own code or a reward server.</Empty>
            ) : (
              <table>
                <thead>
                  <tr>
                    <th scope="col">Grader</th>
                    <th scope="col">Kind</th>
                    <th scope="col">Runs on</th>
                    <th scope="col">Feedback key</th>
                    <th scope="col">Live traffic graded</th>
                    <th scope="col">Created</th>
                  </tr>
                </thead>
                <tbody>
                  {graders.map((g) => {
                    const config = g.graderConfig;
                    const on =
                      config.__typename === "JudgeConfigOutput" || config.__typename === "PrebuiltConfigOutput"
                        ? config.model.key
                        : config.__typename === "RemoteConfigOutput"
                          ? config.url
                          : "sandbox";
                    return (
                      <tr key={g.id}>
                        <td>
                          <Link to={`${base}/graders/${encodeURIComponent(g.key)}`}>{g.name}</Link>
                          <div className="muted mono">
                            {g.key}
                            {g.locked && " · locked"}
                          </div>
                        </td>
                        <td>{words(g.graderType)}</td>
                        <td className="mono">{on}</td>
                        <td className="mono">{g.metric.key}</td>
                        <td>{g.onlineSampleRate ? `${Math.round(g.onlineSampleRate * 100)}%` : "off"}</td>
                        <td>{formatTime(g.createdAt)}</td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            )}
          </>
        );
      }}
    </Await>
  );
}
