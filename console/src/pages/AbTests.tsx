import { useState, type FormEvent } from "react";
import { Link, useNavigate, useParams, useSearchParams } from "react-router";
import { gql } from "../api/client";
import { useApi } from "../api/useApi";
import { FilterSelect } from "../components/FilterSelect";
import { Await, Empty, FormError } from "../components/States";
import { formatNumber, formatTime } from "../format";
import { graphql } from "../gql";
import type { AbcampaignStatus } from "../gql/graphql";
import { allows } from "../session";

const List = graphql(`
  query AbTests($useCase: IdOrKey!, $filter: AbCampaignFilter!) {
    useCase(idOrKey: $useCase) {
      key
      name
      permissions
      modelServices {
        key
      }
      metrics {
        key
      }
    }
    abCampaigns(filter: $filter) {
      key
      name
      status
      beginDate
      endDate
      feedbacks
      trafficSplit
      metric {
        key
      }
      models {
        key
      }
      winner {
        key
      }
      report {
        pValue
        decision
      }
    }
  }
`);

const Create = graphql(`
  mutation CreateAbTest($input: AbcampaignCreate!) {
    createAbCampaign(input: $input) {
      key
    }
  }
`);

const STATUSES: AbcampaignStatus[] = ["WARMUP", "IN_PROGRESS", "DONE", "CANCELLED"];

function CreateForm({ useCase, models, metrics, onCancel }: { useCase: string; models: string[]; metrics: string[]; onCancel: () => void }) {
  const navigate = useNavigate();
  const [key, setKey] = useState("");
  const [metric, setMetric] = useState(metrics[0] ?? "");
  const [chosen, setChosen] = useState<string[]>(models.slice(0, 2));
  const [split, setSplit] = useState("1");
  const [autoDeploy, setAutoDeploy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    try {
      const made = await gql(Create, {
        input: { key, metric, useCase, modelServices: chosen, trafficSplit: Number(split), autoDeploy, feedbackType: "DIRECT" },
      });
      navigate(`/use-cases/${encodeURIComponent(useCase)}/ab-tests/${encodeURIComponent(made.createAbCampaign.key)}`);
    } catch (e) {
      setError((e as Error).message);
    }
  };
  return (
    <form className="card inline-form" onSubmit={submit} aria-label="New A/B test">
      <label>
        A/B test key
        <input required value={key} onChange={(e) => setKey(e.target.value)} />
      </label>
      <label>
        Feedback key
        <select required value={metric} onChange={(e) => setMetric(e.target.value)}>
          {metrics.map((m) => (
            <option key={m}>{m}</option>
          ))}
        </select>
      </label>
      <fieldset className="choices">
        <legend>Models</legend>
        {models.map((m) => (
          <label key={m} className="check">
            <input
              type="checkbox"
              checked={chosen.includes(m)}
              onChange={(e) => setChosen(e.target.checked ? [...chosen, m] : chosen.filter((c) => c !== m))}
            />
            {m}
          </label>
        ))}
      </fieldset>
      <label>
        Share of traffic
        <input type="number" min="0.01" max="1" step="0.01" required value={split} onChange={(e) => setSplit(e.target.value)} />
      </label>
      <label className="check">
        <input type="checkbox" checked={autoDeploy} onChange={(e) => setAutoDeploy(e.target.checked)} />
        Make the winner the default
      </label>
      <button type="submit" className="primary">
        Start
      </button>
      <button type="button" onClick={onCancel}>
        Cancel
      </button>
      <FormError error={error} />
    </form>
  );
}

export default function AbTests() {
  const { useCase = "" } = useParams();
  const [params, setParams] = useSearchParams();
  const status = STATUSES.find((s) => s === params.get("status")) ?? null;
  const loaded = useApi(() => gql(List, { useCase, filter: { useCase, status } }), [useCase, status]);
  const [creating, setCreating] = useState(false);
  const base = `/use-cases/${encodeURIComponent(useCase)}`;

  return (
    <Await loaded={loaded}>
      {({ useCase: uc, abCampaigns }) => {
        if (!uc) return <Empty title={`Use case '${useCase}' not found`} />;
        const canWrite = allows(uc.permissions, "ab_test:write");
        return (
          <>
            <nav aria-label="Breadcrumb" className="crumbs">
              <Link to="/use-cases">Use cases</Link> / <Link to={base}>{uc.name}</Link> / <span aria-current="page">A/B tests</span>
            </nav>
            <div className="page-head">
              <h1>A/B tests</h1>
              {canWrite && !creating && (
                <button type="button" className="primary" onClick={() => setCreating(true)}>
                  New A/B test
                </button>
              )}
            </div>
            {creating && (
              <CreateForm
                useCase={uc.key}
                models={uc.modelServices.map((m) => m.key)}
                metrics={uc.metrics.map((m) => m.key)}
                onCancel={() => setCreating(false)}
              />
            )}
            <FilterSelect
              className="filter"
              label="Status"
              value={status}
              choices={STATUSES}
              name={(s) => s.toLowerCase().replace("_", " ")}
              onChange={(v) => setParams(v ? { status: v } : {})}
            />
            {abCampaigns.length === 0 ? (
              <Empty title={status ? "No A/B test with this status" : "No A/B tests yet"}>
                An A/B test sends part of the traffic to several models and decides which one does best.
              </Empty>
            ) : (
              <table>
                <thead>
                  <tr>
                    <th scope="col">A/B test</th>
                    <th scope="col">Status</th>
                    <th scope="col">Models</th>
                    <th scope="col">Feedback key</th>
                    <th scope="col">Feedback</th>
                    <th scope="col">p-value</th>
                    <th scope="col">Winner</th>
                  </tr>
                </thead>
                <tbody>
                  {abCampaigns.map((c) => (
                    <tr key={c.key}>
                      <td>
                        <Link to={`${base}/ab-tests/${encodeURIComponent(c.key)}`}>{c.name}</Link>
                        <div className="muted">since {formatTime(c.beginDate)}</div>
                      </td>
                      <td>
                        <span className="badge">{c.status.toLowerCase().replace("_", " ")}</span>
                      </td>
                      <td className="mono">{c.models.map((m) => m.key).join(" vs ")}</td>
                      <td className="mono">{c.metric?.key ?? "—"}</td>
                      <td>{c.feedbacks}</td>
                      <td>{formatNumber(c.report.pValue)}</td>
                      <td className="mono">{c.winner?.key ?? "—"}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </>
        );
      }}
    </Await>
  );
}
