// One model: status and backend, the use cases it serves (attach, deploy, detach, make default), its lineage
// (drawn: its base model, the job and data that made it, what was trained from it) and its compute config.
import { useState, type FormEvent } from "react";
import { Link, useParams } from "react-router";
import { gql } from "../api/client";
import { useApi } from "../api/useApi";
import LineageGraph, { familyRoot } from "../components/LineageGraph";
import { ModelStatus, dataOf } from "../components/ModelBits";
import { Await, Empty, FormError } from "../components/States";
import { formatBytes, formatTime } from "../format";
import { graphql } from "../gql";
import { allows, useSignedIn } from "../session";

const Detail = graphql(`
  query ModelDetail($key: IdOrKey!) {
    model(idOrKey: $key) {
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
      isTraining
      size
      createdAt
      computeConfig {
        tp
        kvCacheLen
        maxSeqLen
      }
      backbone {
        key
        name
      }
      lineage {
        jobId
        recipe
        useCase
        baseModel
        args
      }
    }
    models {
      key
      backbone {
        key
      }
      lineage {
        jobId
        recipe
        args
      }
    }
    useCases {
      key
      name
      permissions
      modelServices {
        key
        isDefault
        desiredOnline
      }
    }
  }
`);

const Attach = graphql(`
  mutation AttachModel($input: AddModelToUseCaseInput!) {
    addModelToUseCase(input: $input)
  }
`);

const Deploy = graphql(`
  mutation DeployModel($input: DeployModelInput!) {
    deployModel(input: $input) {
      key
      desiredOnline
    }
  }
`);

const Detach = graphql(`
  mutation DetachModel($input: RemoveModelFromUseCaseInput!) {
    removeModelFromUseCase(input: $input)
  }
`);

const SetDefault = graphql(`
  mutation MakeModelDefault($input: UpdateModelService!) {
    updateModelService(input: $input) {
      key
      isDefault
    }
  }
`);

const Compute = graphql(`
  mutation UpdateComputeConfig($key: IdOrKey!, $input: ModelComputeConfigInput!) {
    updateModelComputeConfig(idOrKey: $key, input: $input) {
      key
    }
  }
`);

function ComputeForm({ model, config, onSaved }: { model: string; config: { tp: number; kvCacheLen: number; maxSeqLen: number }; onSaved: () => void }) {
  const [tp, setTp] = useState(String(config.tp));
  const [kv, setKv] = useState(String(config.kvCacheLen));
  const [seq, setSeq] = useState(String(config.maxSeqLen));
  const [message, setMessage] = useState<{ error: boolean; text: string } | null>(null);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setMessage(null);
    try {
      await gql(Compute, { key: model, input: { tp: Number(tp), kvCacheLen: Number(kv), maxSeqLen: Number(seq) } });
      setMessage({ error: false, text: "Saved." });
      onSaved();
    } catch (e) {
      setMessage({ error: true, text: (e as Error).message });
    }
  };
  return (
    <form className="inline-form" onSubmit={submit} aria-label="Compute config">
      <label>
        Tensor parallel (GPUs)
        <input type="number" min="1" required value={tp} onChange={(e) => setTp(e.target.value)} />
      </label>
      <label>
        KV cache length
        <input type="number" min="0" required value={kv} onChange={(e) => setKv(e.target.value)} />
      </label>
      <label>
        Max sequence length
        <input type="number" min="1" required value={seq} onChange={(e) => setSeq(e.target.value)} />
      </label>
      <button type="submit">Save compute config</button>
      {message && (
        <p className={message.error ? "form-error" : "muted"} role={message.error ? "alert" : "status"}>
          {message.text}
        </p>
      )}
    </form>
  );
}

export default function ModelDetail() {
  const { key = "" } = useParams();
  const session = useSignedIn();
  const loaded = useApi(() => gql(Detail, { key }), [key]);
  const [error, setError] = useState<string | null>(null);
  const [target, setTarget] = useState("");

  const act = async (run: () => Promise<unknown>) => {
    setError(null);
    try {
      await run();
      loaded.reload();
    } catch (e) {
      setError((e as Error).message);
    }
  };

  return (
    <>
      <nav aria-label="Breadcrumb" className="crumbs">
        <Link to="/models">Models</Link> / <span aria-current="page">{key}</span>
      </nav>
      <Await loaded={loaded}>
        {({ model, models, useCases }) => {
          if (!model) return <Empty title={`Model '${key}' not found`} />;
          const canDeploy = (u: { permissions: string[] }) => allows(u.permissions, "model:deploy");
          const attached = useCases
            .map((u) => ({ ...u, service: u.modelServices.find((s) => s.key === model.key) }))
            .filter((u) => u.service);
          const attachable = useCases.filter((u) => canDeploy(u) && !u.modelServices.some((s) => s.key === model.key));
          const chosen = attachable.some((u) => u.key === target) ? target : (attachable[0]?.key ?? "");
          const trainedFrom = models.filter((m) => m.backbone?.key === model.key);
          const lineage = model.lineage;
          return (
            <>
              <div className="page-head">
                <div>
                  <h1>{model.name}</h1>
                  <p className="muted">
                    <span className="mono">{model.key}</span> · added {formatTime(model.createdAt)}
                  </p>
                </div>
              </div>
              <FormError error={error} />
              <dl className="facts">
                <dt>Status</dt>
                <dd>
                  <ModelStatus online={model.online} error={model.error} />
                  {model.error && <span className="status-error"> {model.error}</span>}
                </dd>
                <dt>Backend</dt>
                <dd>
                  {model.backend}
                  {model.isExternal && <span className="muted"> ({model.provider})</span>}
                </dd>
                <dt>Kind</dt>
                <dd>
                  {model.kind}
                  {model.isAdapter && " adapter"}
                  {model.isTraining && <span className="muted"> · training</span>}
                </dd>
                <dt>Size</dt>
                <dd>{formatBytes(model.size)}</dd>
                {!model.isExternal && model.computeConfig && (
                  <>
                    <dt>Compute</dt>
                    <dd>
                      {model.computeConfig.tp} GPU{model.computeConfig.tp === 1 ? "" : "s"} (tensor parallel) · KV cache{" "}
                      {model.computeConfig.kvCacheLen || "auto"} · max sequence {model.computeConfig.maxSeqLen}
                    </dd>
                  </>
                )}
              </dl>

              <section aria-labelledby="use-cases-title" className="card">
                <h2 id="use-cases-title">Use cases</h2>
                {attached.length === 0 ? (
                  <Empty title="Not attached to any use case" />
                ) : (
                  <table>
                    <thead>
                      <tr>
                        <th scope="col">Use case</th>
                        <th scope="col">Default</th>
                        <th scope="col">Deployed</th>
                        <th scope="col">
                          <span className="visually-hidden">Actions</span>
                        </th>
                      </tr>
                    </thead>
                    <tbody>
                      {attached.map((u) => (
                        <tr key={u.key}>
                          <td>
                            <Link to={`/use-cases/${encodeURIComponent(u.key)}`}>{u.name}</Link>
                          </td>
                          <td>{u.service!.isDefault ? <span className="badge accent">default</span> : <span className="muted">no</span>}</td>
                          <td>{u.service!.desiredOnline ? <span className="badge">deployed</span> : <span className="muted">no</span>}</td>
                          <td className="actions">
                            {canDeploy(u) && !u.service!.desiredOnline && (
                              <button type="button" onClick={() => act(() => gql(Deploy, { input: { useCase: u.key, model: model.key } }))}>
                                Deploy in {u.name}
                              </button>
                            )}
                            {canDeploy(u) && !u.service!.isDefault && (
                              <button
                                type="button"
                                onClick={() => act(() => gql(SetDefault, { input: { useCase: u.key, modelService: model.key, isDefault: true } }))}
                              >
                                Make default in {u.name}
                              </button>
                            )}
                            {canDeploy(u) && (
                              <button type="button" onClick={() => act(() => gql(Detach, { input: { useCase: u.key, model: model.key } }))}>
                                Detach from {u.name}
                              </button>
                            )}
                          </td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                )}
                {attachable.length > 0 && (
                  <form
                    className="inline-form"
                    aria-label="Attach to a use case"
                    onSubmit={(e) => {
                      e.preventDefault();
                      act(() => gql(Attach, { input: { useCase: chosen, model: model.key } }));
                    }}
                  >
                    <label>
                      Use case to attach to
                      <select value={chosen} onChange={(e) => setTarget(e.target.value)}>
                        {attachable.map((u) => (
                          <option key={u.key} value={u.key}>
                            {u.name}
                          </option>
                        ))}
                      </select>
                    </label>
                    <button type="submit">Attach</button>
                  </form>
                )}
              </section>

              <section aria-labelledby="lineage-title" className="card">
                <h2 id="lineage-title">Lineage</h2>
                {(model.backbone || trainedFrom.length > 0) && (
                  <div className="lineage-scroll">
                    <LineageGraph root={familyRoot(model.key, models)} rows={models} current={model.key} />
                  </div>
                )}
                <dl className="facts">
                  <dt>Base model</dt>
                  <dd className="mono">
                    {model.backbone ? <Link to={`/models/${encodeURIComponent(model.backbone.key)}`}>{model.backbone.key}</Link> : lineage?.baseModel ?? "—"}
                  </dd>
                  {lineage && (
                    <>
                      <dt>Made by</dt>
                      <dd>
                        <Link to={`/jobs/${lineage.jobId}`}>job {lineage.jobId.slice(0, 8)}</Link>
                        {lineage.recipe && (
                          <>
                            {" "}
                            running <span className="mono">{lineage.recipe}</span>
                          </>
                        )}
                        {lineage.useCase && (
                          <>
                            {" "}
                            in <Link to={`/use-cases/${encodeURIComponent(lineage.useCase)}`}>{lineage.useCase}</Link>
                          </>
                        )}
                      </dd>
                      <dt>Data</dt>
                      <dd>{dataOf(lineage.args) ?? "—"}</dd>
                      <dt>Arguments</dt>
                      <dd>
                        <pre className="mono json">{JSON.stringify(lineage.args, null, 2)}</pre>
                      </dd>
                    </>
                  )}
                  <dt>Trained from it</dt>
                  <dd>
                    {trainedFrom.length === 0
                      ? "—"
                      : trainedFrom.map((m) => (
                          <Link key={m.key} className="badge mono" to={`/models/${encodeURIComponent(m.key)}`}>
                            {m.key}
                          </Link>
                        ))}
                  </dd>
                </dl>
              </section>

              {session.can("model:register") && !model.isExternal && model.computeConfig && (
                <section aria-labelledby="compute-title" className="card">
                  <h2 id="compute-title">Compute config</h2>
                  <ComputeForm model={model.key} config={model.computeConfig} onSaved={loaded.reload} />
                </section>
              )}
            </>
          );
        }}
      </Await>
    </>
  );
}
