// A use case's traffic over the chosen time range: the window's totals with their trend, then requests,
// tokens, latency and failed calls per model and time bucket (UseCase.activity / activityTimeseries).
import { lazy, Suspense } from "react";
import { gql } from "../api/client";
import { useApi } from "../api/useApi";
import { formatNumber } from "../format";
import { graphql } from "../gql";
import type { ChartSeries } from "./TimeChart";
import { Await, Empty, Loading } from "./States";
import { windowOf } from "./TimeRange";

const TimeChart = lazy(() => import("./TimeChart"));

const Activity = graphql(`
  query UseCaseActivity($useCase: IdOrKey!, $input: ActivityTimeseriesInput!, $range: TimeRange!) {
    useCase(idOrKey: $useCase) {
      activity(timerange: $range) {
        interactions {
          value
          perSecond
          trend
        }
        feedbacks {
          value
          trend
        }
        errors {
          value
          trend
        }
      }
      activityTimeseries(input: $input) {
        modelKey
        timeBuckets
        interactions
        promptTokens
        completionTokens
        latencyMeanMs
        latencyMaxMs
        errors
      }
    }
  }
`);

function trend(value: number | null | undefined): string {
  if (value == null) return "no traffic in the period before";
  const percent = Math.round(value * 100);
  return `${percent >= 0 ? "+" : ""}${percent}% on the period before`;
}

function rate(perSecond: number): string {
  if (perSecond === 0) return "0";
  if (perSecond >= 1) return `${formatNumber(perSecond, 1)} / s`;
  if (perSecond * 60 >= 1) return `${formatNumber(perSecond * 60, 1)} / min`;
  return `${formatNumber(perSecond * 3600, 1)} / h`;
}

/** Whether a chart has anything to draw (logged interactions carry no tokens or latency). */
function drawn(series: ChartSeries[]): boolean {
  return series.some((s) => s.values.some((v) => v != null && v !== 0));
}

function Total({ label, value, change }: { label: string; value: string; change?: number | null }) {
  return (
    <div className="tile">
      <dt>{label}</dt>
      <dd>
        <strong>{value}</strong>
        {change !== undefined && <span className="muted small">{trend(change)}</span>}
      </dd>
    </div>
  );
}

export function ActivityCharts({ useCase, range, tick }: { useCase: string; range: number; tick: number }) {
  const loaded = useApi(() => {
    const { from, to, interval } = windowOf(range);
    return gql(Activity, { useCase, range: { from, to }, input: { interval, byModel: true, timerange: { from, to } } });
  }, [useCase, range, tick]);

  return (
    <section aria-labelledby="traffic-title" className="card">
      <h2 id="traffic-title">Traffic</h2>
      <Await loaded={loaded}>
        {(data) => {
          const uc = data.useCase;
          if (!uc) return null;
          const { interactions, feedbacks, errors } = uc.activity;
          const series = uc.activityTimeseries;
          const charts: { title: string; label: string; series: ChartSeries[] }[] = [
            {
              title: "Requests",
              label: "Requests per model over time",
              series: series.map((s) => ({ label: s.modelKey ?? "no model", values: s.interactions })),
            },
            {
              title: "Tokens",
              label: "Prompt and completion tokens per model over time",
              series: series.flatMap((s) => [
                { label: `${s.modelKey ?? "no model"} prompt`, values: s.promptTokens },
                { label: `${s.modelKey ?? "no model"} completion`, values: s.completionTokens },
              ]),
            },
            {
              title: "Latency (ms)",
              label: "Mean latency per model over time, shaded up to the highest",
              series: series.map((s) => ({
                label: s.modelKey ?? "no model",
                values: s.latencyMeanMs,
                low: s.latencyMeanMs,
                high: s.latencyMaxMs,
              })),
            },
            {
              title: "Errors",
              label: "Failed model calls per model over time",
              series: series.map((s) => ({ label: s.modelKey ?? "no model", values: s.errors })),
            },
          ];
          return (
            <>
              <dl className="tiles">
                <Total label="Requests" value={formatNumber(interactions.value)} change={interactions.trend} />
                <Total label="Rate" value={rate(interactions.perSecond)} />
                <Total label="Feedback" value={formatNumber(feedbacks.value)} change={feedbacks.trend} />
                <Total label="Errors" value={formatNumber(errors.value)} change={errors.trend} />
              </dl>
              {series.length === 0 ? (
                <Empty title="No traffic in this time range">Requests served or logged show here.</Empty>
              ) : (
                <div className="chart-grid wide">
                  {charts.map((c) => (
                    <div key={c.title}>
                      <h3>{c.title}</h3>
                      {drawn(c.series) ? (
                        <Suspense fallback={<Loading what="Drawing" />}>
                          <TimeChart label={c.label} times={series[0].timeBuckets} series={c.series} height={180} />
                        </Suspense>
                      ) : (
                        <p className="muted">None in this time range.</p>
                      )}
                    </div>
                  ))}
                </div>
              )}
            </>
          );
        }}
      </Await>
    </section>
  );
}
