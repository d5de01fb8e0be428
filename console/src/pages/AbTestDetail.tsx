import { useState } from "react";
import { Link, useParams } from "react-router";
import { gql } from "../api/client";
import { useApi } from "../api/useApi";
import { usePolling } from "../api/usePolling";
import { AbHistory, pairLabel } from "../components/AbHistory";
import { Await, Empty, FormError } from "../components/States";
import { formatNumber, formatTime } from "../format";
import { graphql } from "../gql";
import { allows } from "../session";

// One pair of models compared: the estimate of their difference and its interval, now and in the history.
export const AbPairFields = graphql(`
  fragment AbPairFields on AbPairTest {
    variantA {
      key
    }
    variantB {
      key
    }
    estimate
    intervalStart
    intervalEnd
  }
`);

const Detail = graphql(`
  query AbTestDetail($useCase: IdOrKey!, $key: IdOrKey!) {
    useCase(idOrKey: $useCase) {
      key
      name
      permissions
    }
    abCampaign(idOrKey: $key) {
      key
      name
      status
      beginDate
      endDate
      feedbackType
      trafficSplit
      autoDeploy
      feedbacks
      hasEnoughFeedbacks
      metric {
        key
      }
      winner {
        key
      }
      report {
        pValue
        decision
        warmingUp
        sampleRatioMismatch
        sampleRatioPValue
        notes
        variants {
          variant {
            key
          }
          assignments
          feedbacks
          mean
          interval {
            start
            end
          }
        }
        pairs {
          ...AbPairFields
          pValue
        }
        alpha
        minFeedbacksPerVariant
      }
      history {
        at
        feedbacks
        pValue
        warmingUp
        decision
        variants {
          variant {
            key
          }
          mean
          interval {
            start
            end
          }
        }
        pairs {
          ...AbPairFields
        }
      }
    }
  }
`);

interface Distance {
  value: number;
  text: string;
}

/** How far the test is from deciding: the warm-up's feedback, then the p-value's way down to alpha (log scale). */
function distance(
  status: string,
  r: { warmingUp: boolean; pValue?: number | null; alpha: number; minFeedbacksPerVariant: number; variants: { feedbacks: number }[] },
): Distance | null {
  if (status === "DONE" || status === "CANCELLED") return null;
  if (r.warmingUp) {
    const least = Math.min(...r.variants.map((v) => v.feedbacks));
    return {
      value: Math.min(least / r.minFeedbacksPerVariant, 1),
      text: `warming up: ${least} of the ${r.minFeedbacksPerVariant} observations every model needs before any decision`,
    };
  }
  const p = r.pValue ?? 1;
  const value = p <= r.alpha ? 1 : Math.max(0, Math.min(1, Math.log(p) / Math.log(r.alpha)));
  return {
    value,
    text: `p = ${formatNumber(p)}: the test decides once p ≤ ${r.alpha} (${Math.round(value * 100)}% of the way, on a log scale)`,
  };
}

const Cancel = graphql(`
  mutation CancelAbTest($key: IdOrKey!) {
    cancelAbCampaign(input: $key)
  }
`);

export default function AbTestDetail() {
  const { useCase = "", key = "" } = useParams();
  const loaded = useApi(() => gql(Detail, { useCase, key }), [useCase, key]);
  // A running test is followed live: its estimates move with each evaluation.
  const status = loaded.data?.abCampaign?.status;
  usePolling(loaded.reload, status === "WARMUP" || status === "IN_PROGRESS", 3000);
  const [error, setError] = useState<string | null>(null);
  const base = `/use-cases/${encodeURIComponent(useCase)}`;

  return (
    <>
      <nav aria-label="Breadcrumb" className="crumbs">
        <Link to="/use-cases">Use cases</Link> / <Link to={base}>{useCase}</Link> / <Link to={`${base}/ab-tests`}>A/B tests</Link> /{" "}
        <span aria-current="page">{key}</span>
      </nav>
      <Await loaded={loaded}>
        {({ useCase: uc, abCampaign: c }) => {
          if (!uc || !c) return <Empty title={`A/B test '${key}' not found`} />;
          const active = c.status === "WARMUP" || c.status === "IN_PROGRESS";
          const canWrite = allows(uc.permissions, "ab_test:write");
          const cancel = async () => {
            setError(null);
            try {
              await gql(Cancel, { key: c.key });
              loaded.reload();
            } catch (e) {
              setError((e as Error).message);
            }
          };
          const r = c.report;
          const far = distance(c.status, r);
          const preference = c.feedbackType === "COMPARISON";
          return (
            <>
              <div className="page-head">
                <div>
                  <h1>{c.name}</h1>
                  <p className="muted">
                    <span className="badge">{c.status.toLowerCase().replace("_", " ")}</span> since {formatTime(c.beginDate)}
                    {c.endDate && <> · ended {formatTime(c.endDate)}</>} · {Math.round(c.trafficSplit * 100)}% of the traffic ·{" "}
                    {c.metric ? <span className="mono">{c.metric.key}</span> : "preferences"}
                  </p>
                </div>
                {active && canWrite && (
                  <button type="button" onClick={cancel}>
                    Cancel A/B test
                  </button>
                )}
              </div>
              <FormError error={error} />
              <dl className="facts">
                <dt>Decision</dt>
                <dd>
                  {r.warmingUp ? "warming up (too few observations yet)" : r.decision}
                  {far && (
                    <div className="distance">
                      <progress max={1} value={far.value} aria-label="Way to a decision" />
                      <span className="muted">{far.text}</span>
                    </div>
                  )}
                  {c.winner && (
                    <>
                      {" "}
                      · winner <span className="mono">{c.winner.key}</span>
                    </>
                  )}
                </dd>
                <dt>p-value (always valid)</dt>
                <dd>{formatNumber(r.pValue)}</dd>
                <dt>Sample ratio</dt>
                <dd>
                  {r.sampleRatioMismatch ? "mismatch: the split is not what was asked" : "as asked"}
                  {r.sampleRatioPValue != null && <span className="muted"> (p = {formatNumber(r.sampleRatioPValue)})</span>}
                </dd>
                <dt>Feedback</dt>
                <dd>
                  {c.feedbacks} {c.hasEnoughFeedbacks ? "" : <span className="muted">(not enough yet)</span>}
                </dd>
              </dl>
              <section aria-labelledby="arms-title" className="card">
                <h2 id="arms-title">Models</h2>
                <table>
                  <thead>
                    <tr>
                      <th scope="col">Model</th>
                      <th scope="col">Assigned</th>
                      <th scope="col">Observations</th>
                      <th scope="col">{c.feedbackType === "DIRECT" ? "Mean" : "Win rate"}</th>
                      <th scope="col">Interval</th>
                    </tr>
                  </thead>
                  <tbody>
                    {r.variants.map((v) => (
                      <tr key={v.variant.key}>
                        <td className="mono">{v.variant.key}</td>
                        <td>{v.assignments}</td>
                        <td>{v.feedbacks}</td>
                        <td>{formatNumber(v.mean)}</td>
                        <td>{v.interval ? `${formatNumber(v.interval.start)} … ${formatNumber(v.interval.end)}` : "—"}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </section>
              {r.pairs.length > 0 && (
                <section aria-labelledby="pairs-title" className="card">
                  <h2 id="pairs-title">Differences</h2>
                  <table>
                    <thead>
                      <tr>
                        <th scope="col">Pair</th>
                        <th scope="col">Estimate</th>
                        <th scope="col">Interval</th>
                        <th scope="col">p-value</th>
                      </tr>
                    </thead>
                    <tbody>
                      {r.pairs.map((p) => (
                        <tr key={`${p.variantA.key}/${p.variantB.key}`}>
                          <td className="mono">{pairLabel(p.variantA.key, p.variantB.key, preference)}</td>
                          <td>{formatNumber(p.estimate)}</td>
                          <td>{p.intervalStart != null ? `${formatNumber(p.intervalStart)} … ${formatNumber(p.intervalEnd)}` : "—"}</td>
                          <td>{formatNumber(p.pValue)}</td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </section>
              )}
              <section aria-labelledby="history-title" className="card">
                <h2 id="history-title">Over time</h2>
                <AbHistory history={c.history} alpha={r.alpha} preference={preference} />
              </section>
              {r.notes.length > 0 && (
                <ul className="muted">
                  {r.notes.map((n) => (
                    <li key={n}>{n}</li>
                  ))}
                </ul>
              )}
            </>
          );
        }}
      </Await>
    </>
  );
}
