import { useState } from "react";
import { Link, useParams } from "react-router";
import { gql } from "../api/client";
import { useApi } from "../api/useApi";
import { ActivityCharts } from "../components/ActivityCharts";
import { FeedbackTrends } from "../components/FeedbackTrends";
import { LiveToggle, useLive } from "../components/Live";
import { Await, Empty, FormError } from "../components/States";
import { DEFAULT_RANGE, RangePicker } from "../components/TimeRange";
import { formatNumber, formatTime } from "../format";
import { graphql } from "../gql";
import { allows } from "../session";

const Overview = graphql(`
  query UseCaseOverview($useCase: IdOrKey!, $key: String!) {
    useCase(idOrKey: $useCase) {
      id
      key
      name
      description
      createdAt
      permissions
      modelServices {
        id
        key
        name
        isDefault
        desiredOnline
        model {
          key
          name
          online
          provider
          isAdapter
        }
      }
      metrics {
        key
        name
        kind
      }
    }
    abCampaigns(filter: { active: true, useCase: $key }) {
      key
      name
      status
      feedbacks
      beginDate
      metric {
        key
      }
      models {
        key
      }
      report {
        decision
        pValue
        warmingUp
      }
    }
    feedbackStatistics(filter: { useCase: $useCase, byModel: true }) {
      metric {
        key
        name
      }
      model
      count
      mean
      variance
    }
  }
`);

const MakeDefault = graphql(`
  mutation MakeDefault($input: UpdateModelService!) {
    updateModelService(input: $input) {
      key
      isDefault
    }
  }
`);

/** A normal-approximation 95% interval of a mean from its sample variance. */
function interval(mean: number | null | undefined, variance: number | null | undefined, count: number): string {
  if (mean == null) return "—";
  if (variance == null || count < 2) return formatNumber(mean);
  const half = 1.96 * Math.sqrt(variance / count);
  return `${formatNumber(mean)} ± ${formatNumber(half)}`;
}

export default function UseCaseOverview() {
  const { useCase = "" } = useParams();
  const live = useLive();
  const [range, setRange] = useState(DEFAULT_RANGE);
  // Everything on the page follows the traffic while live (models, A/B tests, charts, feedback).
  const loaded = useApi(() => gql(Overview, { useCase, key: useCase }), [useCase, live.tick]);
  const [actionError, setActionError] = useState<string | null>(null);

  return (
    <Await loaded={loaded}>
      {({ useCase: uc, abCampaigns, feedbackStatistics }) => {
        if (!uc) return <Empty title={`Use case '${useCase}' not found`} />;
        const canWrite = allows(uc.permissions, "use_case:write");
        const makeDefault = async (service: string) => {
          setActionError(null);
          try {
            await gql(MakeDefault, { input: { useCase: uc.key, modelService: service, isDefault: true } });
            loaded.reload();
          } catch (e) {
            setActionError((e as Error).message);
          }
        };
        return (
          <>
            <nav aria-label="Breadcrumb" className="crumbs">
              <Link to="/use-cases">Use cases</Link> / <span aria-current="page">{uc.name}</span>
            </nav>
            <div className="page-head">
              <div>
                <h1>{uc.name}</h1>
                <p className="muted">
                  <span className="mono">{uc.key}</span> · created {formatTime(uc.createdAt)}
                  {uc.description && <> · {uc.description}</>}
                </p>
              </div>
              <div className="actions">
                <Link className="button" to={`/use-cases/${encodeURIComponent(uc.key)}/interactions`}>
                  Interactions
                </Link>
                <Link className="button" to={`/use-cases/${encodeURIComponent(uc.key)}/ab-tests`}>
                  A/B tests
                </Link>
                <Link className="button" to={`/use-cases/${encodeURIComponent(uc.key)}/datasets`}>
                  Datasets
                </Link>
                <Link className="button" to={`/use-cases/${encodeURIComponent(uc.key)}/graders`}>
                  Graders
                </Link>
                <Link className="button" to={`/jobs?useCase=${encodeURIComponent(uc.key)}`}>
                  Jobs
                </Link>
              </div>
            </div>

            <section aria-labelledby="models-title" className="card">
              <h2 id="models-title">Models</h2>
              <FormError error={actionError} />
              {uc.modelServices.length === 0 ? (
                <Empty title="No model attached">Attach a model to serve this use case.</Empty>
              ) : (
                <table>
                  <thead>
                    <tr>
                      <th scope="col">Model</th>
                      <th scope="col">Provider</th>
                      <th scope="col">Status</th>
                      <th scope="col">Default</th>
                    </tr>
                  </thead>
                  <tbody>
                    {uc.modelServices.map((s) => (
                      <tr key={s.id}>
                        <td>
                          {s.name}
                          <div className="muted mono">{s.key}</div>
                        </td>
                        <td>
                          {s.model.provider}
                          {s.model.isAdapter && <span className="badge">adapter</span>}
                        </td>
                        <td>
                          <span className={`badge status-${s.model.online.toLowerCase()}`}>{s.model.online.toLowerCase()}</span>
                        </td>
                        <td>
                          {s.isDefault ? (
                            <span className="badge accent">default</span>
                          ) : canWrite ? (
                            <button type="button" onClick={() => makeDefault(s.key)} aria-label={`Make ${s.key} the default model`}>
                              Make default
                            </button>
                          ) : null}
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
            </section>

            <section aria-labelledby="ab-title" className="card">
              <h2 id="ab-title">Running A/B tests</h2>
              {abCampaigns.length === 0 ? (
                <Empty title="No A/B test running" />
              ) : (
                <table>
                  <thead>
                    <tr>
                      <th scope="col">A/B test</th>
                      <th scope="col">Models</th>
                      <th scope="col">Metric</th>
                      <th scope="col">Feedback</th>
                      <th scope="col">p-value</th>
                      <th scope="col">Decision</th>
                    </tr>
                  </thead>
                  <tbody>
                    {abCampaigns.map((c) => (
                      <tr key={c.key}>
                        <td>
                          <Link to={`/use-cases/${encodeURIComponent(uc.key)}/ab-tests/${encodeURIComponent(c.key)}`}>{c.name}</Link>
                          <div className="muted">since {formatTime(c.beginDate)}</div>
                        </td>
                        <td className="mono">{c.models.map((m) => m.key).join(" vs ")}</td>
                        <td className="mono">{c.metric?.key ?? "preference"}</td>
                        <td>{c.feedbacks}</td>
                        <td>{formatNumber(c.report.pValue)}</td>
                        <td>{c.report.warmingUp ? "warming up" : c.report.decision}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
            </section>

            <div className="toolbar" role="group" aria-label="Charts">
              <RangePicker value={range} onChange={setRange} />
              <LiveToggle live={live} />
            </div>
            <ActivityCharts useCase={uc.key} range={range} tick={live.tick} />
            <FeedbackTrends useCase={uc.key} range={range} tick={live.tick} />

            <section aria-labelledby="feedback-title" className="card">
              <h2 id="feedback-title">Feedback per model</h2>
              {feedbackStatistics.length === 0 ? (
                <Empty title="No feedback yet">
                  {uc.metrics.length === 0 ? "No feedback key is linked to this use case." : "Feedback logged on interactions shows here."}
                </Empty>
              ) : (
                <table>
                  <thead>
                    <tr>
                      <th scope="col">Feedback key</th>
                      <th scope="col">Model</th>
                      <th scope="col">Values</th>
                      <th scope="col">Mean (95% interval)</th>
                    </tr>
                  </thead>
                  <tbody>
                    {feedbackStatistics.map((s) => (
                      <tr key={`${s.metric.key}/${s.model}`}>
                        <td className="mono">{s.metric.key}</td>
                        <td className="mono">{s.model ?? "all"}</td>
                        <td>{s.count}</td>
                        <td>{interval(s.mean, s.variance, s.count)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
            </section>
          </>
        );
      }}
    </Await>
  );
}
